"""The paper-style outputs of a cross evaluation: cells.csv, table.md/json, heatmap, eps sweep.

Rows are trained teams, columns adversaries; a table entry is mean +- std over the team's seeds
of the per-seed metric (win rate where the env has wins, else return), an AVG column averages
the adversary columns per seed, the best mean of each column is bold (every row that ties), and a Wilcoxon rank-sum
test compares the `compare` row's per-(seed, adversary) values with every other row's.
Every std is numpy's default, the population std (ddof 0). AVG_paper is ATSA's Table 1 form of
AVG: the mean of the row's column means +- their std over the columns (see `paper_avg`). A learned
column with several attackers per team seed is the strongest of them on each seed (`strongest`);
cells.csv keeps every attacker's cell.
"""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict

import numpy as np

from jarob.evaluation import Cell

CELL_COLUMNS = ["team", "seed", "adversary", "eps", "win_rate", "return", "length", "attacker", "crash_rate"]
LOWER_IS_BETTER = {"crash_rate"}  # metrics whose best row is the lowest


def write_cells(cells: list[Cell], path: str) -> None:
    """One row per cell; `attacker` is the learned column's attacker (empty for other columns)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CELL_COLUMNS)
        for c in cells:
            who = "" if c.attacker is None else c.attacker
            w.writerow([c.team, c.seed, c.adversary, f"{c.eps:g}", f"{c.win_rate:.6f}", f"{c.ret:.6f}", f"{c.length:.3f}", who, f"{c.crash_rate:.6f}"])


def read_cells(path: str) -> list[Cell]:
    """The cells of a cells.csv (`write_cells`; one written before attackers=K has no `attacker`,
    one written before crash rates none of them: 0)."""
    with open(path, newline="") as f:
        return [
            Cell(r["team"], int(r["seed"]), r["adversary"], float(r["eps"]), float(r["win_rate"]), float(r["return"]), float(r["length"]),
                 int(r["attacker"]) if r.get("attacker") else None, float(r.get("crash_rate") or 0.0))
            for r in csv.DictReader(f)
        ]


def strongest(cells: list[Cell], has_win: bool) -> list[Cell]:
    """Per (team, seed, adversary, eps), the cell of its strongest attacker: the lowest win rate
    (ties: the lowest return) where the env has wins, else the lowest return. A column's cells
    without an attacker pass unchanged; the order is that of each group's first cell."""
    groups: dict = {}
    for c in cells:
        groups.setdefault((c.team, c.seed, c.adversary, round(c.eps, 9)), []).append(c)
    rank = (lambda c: (c.win_rate, c.ret)) if has_win else (lambda c: c.ret)
    return [min(g, key=rank) for g in groups.values()]


def attackers_per_seed(cells: list[Cell]) -> dict:
    """{column: K} for every column with K > 1 attackers per team seed."""
    per: dict = defaultdict(set)
    for c in cells:
        if c.attacker is not None:
            per[c.adversary].add(c.attacker)
    return {a: len(ks) for a, ks in per.items() if len(ks) > 1}


def _metric(cell: Cell, metric: str) -> float:
    return {"win_rate": cell.win_rate, "crash_rate": cell.crash_rate}.get(metric, cell.ret)


# What a table's +- is, written under every markdown table and into table.json ("plus_minus").
SEED_STD = "± is the standard deviation over the team's seeds (population std, ddof=0)"
AVG_NOTE = "AVG is each seed's mean over the {n} columns ({cols}), then mean ± std over seeds like every other cell"
PAPER_STD = (
    "AVG (paper: ± over columns) is ATSA's Table 1 AVG: the mean over the {n} columns of the row's seed means, "
    "± their standard deviation over those columns (population std, ddof=0; the paper's six columns include the clean NoAdv); "
    "its mean is AVG's, only the ± differs"
)


def paper_avg(column_means: list[float]) -> dict:
    """ATSA's AVG of one row: the mean and the population std (ddof 0) over the columns of the
    row's column means (its seed means). ATSA Table 1's caption: "AVG represents the average
    performance of the protagonist agent under six adversaries", the six columns NoAdv, RN, FGSM,
    ATLA, PAAD, ATSA, the clean NoAdv included. Recomputed from the paper's row values (3 maps x 12
    rows x VDN, QMIX): the mean over the six matches 71 of its 72 AVGs to rounding (over the five
    without NoAdv: 4), ddof 0 matches 68 of the 72 +- (ddof 1: 8); in its Tables 2 (CAV reward) and
    5 (MPE) the mean over the six and ddof 0 match all 24 and 10 rows (ddof 1: none)."""
    m = np.asarray(column_means, dtype=float)
    return {"mean": float(m.mean()), "std": float(m.std(ddof=0))}


