"""The paper-style outputs of a cross evaluation: cells.csv, table.md/json, heatmap, eps sweep.

Rows are trained teams, columns adversaries; a table entry is mean +- std over the team's seeds
of the per-seed metric (win rate where the env has wins, else return), an AVG column averages
the adversary columns per seed, the best mean of each column is bold (every row that ties), and a Wilcoxon rank-sum
test compares the `compare` row's per-(seed, adversary) values with every other row's.
"""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict

import numpy as np

from jarob.evaluation import Cell

CELL_COLUMNS = ["team", "seed", "adversary", "eps", "win_rate", "return", "length"]


def write_cells(cells: list[Cell], path: str) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CELL_COLUMNS)
        for c in cells:
            w.writerow([c.team, c.seed, c.adversary, f"{c.eps:g}", f"{c.win_rate:.6f}", f"{c.ret:.6f}", f"{c.length:.3f}"])


def _metric(cell: Cell, metric: str) -> float:
    return cell.win_rate if metric == "win_rate" else cell.ret


def cross_table(cells: list[Cell], teams: list[str], adversaries: list[str], metric: str, compare: str) -> dict:
    """The table as a dict: per row, per column (adversaries and AVG) the per-seed values, mean
    and std; the best row of each column; rank-sum p-values of `compare` against each row."""
    from scipy.stats import ranksums

    values: dict = defaultdict(lambda: defaultdict(dict))  # team -> adversary -> seed -> value
    for c in cells:
        values[c.team][c.adversary][c.seed] = _metric(c, metric)
    rows = {}
    for t in teams:
        seeds = sorted(values[t][adversaries[0]])
        cols = {a: [values[t][a][s] for s in seeds] for a in adversaries}
        cols["AVG"] = [float(np.mean([values[t][a][s] for a in adversaries])) for s in seeds]
        rows[t] = {a: {"values": v, "mean": float(np.mean(v)), "std": float(np.std(v))} for a, v in cols.items()}
    columns = list(adversaries) + ["AVG"]
    top = {a: max(rows[t][a]["mean"] for t in teams) for a in columns}
    best = {a: [t for t in teams if np.isclose(rows[t][a]["mean"], top[a], rtol=0, atol=1e-9)] for a in columns}  # ties: all bold
    pooled = {t: [v for a in adversaries for v in rows[t][a]["values"]] for t in teams}
    tests = {}
    for t in teams:
        if t != compare:
            stat, p = ranksums(pooled[compare], pooled[t])
            tests[t] = {"statistic": float(stat), "p_value": float(p) if np.isfinite(p) else 1.0}
    return {"metric": metric, "columns": columns, "rows": rows, "best": best, "compare": compare, "ranksum": tests}


def table_markdown(table: dict, title: str) -> str:
    cols, rows, best = table["columns"], table["rows"], table["best"]
    lines = [f"### {title}", "", "| team | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for t, row in rows.items():
        entries = []
        for a in cols:
            s = f"{row[a]['mean']:.3f} ± {row[a]['std']:.3f}"
            entries.append(f"**{s}**" if t in best[a] else s)
        lines.append(f"| {t} | " + " | ".join(entries) + " |")
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
    vmax = 1.0 if table["metric"] == "win_rate" else max(float(m.max()), 1e-9)
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
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(out: str, cells: list[Cell], teams: list[str], adversaries: list[str], eps: float, has_win: bool, compare: str, env_name: str, sweep: bool) -> dict:
    """Every output file; returns the table dict (also written to table.json)."""
    os.makedirs(out, exist_ok=True)
    write_cells(cells, os.path.join(out, "cells.csv"))
    at_eps = [c for c in cells if np.isclose(c.eps, eps)]
    metrics = ["win_rate", "return"] if has_win else ["return"]
    tables = {m: cross_table(at_eps, teams, adversaries, m, compare) for m in metrics}
    main = tables[metrics[0]]
    md = [f"# {env_name}: trained teams x adversaries, eps = {eps:g}", ""]
    md += [table_markdown(tables[m], m.replace("_", " ")) for m in metrics]
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write("\n".join(md))
    with open(os.path.join(out, "table.json"), "w") as f:
        json.dump({"env": env_name, "eps": eps, "tables": tables}, f, indent=2)
    heatmap(main, os.path.join(out, "heatmap.png"), f"{env_name}, eps = {eps:g}: {main['metric']}")
    if sweep:
        sweep_plot(cells, teams, adversaries, metrics[0], os.path.join(out, "sweep.png"), f"{env_name}: {metrics[0]} against eps")
    return main
