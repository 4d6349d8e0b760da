"""ATSA's Table 1 on SMAX 3m (issues 4 and 5) and Table 2 on the CAV merge (issue 41): robust-training rows x adversary columns, measured here.

    python benchmarks/atsa_tables.py [--env smax_3m|cav_merge] [--algs qmix,vdn] [--out benchmarks/results_table1|2]
        [--noadv-steps 2000000] [--robust-steps 3000000] [--attack-steps 1000000] [--attackers 3]
        [--rows NoAdv,RN,FGSM,ATLA,PAAD,PR,PR-REP,ERNIE,ERNIE-plain,ERNIE-kl,ERNIE-mix,ERNIE-mix-S,ERNIE-S1,ERNIE-mix-S1,RAP,ATSA,ATSA-k0,ATSA-p05,ATSA-k025,ATSA-a02,ATSA-h128,ATSA-r33,ATSA-r50,ATSA-r33-p05,ATSA-r33-ctd,ATSA-r33-ctd-cons,ATSA-r33-ctd-cons01,ATSA-r33-6M]
        [--columns none,rn,fgsm,atla,paad,atsa] [--reference NoAdv]

For every learner (QMIX, VDN), 3 seeds each:
1. trains the rows through `python -m jarob.train`: NoAdv (adv=none), RN (adv=rn), FGSM
   (adv=fgsm), ATLA (adv=atla), PAAD (adv=paad), the regularized rows PR (reg=pr), PR-REP
   (reg=pr_rep), ERNIE (reg=ernie, Stackelberg) and ERNIE-plain (reg=ernie
   reg.stackelberg=false), ERNIE-kl (plain ERNIE with D = the KL of the softmax(Q / 0.1)
   policies instead of the l2 distance of the utilities), ERNIE-mix (plain ERNIE with D = the l2
   distance weighted by (dQ_tot/dQ_i)^2, reg.distance=mixer_l2, lambda 1), ERNIE-mix-S (the same,
   Stackelberg), ERNIE-S1 and ERNIE-mix-S1 (ERNIE and ERNIE-mix-S differentiated through the last
   ascent step only, reg.unroll=1), RAP (adv=rap), ATSA (adv=atsa), the SDor-STor ablation ATSA-k0
   (adv=atsa adv.director.kappa=0), ATSA-p05 (ATSA with half the training episodes attacked,
   protocol.attack_prob=0.5, instead of 0.8), ATSA-k025 (kappa 0.025, the top of the paper's range),
   ATSA-a02 (SDor's temperature annealed to 0.2 instead of 0.05: a more stochastic director),
   ATSA-h128 (ATSA with a team GRU 128 wide instead of 64), ATSA-r33 (ATSA with its acting
   budget ramped from 0 to eps over the first third of training, protocol.ramp_frac=0.333),
   ATSA-r50 (the same ramp over the first half, protocol.ramp_frac=0.5), ATSA-r33-p05 (ATSA-r33
   with half the training episodes attacked), ATSA-r33-ctd (ATSA-r33 whose team also fits the TD
   loss on the clean view of its sequences, protocol.clean_td=1), ATSA-r33-ctd-cons (that plus the
   consistency term, protocol.consistency=1: a clean fit and an invariance term, as in TRADES),
   ATSA-r33-ctd-cons01 (the consistency term at 0.1, jarob's default ERNIE lambda, reg.weight;
   the ERNIE paper's text gives no value) and ATSA-r33-6M
   (ATSA-r33's recipe, the budget ramped over the first 1M env steps, trained for 6M env steps:
   ROW_STEPS gives a row its own budget in place of --robust-steps) and ATSA-r33-u12
   (ATSA-r33 with 12 gradient steps per rollout instead of 6: is the team's learner the ceiling
   on its clean play?);
2. trains ATLA, PAAD and ATSA attackers against every row's team (`python -m jarob.attack
   attackers=3 total_steps=1000000`: three per team seed, for the budget at which the victim's win
   rate stops falling, benchmarks/attacker_plateau.py): the learned columns of a row use the
   attackers trained against it, each team seed's strongest of its three (issue 44; the archive's
   rows measured before it used one 500k-step attacker per seed: `--attackers 1 --attack-steps
   500000` reads them, and other protocols are kept apart under their own directory names,
   `protocol_tag`);
3. evaluates every row against none, rn, fgsm, pgd (10 steps) and the three learned attackers at
   the env's eps (0.25 on smax_3m), 500 episodes per cell (`python -m jarob.evaluate`, one call per row), merges the
   cells and writes the cross table over `--columns` (the paper's six by default; add pgd for
   issue 4's) with mean +- std over seeds (ddof 0), AVG (+- over seeds) and AVG in the paper's
   form (+- over the columns), bold best and the rank-sum test of ATSA against every row into
   out/<alg>/table/;
and prints the issues' figures beside their targets and the wall time.

`--env` picks the table (BENCHES): smax_3m is Table 1 (eps 0.25, win rate; archive
benchmarks/results/table1), cav_merge is Table 2 (eps 0.05, the env's budget; return and crash
rate, the lowest return being a seed's strongest attacker; archive benchmarks/results/table2, its
figures the paper's finding: the ATSA row has the best AVG return and the lowest AVG crash rate).
Every row's training, attack and evaluation wall times are written to out/<alg>/wall.json and
printed. Existing run directories are reused (a run directory with a summary.json is not retrained), so an interrupted benchmark
resumes: a killed run continues from its last checkpoint, or starts again if it had none.

Every row whose evaluation is complete is archived under `--archive` (default
benchmarks/results/<table1|table2>, kept in the repository): the summary.json and config.yaml of its team and
of its three attackers, its cells.csv and an archived.json naming the commit and date it was
measured at and its wall times. A row the archive holds whole is not trained, attacked or evaluated again; its cells
and summaries come from the archive. So a table too long for one machine's lifetime is built row by
row (`--rows <one row>` at a time), and every number in it can be traced to the run that made it.
`--archive ''` turns this off.

`--reference NoAdv` also writes the table the paper's way (its Table 1 trains each column's adversary
once, "no re-training is performed for each cell"): every row against the three attackers trained
against the reference row's team, into out/<alg>/table_reference_<row>/; the none, rn and fgsm
cells are the row's own (the same evaluation keys give the same values). Each row is evaluated
against them once (out/<alg>/ref_<row>_<team>/), and archived beside the row.
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
from typing import Callable

from common import report, run_once

ROWS = {
    "NoAdv": ["adv=none"],
    "RN": ["adv=rn"],
    "FGSM": ["adv=fgsm"],
    "ATLA": ["adv=atla"],
    "PAAD": ["adv=paad"],
    "PR": ["reg=pr"],
    "PR-REP": ["reg=pr_rep"],
    "ERNIE": ["reg=ernie"],
    "ERNIE-plain": ["reg=ernie", "reg.stackelberg=false"],
    "ERNIE-kl": ["reg=ernie", "reg.stackelberg=false", "reg.distance=kl", "reg.temperature=0.1"],
    "ERNIE-mix": ["reg=ernie", "reg.stackelberg=false", "reg.distance=mixer_l2", "reg.weight=1"],
    "ERNIE-mix-S": ["reg=ernie", "reg.distance=mixer_l2", "reg.weight=1"],
    "ERNIE-S1": ["reg=ernie", "reg.unroll=1"],
    "ERNIE-mix-S1": ["reg=ernie", "reg.distance=mixer_l2", "reg.weight=1", "reg.unroll=1"],
    "RAP": ["adv=rap"],
    "ATSA": ["adv=atsa"],
    "ATSA-k0": ["adv=atsa", "adv.director.kappa=0"],
    "ATSA-p05": ["adv=atsa", "protocol.attack_prob=0.5"],
    "ATSA-k025": ["adv=atsa", "adv.director.kappa=0.025"],
    "ATSA-a02": ["adv=atsa", "adv.director.alpha_end=0.2"],
    "ATSA-h128": ["adv=atsa", "alg.hidden_dim=128"],
    "ATSA-r33": ["adv=atsa", "protocol.ramp_frac=0.333"],
    "ATSA-r50": ["adv=atsa", "protocol.ramp_frac=0.5"],
    "ATSA-r33-p05": ["adv=atsa", "protocol.ramp_frac=0.333", "protocol.attack_prob=0.5"],
    "ATSA-r33-ctd": ["adv=atsa", "protocol.ramp_frac=0.333", "protocol.clean_td=1"],
    "ATSA-r33-ctd-cons": ["adv=atsa", "protocol.ramp_frac=0.333", "protocol.clean_td=1", "protocol.consistency=1"],
    "ATSA-r33-ctd-cons01": ["adv=atsa", "protocol.ramp_frac=0.333", "protocol.clean_td=1", "protocol.consistency=0.1"],
    "ATSA-r33-6M": ["adv=atsa", "protocol.ramp_frac=0.1667"],
    "ATSA-r33-u12": ["adv=atsa", "protocol.ramp_frac=0.333", "alg.updates_per_rollout=12"],
}
ROW_STEPS = {"ATSA-r33-6M": 6_000_000}  # rows trained for their own env-step budget, not --robust-steps
STATIC = ["none", "rn", "fgsm", "pgd"]
LEARNED = ["atla", "paad", "atsa"]
COLUMNS = ["none", "rn", "fgsm", "atla", "paad", "atsa"]


@dataclasses.dataclass(frozen=True)
class Bench:
    """One of the paper's tables (BENCHES, keyed by env): its archive under benchmarks/results/,
    its teams' default training budgets (env steps per seed) and the figures it reports."""

    table: str
    archive: str
    noadv_steps: int
    robust_steps: int
    figures: Callable[..., None]  # (alg, tables, rows, args, figures, targets, detail): fills the last three


