"""python -m jarob.evaluate runs=[<run_dir>,...] adversaries=[none,rn,fgsm,pgd] episodes=500 out=<dir>

Evaluates every trained team (a `jarob.train` run directory, all its seeds) against every
adversary and writes cells.csv, table.md, table.json, heatmap.png (and sweep.png with
`sweep_eps=[...]`) into `out`. Keys and defaults: configs/evaluate.yaml.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time

USAGE = __doc__.strip().splitlines()[0]


def parse_column(column: str) -> tuple[str, dict]:
    """(adversary name, its settings) of an evaluation column `name` or `name:key=value,...`
    (e.g. `malicious:rate=0.05`, `pgd:steps=50,random_start=true`)."""
    from jarob.evaluation import EvaluationError

    name, _, rest = column.partition(":")
    settings = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise EvaluationError(f"adversaries: {column!r}: settings are key=value pairs, e.g. malicious:rate=0.05")
        settings[key.strip()] = value.strip()
    return name, settings


def resolve_adversaries(names, env, eps, trained_on: str | None = None):
    """(column name, adversary, attacker) for every column: a static adversary's name with
    optional settings (`parse_column`; attacker None) or the run directory of a trained learned
    attacker (`jarob.attack`), which must have been trained on the env the teams trained on
    (`trained_on`, default `env.name`)."""
    from jarob import adversaries
    from jarob.config import ConfigError, adv_config
    from jarob.evaluation import EvaluationError, load_attacker

    registry = adversaries.ADVERSARIES
    teams_env = trained_on or env.name
    static = [n for n in registry.names() if not registry.get(n).learned and registry.get(n).channel != "training"]
    out = []
    for column in names:
        name, settings = parse_column(column)
        if name not in registry and (os.sep in column or os.path.isdir(column)):
            attacker = load_attacker(column)
            if attacker.env_name != teams_env:
                raise EvaluationError(f"adversaries: {column!r} was trained on {attacker.env_name}, the teams on {teams_env}")
            out.append((attacker.label, adversaries.make(attacker.adv, env, eps), attacker))
            continue
        if name not in static:
            hint = " (learned attackers are given as the run directory of `python -m jarob.attack`)" if name in registry else ""
            if name in registry and registry.get(name).channel == "training":
                hint = f" ({name} attacks a team while it learns and never at test time: train with adv={name})"
            raise EvaluationError(f"adversaries: unknown {name!r}; allowed: {', '.join(static)} (with optional :key=value,... settings) or a run directory{hint}")
        try:
            cfg = adv_config(name, settings)
        except ConfigError as exc:
            raise EvaluationError(f"adversaries: {column!r}: {exc}") from None
        out.append((column, None if name == "none" else adversaries.make(cfg, env, eps), None))
    labels = [label for label, _, _ in out]
    if len(set(labels)) != len(labels):  # attackers whose directories share a basename: use the paths
        out = [(os.path.normpath(n) if att is not None else label, adv, att) for n, (label, adv, att) in zip(names, out)]
    if len({label for label, _, _ in out}) != len(out):
        raise EvaluationError("adversaries: a column is given twice")
    return out


def run(cfg) -> dict:
    """Evaluate and write the report; returns a summary dict."""
    from jarob import envs, report
    from jarob.evaluation import CrossEvaluator, EvaluationError, HostEvaluator, check_same_env, check_same_layout, group_by_architecture, load_team

    t0 = time.time()
    teams = [load_team(r) for r in cfg.runs]
    labels = [t.label for t in teams]
    if len(set(labels)) != len(labels):  # same basename in different folders: use the paths
        teams = [load_team(r, label=os.path.normpath(r)) for r in cfg.runs]
        labels = [t.label for t in teams]
    trained_on = check_same_env(teams)
    env = envs.make(cfg.env.name if cfg.env else trained_on)
    if env.name != trained_on:  # e.g. cav_merge teams on highway-env
        check_same_layout(envs.make(trained_on), env)
    eps = next((e for e in (cfg.eps, cfg.env and cfg.env.eps) if e is not None), env.default_eps)
    compare = labels[0] if cfg.compare is None else cfg.compare
    if compare not in labels:
        raise EvaluationError(f"compare: {compare!r} is not a team; allowed: {', '.join(labels)}")
    columns = resolve_adversaries(cfg.adversaries, env, eps, trained_on)
    eps_values = [eps] + [e for e in (cfg.sweep_eps or ()) if abs(e - eps) > 1e-9]
    groups = group_by_architecture(teams, env)
    host = envs.is_host_env(env)
    if host:  # a simulator stepped in Python: cfg.host_envs instances, through the host driver
        instances = [env] + [envs.make(env.name) for _ in range(cfg.host_envs - 1)]
        evaluator = HostEvaluator(instances, cfg.episodes, cfg.seed)
    else:
        evaluator = CrossEvaluator(env, cfg.episodes, cfg.seed)
    try:
        cells = _cells(cfg, evaluator, groups, columns, eps, eps_values)
    finally:
        for instance in instances if host else ():
            instance.close()
    out = cfg.out or os.path.join("eval", time.strftime("%Y%m%d-%H%M%S"))
    table = report.write_report(out, cells, labels, [n for n, _, _ in columns], eps, env.has_win, compare, env.name, cfg.sweep_eps is not None, env.has_crash)
    return {"out": out, "wall_s": time.time() - t0, "table": table}


def _cells(cfg, evaluator, groups, columns, eps, eps_values) -> list:
    """Every cell: each group of teams against each column at each eps (a progress bar)."""
    from tqdm import tqdm

    cells = []
    calls = [(g, name, adv, att, e) for g in groups for name, adv, att in columns for e in (eps_values if adv is not None else [eps])]
    bar = tqdm(total=len(calls), unit="cell group", disable=not cfg.progress, file=sys.stderr, dynamic_ncols=True)
    for group, name, adversary, attacker, e in calls:
        bar.set_postfix(adversary=name, eps=f"{e:g}")
        new = evaluator.run_group(group, name, adversary, e, attacker)
        # Clean play does not depend on eps: one evaluation stands for every eps of a sweep.
        cells += new if adversary is not None else [dataclasses.replace(c, eps=float(x)) for x in eps_values for c in new]
        bar.update(1)
    bar.close()
    return cells


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(USAGE)
        print("Keys and defaults: configs/evaluate.yaml (see README.md).")
        return 0
    from jarob.config import ConfigError, load_eval_config
    from jarob.evaluation import EvaluationError

    try:
        cfg = load_eval_config(args)
    except ConfigError as exc:
        print(f"jarob.evaluate: error: {exc}", file=sys.stderr)
        return 2
    created = cfg.out is not None and not os.path.exists(cfg.out)
    try:
        summary = run(cfg)
    except EvaluationError as exc:
        print(f"jarob.evaluate: error: {exc}", file=sys.stderr)
        return 2
    except BaseException:
        if created:  # no half-written output directory
            shutil.rmtree(cfg.out, ignore_errors=True)
        raise
    t = summary["table"]
    avg = ", ".join(f"{team} {row['AVG']['mean']:.3f}" for team, row in t["rows"].items())
    print(f"AVG {t['metric']}: {avg}; {summary['wall_s']:.1f} s; {os.path.join(summary['out'], 'table.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