def cross_table(cells: list[Cell], teams: list[str], adversaries: list[str], metric: str, compare: str, strongest_of: dict | None = None, has_win: bool = True) -> dict:
    """The table as a dict: per row, per column (adversaries and AVG) the per-seed values, mean
    and std over seeds (ddof 0), and AVG_paper (`paper_avg` over the adversary columns); the best
    row of each column; rank-sum p-values of `compare` against each row. `cells` hold one value
    per (team, seed, column) (`strongest`); `strongest_of` {column: K} says which columns are
    the strongest of K attackers (chosen by win rate where `has_win`)."""
    from scipy.stats import ranksums

    values: dict = defaultdict(lambda: defaultdict(dict))  # team -> adversary -> seed -> value
    for c in cells:
        values[c.team][c.adversary][c.seed] = _metric(c, metric)
    rows = {}
    for t in teams:
        seeds = sorted(values[t][adversaries[0]])
        cols = {a: [values[t][a][s] for s in seeds] for a in adversaries}
        cols["AVG"] = [float(np.mean([values[t][a][s] for a in adversaries])) for s in seeds]
        rows[t] = {a: {"values": v, "mean": float(np.mean(v)), "std": float(np.std(v, ddof=0))} for a, v in cols.items()}
        rows[t]["AVG_paper"] = paper_avg([rows[t][a]["mean"] for a in adversaries])
    columns = list(adversaries) + ["AVG"]
    pick = min if metric in LOWER_IS_BETTER else max
    top = {a: pick(rows[t][a]["mean"] for t in teams) for a in columns}
    best = {a: [t for t in teams if np.isclose(rows[t][a]["mean"], top[a], rtol=0, atol=1e-9)] for a in columns}  # ties: all bold
    pooled = {t: [v for a in adversaries for v in rows[t][a]["values"]] for t in teams}
    tests = {}
    for t in teams:
        if t != compare:
            stat, p = ranksums(pooled[compare], pooled[t])
            tests[t] = {"statistic": float(stat), "p_value": float(p) if np.isfinite(p) else 1.0}
    n, names = len(adversaries), ", ".join(adversaries)
    plus_minus = {"cells": SEED_STD, "AVG": AVG_NOTE.format(n=n, cols=names), "AVG_paper": PAPER_STD.format(n=n)}
    of = {a: k for a, k in (strongest_of or {}).items() if a in adversaries}
    if of:
        plus_minus["strongest"] = strongest_note(of, has_win)
    return {"metric": metric, "columns": columns, "rows": rows, "best": best, "compare": compare, "ranksum": tests, "plus_minus": plus_minus, "strongest_of": of}


def strongest_note(strongest_of: dict, has_win: bool) -> str:
    """The table's line on its strongest-of-K columns ('' if none)."""
    if not strongest_of:
        return ""
    by_k: dict = defaultdict(list)
    for a, k in strongest_of.items():
        by_k[k].append(a)
    lowest = "the lowest win rate, ties by return" if has_win else "the lowest return"
    parts = "; ".join(f"{', '.join(cols)}: the strongest of {k} attackers" for k, cols in sorted(by_k.items()))
    return f"{parts}, per team seed ({lowest}; cells.csv has every attacker's value)"