def _cells(path: str, rename: dict) -> list:
    from jarob.report import read_cells

    return [dataclasses.replace(c, adversary=rename.get(c.adversary, c.adversary)) for c in read_cells(path)]


def _summary(args, alg: str, row: str) -> dict:
    """A row's training summary.json: from its run directory, else from the archive."""
    for root in (args.out, args.archive):
        path = os.path.join(root, alg, row, "summary.json") if root else ""
        if path and os.path.isfile(path):
            return json.load(open(path))
    raise FileNotFoundError(f"no summary.json for the {alg} {row} row in {args.out} or {args.archive}")


def _final_spread(summary: dict) -> float:
    """Std over seeds of a training run's final greedy win rate (summary.json)."""
    import numpy as np

    return float(np.std(summary["final"]["win_rate"]))


def _train_steps(row: str, args) -> int:
    """The env steps per seed a row's team trains for: its own (ROW_STEPS), or the flag for its kind."""
    return ROW_STEPS.get(row, args.noadv_steps if row == "NoAdv" else args.robust_steps)


FIRST_PROTOCOL = (1, 500_000)  # attackers per seed and their env steps before issue 44: most of the archive


def protocol_tag(args) -> str:
    """'' for the first attacker protocol (one attacker per seed, 500k env steps), else
    'k<attackers>_<steps>': it names the attack and evaluation directories, so the archive keeps
    a row's cells under every protocol apart."""
    return "" if (args.attackers, args.attack_steps) == FIRST_PROTOCOL else f"k{args.attackers}_{args.attack_steps}"


