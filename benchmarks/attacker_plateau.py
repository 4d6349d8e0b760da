"""Where does a learned attacker stop getting stronger? (issue 44) The victim's win rate under
long attack runs, read at every budget T: the slope test of `jarob.convergence` on the run cut
at T, and the gap between the mean of its last quarter and the last quarter of the whole run.

    python -m jarob.attack victim=<team> adv=paad total_steps=2000000 run_dir=<dir>   # one per adversary
    python benchmarks/attacker_plateau.py <dir> [<dir> ...] [--tol 0.025] [--out plateau.png]

The plateau budget is the smallest T (a multiple of 250k) at which, for every run, the slope test
finds no fall and the last-quarter mean is within `--tol` of the whole run's: an attacker trained
for T is within `tol` of one trained for the whole run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np


def budget_table(run_dir: str, budgets: list[int]) -> list[dict]:
    from jarob.convergence import plateau_test, read_curve

    c = read_curve(run_dir)
    mean = np.nanmean(c.values, axis=1)
    last = mean[-max(3, math.ceil(len(mean) / 4)) :].mean()
    rows = []
    for t in budgets:
        n = int(np.sum(c.steps <= t + 1024))  # the chunk ending at t (env steps round up to whole iterations)
        q = max(3, math.ceil(n / 4))
        p = plateau_test(c.steps[:n], c.values[:n])
        rows.append({"budget": t, "falling": p.falling, "change": p.change, "noise": p.noise, "last_quarter": float(mean[n - q : n].mean()), "gap": float(mean[n - q : n].mean() - last), "per_seed": [float(x) for x in np.nanmean(c.values[n - q : n], axis=0)]})
    return rows


def figure(runs: list[str], budget: int | None, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jarob.convergence import read_curve

    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.4), sharey=True, squeeze=False)
    for ax, run in zip(axes[0], runs):
        c = read_curve(run)
        cfg = json.load(open(os.path.join(run, "summary.json")))
        for lane in range(c.values.shape[1]):
            ax.plot(c.steps, c.values[:, lane], lw=0.9, alpha=0.75, label=f"team seed {lane // c.attackers}")
        ax.plot(c.steps, np.nanmean(c.values, axis=1), color="k", lw=2, label="mean")
        if budget:
            ax.axvline(budget, color="grey", ls=":", lw=1.2)
        ax.set_title(f"{cfg['adv']} against {os.path.basename(cfg['victim'])}", fontsize=9)
        ax.set_xlabel("attacker env steps per seed")
        ax.set_ylim(-0.02, 1.0)
    axes[0][0].set_ylabel("victim's greedy win rate (128 episodes)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="run directories of long jarob.attack runs")
    ap.add_argument("--tol", type=float, default=0.025)
    ap.add_argument("--step", type=int, default=250_000)
    ap.add_argument("--out", default="plateau.png")
    args = ap.parse_args()
    for run in args.runs:
        if not os.path.isfile(os.path.join(run, "summary.json")):
            print(f"{run}: not a finished jarob.attack run (no summary.json)", file=sys.stderr)
            return 2
    tables = {}
    for run in args.runs:
        total = json.load(open(os.path.join(run, "summary.json")))["env_steps"]
        tables[run] = budget_table(run, list(range(args.step, total - total % args.step + 1, args.step)))
        print(f"\n{run}")
        print(f"{'budget':>10s} {'slope test':>12s} {'change ± SE':>16s} {'last quarter':>13s} {'gap':>7s}  per team seed")
        for r in tables[run]:
            verdict = {True: "falling", False: "flat", None: "-"}[r["falling"]]
            print(f"{r['budget']:10,d} {verdict:>12s} {r['change']:+8.3f} ± {r['noise']:.3f} {r['last_quarter']:13.3f} {r['gap']:+7.3f}  {' '.join(f'{x:.3f}' for x in r['per_seed'])}")
    ok = [t for t in (r["budget"] for r in next(iter(tables.values()))) if all(any(r["budget"] == t and r["falling"] is False and abs(r["gap"]) <= args.tol for r in rows) for rows in tables.values())]
    budget = ok[0] if ok else None
    print(f"\nplateau budget (tol {args.tol}): {f'{budget:,}' if budget else 'none within these runs'}")
    figure(args.runs, budget, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
