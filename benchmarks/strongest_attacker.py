"""Learned-attacker columns, one attacker against the strongest of K (issue 44), on smax_3m.

    python benchmarks/strongest_attacker.py --teams NoAdv=<run_dir>,FGSM=<run_dir>,ATSA=<run_dir>[,PAAD=...,RAP=...]
        [--advs paad,atsa] [--single-steps 500000] [--attackers 3] [--steps 1000000]
        [--out benchmarks/results_strongest] [--archive benchmarks/results/strongest] [--compare ATSA]

For every team (a finished `jarob.train` run, all its seeds) and learned adversary:
1. trains the one-attacker column, `python -m jarob.attack victim=<team> adv=<adv>
   total_steps=<single-steps>` (today's Table 1 protocol), and the strongest-of-K column, the same
   with `attackers=<K> total_steps=<steps>`;
2. evaluates each team against none and its attackers (`python -m jarob.evaluate`, 500 episodes
   per cell, eps 0.25: one call per team);
3. writes the two tables (out/table_one, out/table_best: mean +- std over the team's seeds; the
   strongest-of-K table takes each seed's lowest win rate), the side-by-side comparison with the
   std ratio of every cell (out/comparison.md), the rank-sum tests of `--compare` against every
   other row under each protocol, and the attackers' learning curves (out/curves.png: the victim's
   win rate at every chunk, each of the K attackers thin, the one attacker dashed);
and archives every attack run (config, summary, metrics.csv, attack_curve.png, adversary.msgpack)
and every cells.csv under `--archive`, with the commit. Finished runs are reused, killed ones
resumed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

from common import run_once

ARCHIVED = ("summary.json", "config.yaml", "attack.json", "metrics.csv", "attack_curve.png", "adversary.msgpack")


def attack_name(kind: str, adv: str, team: str) -> str:
    return f"{kind}_{adv}_vs_{team}"


def from_archive(archive: str, out: str, d: str, needs: tuple[str, ...]) -> None:
    """Copy archive/d into out/d where out/d lacks what the archive holds whole (`needs`): a
    result measured in an earlier session is reused, not measured again."""
    if archive and not all(os.path.isfile(os.path.join(out, d, n)) for n in needs) and all(os.path.isfile(os.path.join(archive, d, n)) for n in needs):
        shutil.rmtree(os.path.join(out, d), ignore_errors=True)
        shutil.copytree(os.path.join(archive, d), os.path.join(out, d))
        print(f"# {d}: from the archive {archive}", flush=True)


def to_archive(archive: str, out: str, d: str, names: tuple[str, ...]) -> None:
    """Copy out/d/<names> into archive/d as soon as out/d is finished, so that a session that
    ends mid-benchmark keeps every run it completed."""
    if archive:
        os.makedirs(os.path.join(archive, d), exist_ok=True)
        for name in names:
            if os.path.isfile(os.path.join(out, d, name)):
                shutil.copy2(os.path.join(out, d, name), os.path.join(archive, d, name))


def evaluate(out: str, team: str, team_dir: str, attack_dirs: list[str]) -> str:
    """`python -m jarob.evaluate` of one team against none and `attack_dirs`; its output directory."""
    from jarob.report import read_cells

    eval_dir = os.path.join(out, f"eval_{team}")
    cells = os.path.join(eval_dir, "cells.csv")
    wanted = {"none", *(os.path.basename(d) for d in attack_dirs)}
    if not os.path.isfile(cells) or not wanted <= {c.adversary for c in read_cells(cells)}:
        shutil.rmtree(eval_dir, ignore_errors=True)
        cmd = [sys.executable, "-m", "jarob.evaluate", f"runs=[{team_dir}]", f"adversaries=[none,{','.join(attack_dirs)}]", "episodes=500", f"out={eval_dir}", "progress=false"]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    return eval_dir


def curves_figure(out: str, teams: list[str], advs: list[str], path: str) -> None:
    """One panel per (team, adversary): the victim's win rate under each attacker, chunk by chunk."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jarob.convergence import read_curve

    fig, axes = plt.subplots(len(teams), len(advs), figsize=(4.2 * len(advs), 2.8 * len(teams)), sharex=True, sharey=True, squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, team in enumerate(teams):
        for j, adv in enumerate(advs):
            ax = axes[i][j]
            best, one = (read_curve(os.path.join(out, attack_name(kind, adv, team))) for kind in ("best", "one"))
            for lane in range(best.values.shape[1]):
                seed, _ = divmod(lane, best.attackers)
                ax.plot(best.steps, best.values[:, lane], color=colours[seed], lw=0.8, alpha=0.75)
            for seed in range(one.values.shape[1]):
                ax.plot(one.steps, one.values[:, seed], color=colours[seed], lw=1.6, ls="--")
            ax.set_title(f"{team} under {adv}", fontsize=9)
            ax.set_ylim(-0.02, 1.0)
            if i == len(teams) - 1:
                ax.set_xlabel("attacker env steps per seed")
            if j == 0:
                ax.set_ylabel("victim win rate")
    fig.suptitle(f"smax_3m: the victim's greedy win rate (128 episodes) under each attacker; colour = team seed, dashed = the one-attacker run, thin = the {best.attackers} attackers", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def comparison(one: dict, best: dict, teams: list[str], advs: list[str], k: int, single: int, steps: int) -> tuple[str, dict]:
    """The side-by-side markdown table and its figures: per (team, adversary) mean +- std over seeds
    of each column and the ratio of the stds (strongest-of-K / one)."""
    lines = [
        f"| team | adversary | one attacker, {single:,} steps | strongest of {k}, {steps:,} steps | std ratio |",
        "|---|---|---|---|---|",
    ]
    figures = {}
    for t in teams:
        for a in advs:
            o, b = one["rows"][t][a], best["rows"][t][a]
            ratio = b["std"] / o["std"] if o["std"] > 0 else float("inf") if b["std"] > 0 else 1.0
            figures[f"{t}_{a}"] = {"one": o, "best": b, "std_ratio": ratio}
            lines.append(f"| {t} | {a} | {o['mean']:.3f} ± {o['std']:.3f} | {b['mean']:.3f} ± {b['std']:.3f} | {ratio:.2f} |")
    lines += ["", "± is the standard deviation over the team's seeds (population std, ddof=0); the strongest-of-K column takes each seed's lowest win rate over its attackers."]
    return "\n".join(lines) + "\n", figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teams", required=True, help="label=run_dir,... of trained teams (3 seeds each)")
    ap.add_argument("--advs", default="paad,atsa")
    ap.add_argument("--single-steps", type=int, default=500_000)
    ap.add_argument("--attackers", type=int, default=3)
    ap.add_argument("--steps", type=int, default=1_000_000, help="env steps per seed of each of the K attackers")
    ap.add_argument("--out", default="benchmarks/results_strongest")
    ap.add_argument("--archive", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "strongest"))
    ap.add_argument("--compare", default="ATSA")
    args = ap.parse_args()
    teams = dict(item.split("=", 1) for item in args.teams.split(","))
    advs = args.advs.split(",")
    for label, d in teams.items():
        if not os.path.isfile(os.path.join(d, "team.msgpack")):
            print(f"--teams: {label}={d} holds no trained team (team.msgpack)", file=sys.stderr)
            return 2
    from jarob.report import attackers_per_seed, cross_table, read_cells, strongest, table_markdown

    start = time.time()
    os.makedirs(args.out, exist_ok=True)
    protocols = {"one": (1, args.single_steps), "best": (args.attackers, args.steps)}
    cells = {"one": [], "best": []}
    for team, team_dir in teams.items():  # each team's attackers, then its evaluation
        for adv in advs:
            for kind, (k, steps) in protocols.items():
                from_archive(args.archive, args.out, attack_name(kind, adv, team), ("summary.json", "config.yaml", "adversary.msgpack"))
                run_once("jarob.attack", os.path.join(args.out, attack_name(kind, adv, team)), [f"victim={team_dir}", f"adv={adv}", f"attackers={k}", f"total_steps={steps}"])
                to_archive(args.archive, args.out, attack_name(kind, adv, team), ARCHIVED)
        dirs = [os.path.join(args.out, attack_name(kind, adv, team)) for kind in protocols for adv in advs]
        from_archive(args.archive, args.out, f"eval_{team}", ("cells.csv",))  # re-evaluated if it lacks a column
        eval_dir = evaluate(args.out, team, team_dir, dirs)
        to_archive(args.archive, args.out, f"eval_{team}", ("cells.csv",))
        for c in read_cells(os.path.join(eval_dir, "cells.csv")):
            kind, _, rest = c.adversary.partition("_")
            c = dataclasses.replace(c, team=team, adversary=rest.partition("_vs_")[0] if c.adversary != "none" else "none")
            for k in protocols:
                if c.adversary == "none" or (kind == k and c.adversary in advs):
                    cells[k].append(c)
    labels, compare = list(teams), args.compare if args.compare in teams else list(teams)[0]
    tables, md = {}, []
    for kind in protocols:
        reduced = strongest(cells[kind], has_win=True)
        tables[kind] = cross_table(reduced, labels, ["none", *advs], "win_rate", compare, attackers_per_seed(cells[kind]))
        k, steps = protocols[kind]
        md.append(table_markdown(tables[kind], f"{'one attacker' if k == 1 else f'strongest of {k} attackers'} per team seed, {steps:,} env steps each"))
    side, figures = comparison(tables["one"], tables["best"], labels, advs, args.attackers, args.single_steps, args.steps)
    curves_figure(args.out, labels, advs, os.path.join(args.out, "curves.png"))
    sps = {kind: [json.load(open(os.path.join(args.out, attack_name(kind, a, t), "summary.json")))["sps"] for t in labels for a in advs] for kind in protocols}
    text = "\n".join(md) + "\n### One attacker against the strongest of K, side by side\n\n" + side
    with open(os.path.join(args.out, "comparison.md"), "w") as f:
        f.write(text)
    print(text)

    here = os.path.dirname(os.path.abspath(__file__))
    commit = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip() or None
    result = {"teams": teams, "advs": advs, "protocols": protocols, "figures": figures, "tables": tables, "sps": sps, "commit": commit, "wall_s": round(time.time() - start, 1)}
    with open(os.path.join(args.out, "figures.json"), "w") as f:
        json.dump(result, f, indent=2)
    to_archive(args.archive, args.out, "", ("comparison.md", "figures.json", "curves.png"))
    stds = {key: f["std_ratio"] for key, f in figures.items() if not key.startswith("NoAdv")}
    print("std ratio (strongest-of-K / one) of the non-NoAdv rows, target <= 0.5:", ", ".join(f"{k} {v:.2f}" for k, v in stds.items()))
    print(f"mean env steps/s of the attack runs: one {np.mean(sps['one']):,.0f}, best {np.mean(sps['best']):,.0f}; wall {time.time() - start:,.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