def attack_dir(adv: str, row: str, args) -> str:
    """The run directory of the `adv` attackers of `row`'s team under the attacker protocol."""
    tag = protocol_tag(args)
    return f"attack_{adv}_{tag}_vs_{row}" if tag else f"attack_{adv}_vs_{row}"


def _row_dirs(base: str, row: str, args) -> tuple[list[str], list[str]]:
    """(the row's run directories: team and attackers; its evaluation directories with a cells.csv:
    every protocol's, whose cells against another protocol's attackers keep those attackers' names)."""
    runs = [row, *(attack_dir(adv, row, args) for adv in LEARNED)]
    evals = sorted(d for d in os.listdir(base) if (d == f"eval_{row}" or d.startswith(f"eval_{row}__")) and os.path.isfile(os.path.join(base, d, "cells.csv"))) if os.path.isdir(base) else []
    return runs, evals


def _row_cells(base: str, row: str, args) -> list:
    """The cells of every evaluation of `row` under `base`, the protocol's learned attackers renamed to their column."""
    runs, evals = _row_dirs(base, row, args)
    rename = {name: adv for adv, name in zip(LEARNED, runs[1:])}
    return [c for d in evals for c in _cells(os.path.join(base, d, "cells.csv"), rename)]


def _complete(cells: list) -> bool:
    return {a for a in STATIC + LEARNED} <= {c.adversary for c in cells}