def table_markdown(table: dict, title: str) -> str:
    """The table in markdown: the columns, AVG and AVG (paper: ± over columns), bold where the
    row's mean is the column's best (the lowest for a crash rate; AVG_paper's mean is AVG's),
    then what each ± is."""
    cols, rows, best = table["columns"], table["rows"], table["best"]
    header = cols + ["AVG (paper: ± over columns)"]
    lines = [f"### {title}", "", "| team | " + " | ".join(header) + " |", "|---" * (len(header) + 1) + "|"]
    for t, row in rows.items():
        entries = []
        for a, key in [(a, a) for a in cols] + [("AVG", "AVG_paper")]:
            s = f"{row[key]['mean']:.3f} ± {row[key]['std']:.3f}"
            entries.append(f"**{s}**" if t in best[a] else s)
        lines.append(f"| {t} | " + " | ".join(entries) + " |")
    pm = table["plus_minus"]
    lines += ["", f"{pm['cells']}. {pm['AVG']}.", f"{pm['AVG_paper']}."]
    if "strongest" in pm:
        lines += [f"{pm['strongest']}."]
    if table["ranksum"]:
        lines += ["", f"Wilcoxon rank-sum test of **{table['compare']}** against each row (its values over seeds x adversaries):", ""]
        lines += ["| row | statistic | p-value |", "|---|---|---|"]
        for t, r in table["ranksum"].items():
            lines.append(f"| {t} | {r['statistic']:.3f} | {r['p_value']:.4f} |")
    return "\n".join(lines) + "\n"


def heatmap(table: dict, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    teams, cols = list(table["rows"]), table["columns"]
    m = np.array([[table["rows"][t][a]["mean"] for a in cols] for t in teams])
    fig, ax = plt.subplots(figsize=(1.3 * len(cols) + 2.5, 0.6 * len(teams) + 1.8))
    vmax = 1.0 if table["metric"] in ("win_rate", "crash_rate") else max(float(m.max()), 1e-9)
    im = ax.imshow(m, cmap="viridis", vmin=0.0, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(teams)), teams)
    for i in range(len(teams)):
        for j in range(len(cols)):
            ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", color="w" if m[i, j] < 0.6 * vmax else "k")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label=table["metric"])
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def sweep_plot(cells: list[Cell], teams: list[str], adversaries: list[str], metric: str, path: str, title: str) -> None:
    """One curve per (team, adversary): mean +- std over seeds against eps (ATSA Figure 5)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by: dict = defaultdict(lambda: defaultdict(list))
    for c in cells:
        by[(c.team, c.adversary)][c.eps].append(_metric(c, metric))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for t in teams:
        for a in adversaries:
            pts = by[(t, a)]
            xs = sorted(pts)
            mean = np.array([np.mean(pts[x]) for x in xs])
            std = np.array([np.std(pts[x]) for x in xs])
            (line,) = ax.plot(xs, mean, marker="o", label=f"{t} / {a}")
            ax.fill_between(xs, mean - std, mean + std, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("eps")
    ax.set_ylabel(f"{metric}, mean ± std over seeds (ddof 0)")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(out: str, cells: list[Cell], teams: list[str], adversaries: list[str], eps: float, has_win: bool, compare: str, env_name: str, sweep: bool, has_crash: bool = False) -> dict:
    """Every output file; returns the main table's dict (every table is in table.json): win rate
    and return where the env has wins, else return, then the crash rate where it has crashes
    (with its own heatmap, heatmap_crash_rate.png)."""
    os.makedirs(out, exist_ok=True)
    write_cells(cells, os.path.join(out, "cells.csv"))
    of = attackers_per_seed(cells)
    cells = strongest(cells, has_win)
    at_eps = [c for c in cells if np.isclose(c.eps, eps)]
    metrics = (["win_rate", "return"] if has_win else ["return"]) + (["crash_rate"] if has_crash else [])
    tables = {m: cross_table(at_eps, teams, adversaries, m, compare, of, has_win) for m in metrics}
    main = tables[metrics[0]]
    md = [f"# {env_name}: trained teams x adversaries, eps = {eps:g}", ""]
    md += [table_markdown(tables[m], m.replace("_", " ")) for m in metrics]
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write("\n".join(md))
    with open(os.path.join(out, "table.json"), "w") as f:
        json.dump({"env": env_name, "eps": eps, "tables": tables}, f, indent=2)
    heatmap(main, os.path.join(out, "heatmap.png"), f"{env_name}, eps = {eps:g}: {main['metric']}")
    if has_crash:
        heatmap(tables["crash_rate"], os.path.join(out, "heatmap_crash_rate.png"), f"{env_name}, eps = {eps:g}: crash rate")
    if sweep:
        sweep_plot(cells, teams, adversaries, metrics[0], os.path.join(out, "sweep.png"), f"{env_name}: {metrics[0]} against eps")
    return main
