"""What K attackers per victim seed cost (issue 44): env steps/s of `jarob.attack attackers=K`
against one attacker, back to back on the same machine.

    python benchmarks/attackers_cost.py --victim benchmarks/results/malicious/FGSM [--adv paad]
        [--attackers 3] [--steps 200000] [--out /tmp/attackers_cost]

Both runs attack the same victim (all its seeds) for `--steps` env steps per attacker; `sps` is
summary.json's (env steps per second over all lanes, compile excluded), `compile_s` the compile
time. Throughput on a shared CPU varies from day to day: only the ratio of one call is a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

from common import report


def attack(out: str, victim: str, adv: str, k: int, steps: int) -> dict:
    run_dir = os.path.join(out, f"{adv}_k{k}")
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [sys.executable, "-m", "jarob.attack", f"victim={victim}", f"adv={adv}", f"attackers={k}", f"total_steps={steps}", f"run_dir={run_dir}", "progress=false", "tensorboard=false"]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return json.load(open(os.path.join(run_dir, "summary.json")))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--victim", default="benchmarks/results/malicious/FGSM")
    ap.add_argument("--adv", default="paad")
    ap.add_argument("--attackers", type=int, default=3)
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--out", default="/tmp/attackers_cost")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    one = attack(args.out, args.victim, args.adv, 1, args.steps)
    many = attack(args.out, args.victim, args.adv, args.attackers, args.steps)
    k = args.attackers
    figures = {"sps_one": one["sps"], f"sps_k{k}": many["sps"], "sps_ratio": many["sps"] / one["sps"], f"wall_ratio_k{k}_attackers": many["wall_s"] / one["wall_s"]}
    targets = {"sps_one": (">", 0), f"sps_k{k}": (">", 0), "sps_ratio": (">=", 1.0), f"wall_ratio_k{k}_attackers": ("<", k)}
    detail = {
        "sps_ratio": f"{k} attackers per seed in one program: env steps/s over all lanes, against one attacker",
        f"wall_ratio_k{k}_attackers": f"wall time of the run, compile included ({many['wall_s']:.0f} s vs {one['wall_s']:.0f} s; compile {many['compile_s']:.0f} vs {one['compile_s']:.0f} s), against {k} separate runs",
    }
    title = f"{args.adv} attackers against {args.victim} ({one['seeds']} seeds), {args.steps:,} env steps each"
    report(title, figures, targets, detail, os.path.join(args.out, "figures.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