def _archived(archive_base: str, row: str, args) -> list | None:
    """The archived cells of `row` if the archive holds it whole (every column and every summary)."""
    if not os.path.isdir(archive_base):
        return None
    runs, _ = _row_dirs(archive_base, row, args)
    cells = _row_cells(archive_base, row, args)
    whole = _complete(cells) and all(os.path.isfile(os.path.join(archive_base, r, "summary.json")) for r in runs)
    return cells if whole else None


def _archive_row(base: str, archive_base: str, row: str, args, wall: dict) -> None:
    """Copy a measured row's summaries, configs, trained team and attackers (team.msgpack,
    adversary.msgpack: every seed, so the row can be attacked again without retraining) and cells
    into the archive, with its provenance; an attacker's metrics.csv and attack_curve.png too (the
    victim's win rate under it, chunk by chunk)."""
    runs, evals = _row_dirs(base, row, args)
    for d in runs:
        os.makedirs(os.path.join(archive_base, d), exist_ok=True)
        curve = ("metrics.csv", "attack_curve.png") if d != row else ()
        for name in ("summary.json", "config.yaml", "attack.json", "team.msgpack", "adversary.msgpack", *curve):
            if os.path.isfile(os.path.join(base, d, name)):
                shutil.copy2(os.path.join(base, d, name), os.path.join(archive_base, d, name))
    for d in evals:
        os.makedirs(os.path.join(archive_base, d), exist_ok=True)
        shutil.copy2(os.path.join(base, d, "cells.csv"), os.path.join(archive_base, d, "cells.csv"))
    here = os.path.dirname(os.path.abspath(__file__))
    git = lambda *a: subprocess.run(["git", "-C", here, *a], capture_output=True, text=True).stdout.strip()  # noqa: E731
    provenance = {
        "commit": git("rev-parse", "HEAD") or None,
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "archived_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(sys.argv),
        "wall_s": wall,
    }
    with open(os.path.join(archive_base, row, "archived.json"), "w") as f:
        json.dump(provenance, f, indent=2)
    print(f"# archived {row} in {archive_base}", flush=True)


