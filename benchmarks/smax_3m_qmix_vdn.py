"""Learning and throughput figures of the foundation (issue 2) on smax_3m, measured on this machine.

    python benchmarks/smax_3m_qmix_vdn.py [--steps 1000000] [--out benchmarks/results]

Runs, each through `python -m jarob.train` in its own process:
  1. QMIX, seeds=3, `--steps` env steps per seed  -> mean final greedy win rate, peak memory
  2. VDN,  seeds=3, likewise
  3. QMIX, seeds=1                               -> time to solve (first eval >= 0.9), sps
  4. QMIX, seeds=4, same length as 3             -> wall-time ratio seeds=4 / seeds=1
and prints every figure beside its target. Run directories are kept under --out.
"""

from __future__ import annotations

import argparse
import os
import sys

from common import mean, report, train

TARGETS = {
    "qmix_win_rate": (">=", 0.9),
    "vdn_win_rate": (">=", 0.9),
    "time_to_solve_s": ("<=", 180.0),
    "sps_seeds1": (">=", 8000.0),
    "peak_rss_gib_seeds3": ("<", 4.0),
    "wall_ratio_4_over_1": ("<=", 2.5),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1_000_000, help="env steps per seed")
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--env", default="smax_3m")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    common = [f"env={args.env}", f"total_steps={args.steps}"]

    qmix3 = train(args.out, "qmix_seeds3", common + ["alg=qmix", "seeds=3"])
    vdn3 = train(args.out, "vdn_seeds3", common + ["alg=vdn", "seeds=3"])
    qmix1 = train(args.out, "qmix_seeds1", common + ["alg=qmix", "seeds=1"])
    qmix4 = train(args.out, "qmix_seeds4", common + ["alg=qmix", "seeds=4"])

    solved = qmix1["solved"]
    figures = {
        "qmix_win_rate": mean(qmix3["final"]["win_rate"]),
        "vdn_win_rate": mean(vdn3["final"]["win_rate"]),
        "time_to_solve_s": solved["wall_s"] if solved else float("inf"),
        "sps_seeds1": qmix1["sps"],
        "peak_rss_gib_seeds3": max(qmix3["peak_rss_mib"], vdn3["peak_rss_mib"]) / 1024,
        "wall_ratio_4_over_1": qmix4["wall_s"] / qmix1["wall_s"],
    }
    detail = {
        "qmix_win_rate": f"per seed {[round(x, 3) for x in qmix3['final']['win_rate']]}, {qmix3['final']['episodes']} episodes each",
        "vdn_win_rate": f"per seed {[round(x, 3) for x in vdn3['final']['win_rate']]}, {vdn3['final']['episodes']} episodes each",
        "time_to_solve_s": f"at {solved['env_steps']:,} env steps, compile included" if solved else "never reached 0.9",
        "sps_seeds1": f"compile {qmix1['compile_s']} s excluded; seeds=3 run: {qmix3['sps']:,.0f} sps over all seeds",
        "peak_rss_gib_seeds3": "max RSS of the seeds=3 processes",
        "wall_ratio_4_over_1": f"{qmix4['wall_s']:.1f} s / {qmix1['wall_s']:.1f} s",
    }
    ok = report(f"{args.env}, {args.steps:,} env steps per seed", figures, TARGETS, detail, os.path.join(args.out, "figures.json"), {"steps": args.steps})
    return 0 if ok else 1

if __name__ == "__main__":
    sys.exit(main())