def _evaluate(base: str, row: str, adversaries: list[str], out: str) -> None:
    """`python -m jarob.evaluate` of one row's team (all seeds) against `adversaries`."""
    cmd = [sys.executable, "-m", "jarob.evaluate", f"runs=[{os.path.join(base, row)}]", f"adversaries=[{','.join(adversaries)}]", "episodes=500", f"out={out}", "progress=false"]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def reference_cells(base: str, archive_base: str, rows: list[str], ref: str, own: list, args) -> list:
    """The paper's protocol: each row's none/rn/fgsm cells (from `own`) and its cells against the
    attackers trained once against the `ref` row, renamed to their columns; evaluated where neither
    the run directory nor the archive holds them (then archived)."""
    rename = {attack_dir(adv, ref, args): adv for adv in LEARNED}
    cells = [c for c in own if c.adversary in ("none", "rn", "fgsm")]
    tag = protocol_tag(args)
    for row in rows:
        d = f"ref_{ref}_{tag}_{row}" if tag else f"ref_{ref}_{row}"
        here, kept = os.path.join(base, d, "cells.csv"), os.path.join(archive_base, d, "cells.csv") if archive_base else ""
        if not os.path.isfile(here) and not (kept and os.path.isfile(kept)):
            for name in (row, *rename):
                if not os.path.isfile(os.path.join(base, name, "summary.json")):
                    raise SystemExit(f"--reference {ref}: {os.path.join(base, name)} is not a finished run (rows archived before 2026-12-04 keep no parameters), so {row} cannot be evaluated against {ref}'s attackers")
            _evaluate(base, row, [os.path.join(base, name) for name in rename], os.path.join(base, d))
        if os.path.isfile(here) and kept:  # measured here: archived beside the row, as _archive_row does
            os.makedirs(os.path.dirname(kept), exist_ok=True)
            shutil.copy2(here, kept)
        cells += _cells(here if os.path.isfile(here) else kept, rename)
    return cells


def table_for(alg: str, out: str, rows: list[str], columns: list[str], args, env) -> dict:
    """Train, attack and evaluate one learner's rows on `env`, timing each row's training, attackers
    and evaluations into out/<alg>/wall.json; returns every metric's table (from table.json)."""
    from jarob.report import write_report

    base = os.path.join(out, alg)
    archive_base = os.path.join(args.archive, alg) if args.archive else ""
    archived = {row: c for row in rows if archive_base and (c := _archived(archive_base, row, args)) is not None}
    for row in archived:
        print(f"# {row}: from the archive {archive_base}", flush=True)
    live = [row for row in rows if row not in archived]
    wall_path = os.path.join(base, "wall.json")
    wall = json.load(open(wall_path)) if os.path.isfile(wall_path) else {}

    def timed(row: str, part: str, fn):
        """fn(), its wall s added to wall[row][part] (a reused run adds ~0) and wall.json saved."""
        t0 = time.time()
        result = fn()
        entry = wall.setdefault(row, {})
        entry[part] = entry.get(part, 0.0) + time.time() - t0
        os.makedirs(base, exist_ok=True)
        with open(wall_path, "w") as f:
            json.dump(wall, f, indent=2)
        return result

    for row in live:
        train = [f"env={args.env}", f"alg={alg}", "seeds=3", f"total_steps={_train_steps(row, args)}", *ROWS[row]]
        timed(row, "train_s", lambda: run_once("jarob.train", os.path.join(base, row), train))
    for row in live:
        for adv in LEARNED:
            attack = [f"victim={os.path.join(base, row)}", f"adv={adv}", f"total_steps={args.attack_steps}", f"attackers={args.attackers}"]
            timed(row, "attack_s", lambda: run_once("jarob.attack", os.path.join(base, attack_dir(adv, row, args)), attack))
    cells = []
    for row in rows:
        if row in archived:
            cells += archived[row]
            continue
        attackers = {adv: os.path.join(base, attack_dir(adv, row, args)) for adv in LEARNED}
        # Cells of earlier evaluations of this row are reused; only missing columns are evaluated.
        row_cells = _row_cells(base, row, args)
        have = {c.adversary for c in row_cells}
        missing = [a for a in STATIC + LEARNED if a not in have]
        if missing:
            names = [attackers.get(a, a) for a in missing]
            tag = protocol_tag(args)
            suffix = "_".join(([tag] if tag else []) + missing)
            eval_out = os.path.join(base, f"eval_{row}" if not os.path.isdir(os.path.join(base, f"eval_{row}")) else f"eval_{row}__{suffix}")
            timed(row, "eval_s", lambda: _evaluate(base, row, names, eval_out))
            row_cells = _row_cells(base, row, args)
        if archive_base:
            _archive_row(base, archive_base, row, args, wall.get(row, {}))
        cells += row_cells
    compare = "ATSA" if "ATSA" in rows else rows[0]
    layout = (env.default_eps, env.has_win, compare, env.name, False, env.has_crash)
    write_report(os.path.join(base, "table"), cells, rows, columns, *layout)
    print(open(os.path.join(base, "table", "table.md")).read())
    if args.reference:
        ref_cells = timed("reference", "eval_s", lambda: reference_cells(base, archive_base, rows, args.reference, cells, args))
        ref_dir = os.path.join(base, f"table_reference_{args.reference}")
        write_report(ref_dir, ref_cells, rows, [c for c in columns if c != "pgd"], *layout)
        print(f"# the paper's protocol: atla, paad and atsa are the attackers trained against {args.reference}")
        print(open(os.path.join(ref_dir, "table.md")).read())
    for row in rows:
        w = wall.get(row, {})
        print(f"# {row} wall: " + (", ".join(f"{k[:-2]} {v:,.0f} s" for k, v in w.items()) if w else "from the archive"))
    return json.load(open(os.path.join(base, "table", "table.json")))["tables"]


def table1_figures(alg: str, tables: dict, rows: list[str], args, figures: dict, targets: dict, detail: dict) -> None:
    """Issues 4 and 5's figures on a win-rate table (smax_3m), into figures/targets/detail."""
    t = tables["win_rate"]
    win = lambda row, col: t["rows"][row][col]["mean"]  # noqa: E731
    if "NoAdv" in rows:
        for adv in ("paad", "atsa"):
            figures[f"{alg}_noadv_under_{adv}"], targets[f"{alg}_noadv_under_{adv}"] = win("NoAdv", adv), ("<", 0.10)
        key = f"{alg}_noadv_under_atla_minus_paad"
        figures[key], targets[key] = win("NoAdv", "atla") - win("NoAdv", "paad"), (">", 0.0)
        detail[key] = f"NoAdv under atla {win('NoAdv', 'atla'):.3f}, under paad {win('NoAdv', 'paad'):.3f} (ATLA the weaker attacker: QMIX study Table I, 3m, 0.81 vs 0.00; ATSA Table 1 3s_3z, 8m, not 3m)"
    if "FGSM" in rows:
        best = min(win("FGSM", adv) for adv in ("paad", "atsa"))
        figures[f"{alg}_fgsm_team_learned_minus_fgsm"], targets[f"{alg}_fgsm_team_learned_minus_fgsm"] = best - win("FGSM", "fgsm"), ("<", -0.1)
        detail[f"{alg}_fgsm_team_learned_minus_fgsm"] = f"fgsm {win('FGSM', 'fgsm'):.3f}, paad {win('FGSM', 'paad'):.3f}, atsa {win('FGSM', 'atsa'):.3f}"
    if "ATSA" in rows:
        figures[f"{alg}_atsa_clean"], targets[f"{alg}_atsa_clean"] = win("ATSA", "none"), (">=", 0.9)
        figures[f"{alg}_atsa_avg"], targets[f"{alg}_atsa_avg"] = win("ATSA", "AVG"), (">=", 0.85)
        others = {r: win(r, "AVG") for r in rows if not r.startswith("ATSA")}
        if others:
            figures[f"{alg}_atsa_avg_minus_best_other"], targets[f"{alg}_atsa_avg_minus_best_other"] = win("ATSA", "AVG") - max(others.values()), (">", 0.0)
            detail[f"{alg}_atsa_avg_minus_best_other"] = ", ".join(f"{r} {v:.3f}" for r, v in others.items())
    if "NoAdv" in rows:
        for row in [r for r in rows if any(a.startswith("reg=") for a in ROWS[r])]:
            key = f"{alg}_{row.lower()}_minus_noadv_under_fgsm"
            figures[key], targets[key] = win(row, "fgsm") - win("NoAdv", "fgsm"), (">", 0.0)
            detail[key] = f"{row} {win(row, 'fgsm'):.3f} vs NoAdv {win('NoAdv', 'fgsm'):.3f} under fgsm; clean {win(row, 'none'):.3f}"
    if "ERNIE" in rows and "ERNIE-plain" in rows:
        spread = {r: _final_spread(_summary(args, alg, r)) for r in ("ERNIE", "ERNIE-plain")}
        key = f"{alg}_ernie_final_win_rate_std_st_minus_plain"
        figures[key], targets[key] = spread["ERNIE"] - spread["ERNIE-plain"], ("<=", 0.0)
        detail[key] = f"std over seeds of the final greedy win rate: Stackelberg {spread['ERNIE']:.3f}, plain {spread['ERNIE-plain']:.3f}"
    if "ATSA-k0" in rows and "ATSA" in rows:
        detail[f"{alg}_atsa_avg"] = f"kappa=0 ablation AVG {win('ATSA-k0', 'AVG'):.3f}, clean {win('ATSA-k0', 'none'):.3f}"


def table2_figures(alg: str, tables: dict, rows: list[str], args, figures: dict, targets: dict, detail: dict) -> None:
    """Issue 41's figures on a return and crash-rate table (cav_merge): the paper's finding that the
    ATSA row has the best AVG return and the lowest AVG crash rate (its Table 2, QMIX: ATSA 63.74 /
    0.01, NoAdv 41.15 / 0.05), and how far a learned attacker takes the undefended team."""
    ret = lambda row, col: tables["return"]["rows"][row][col]["mean"]  # noqa: E731
    crash = lambda row, col: tables["crash_rate"]["rows"][row][col]["mean"]  # noqa: E731
    if "NoAdv" in rows:
        for adv in ("paad", "atsa"):
            key = f"{alg}_noadv_crash_under_{adv}_minus_none"
            figures[key], targets[key] = crash("NoAdv", adv) - crash("NoAdv", "none"), (">", 0.0)
            detail[key] = f"NoAdv crash rate {crash('NoAdv', 'none'):.3f} clean, {crash('NoAdv', adv):.3f} under {adv}; return {ret('NoAdv', 'none'):.2f} / {ret('NoAdv', adv):.2f}"
    if "ATSA" in rows:
        others = [r for r in rows if not r.startswith("ATSA")]
        if others:
            best = max(others, key=lambda r: ret(r, "AVG"))
            key = f"{alg}_atsa_avg_return_minus_best_other"
            figures[key], targets[key] = ret("ATSA", "AVG") - ret(best, "AVG"), (">", 0.0)
            detail[key] = ", ".join(f"{r} {ret(r, 'AVG'):.2f}" for r in ["ATSA", *others]) + " (paper QMIX: ATSA 63.74, NoAdv 41.15)"
            low = min(others, key=lambda r: crash(r, "AVG"))
            key = f"{alg}_atsa_avg_crash_minus_lowest_other"
            figures[key], targets[key] = crash("ATSA", "AVG") - crash(low, "AVG"), ("<", 0.0)
            detail[key] = ", ".join(f"{r} {crash(r, 'AVG'):.3f}" for r in ["ATSA", *others]) + " (paper QMIX: ATSA 0.01, NoAdv 0.05)"
        figures[f"{alg}_atsa_clean_crash"], targets[f"{alg}_atsa_clean_crash"] = crash("ATSA", "none"), ("<=", 0.05)
        detail[f"{alg}_atsa_clean_crash"] = f"clean return {ret('ATSA', 'none'):.2f}"


# cav_merge's robust rows train for 2M env steps, as its NoAdv row does: a NoAdv team's crash rate
# is at most 0.05 after 200k (RESULTS.md, the CAV merge), and 3M per row does not fit the CPU.
BENCHES = {
    "smax_3m": Bench("Table 1", "table1", 2_000_000, 3_000_000, table1_figures),
    "cav_merge": Bench("Table 2", "table2", 2_000_000, 2_000_000, table2_figures),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="smax_3m", help=f"the table's env: {', '.join(f'{k} ({b.table})' for k, b in BENCHES.items())}")
    ap.add_argument("--algs", default="qmix,vdn")
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--noadv-steps", type=int, default=None, help="env steps per seed of the NoAdv team (default: the env's, BENCHES)")
    ap.add_argument("--robust-steps", type=int, default=None, help="env steps per seed of every other row's team (default: the env's, BENCHES)")
    ap.add_argument("--attack-steps", type=int, default=1_000_000, help="env steps per seed of every attacker (1M: the plateau on smax_3m, RESULTS.md)")
    ap.add_argument("--attackers", type=int, default=3, help="attackers per team seed; a learned column is the strongest of them")
    ap.add_argument("--columns", default=",".join(COLUMNS))
    ap.add_argument("--out", default=None, help="default benchmarks/results_<the env's table>")
    ap.add_argument("--reference", default="", help="also tabulate every row against the attackers trained against this row (the paper's protocol)")
    ap.add_argument("--archive", default=None, help="default benchmarks/results/<the env's table>; '' turns archiving off")
    args = ap.parse_args()
    if args.env not in BENCHES:
        print(f"--env: unknown {args.env!r}; allowed: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    bench = BENCHES[args.env]
    args.noadv_steps = bench.noadv_steps if args.noadv_steps is None else args.noadv_steps
    args.robust_steps = bench.robust_steps if args.robust_steps is None else args.robust_steps
    args.out = args.out or os.path.join("benchmarks", f"results_{bench.archive}")
    if args.archive is None:
        args.archive = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", bench.archive)
    rows, columns = args.rows.split(","), args.columns.split(",")
    if args.reference and args.reference not in rows:
        print(f"--reference: {args.reference!r} is not one of --rows ({args.rows})", file=sys.stderr)
        return 2
    for flag, given, allowed in (("--rows", rows, list(ROWS)), ("--columns", columns, STATIC + LEARNED)):
        unknown = [r for r in given if r not in allowed]
        if unknown:
            print(f"{flag}: unknown {unknown[0]!r}; allowed: {', '.join(allowed)}", file=sys.stderr)
            return 2
    from jarob import envs

    env = envs.make(args.env)
    start = time.time()
    figures, targets, detail = {}, {}, {}
    for alg in args.algs.split(","):
        tables = table_for(alg, args.out, rows, columns, args, env)
        bench.figures(alg, tables, rows, args, figures, targets, detail)
        sps = {r: _summary(args, alg, r)["sps"] for r in rows if r in ("NoAdv", "ATSA")}
        if len(sps) == 2:
            figures[f"{alg}_atsa_sps_ratio"], targets[f"{alg}_atsa_sps_ratio"] = sps["ATSA"] / sps["NoAdv"], (">=", 0.5)
            detail[f"{alg}_atsa_sps_ratio"] = f"ATSA {sps['ATSA']:,.0f} vs NoAdv {sps['NoAdv']:,.0f} env steps/s, 3 seeds"
        for key in [k for k in figures if k.startswith(alg)]:
            detail.setdefault(key, "")
    own = "".join(f", {r} {ROW_STEPS[r]:,}" for r in rows if r in ROW_STEPS)
    title = f"{args.env} ({bench.table}), eps {env.default_eps:g}, 3 seeds; NoAdv {args.noadv_steps:,}, other rows {args.robust_steps:,}{own}, {args.attackers} attacker(s) per seed, {args.attack_steps:,} env steps each; columns {','.join(columns)}; wall {time.time() - start:,.0f} s"
    ok = report(title, figures, targets, detail, os.path.join(args.out, "figures.json"), {"rows": rows})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
