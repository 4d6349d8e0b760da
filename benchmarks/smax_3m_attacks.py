"""Observation attacks and FGSM adversarial training on smax_3m (issue 3), measured on this machine.

    python benchmarks/smax_3m_attacks.py [--noadv-steps 2000000] [--fgsm-steps 3000000]
                                         [--out benchmarks/results_attacks] [--skip-train]

1. trains an undefended QMIX team (NoAdv, 2M env steps per seed) and an FGSM-trained one
   (`adv=fgsm`, 3M: it learns from clean and attacked episodes), 3 seeds each, through
   `python -m jarob.train`;
2. runs `python -m jarob.evaluate` on both against none, rn, fgsm and pgd (10 steps), 500 episodes
   per cell at eps 0.25, timing the whole command (compile included);
3. runs the epsilon sweep [0, 0.05, ..., 0.25] (sweep.png);
and prints every figure beside its target. `--skip-train` reuses the run directories under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from common import report, train

TARGETS = {
    "noadv_clean": (">=", 0.9),
    "noadv_fgsm": ("<", 0.15),
    "noadv_pgd": ("<", 0.10),
    "noadv_rn_minus_fgsm": (">", 0.3),
    "fgsm_team_fgsm": (">=", 0.7),
    "fgsm_team_clean": (">=", 0.8),
    "table_wall_s": ("<", 120.0),
}


def evaluate(out: str, runs: list[str], extra: list[str]) -> float:
    cmd = [sys.executable, "-m", "jarob.evaluate", f"runs=[{','.join(runs)}]", "adversaries=[none,rn,fgsm,pgd]", "episodes=500", f"out={out}", "progress=false", *extra]
    print("$", " ".join(cmd), flush=True)
    t0 = time.time()
    subprocess.run(cmd, check=True)
    return time.time() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--noadv-steps", type=int, default=2_000_000, help="env steps per seed of the NoAdv team")
    ap.add_argument("--fgsm-steps", type=int, default=3_000_000, help="env steps per seed of the FGSM-trained team")
    ap.add_argument("--out", default="benchmarks/results_attacks")
    ap.add_argument("--skip-train", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    common = ["env=smax_3m", "alg=qmix", "seeds=3"]
    teams = {"NoAdv": common + ["adv=none", f"total_steps={args.noadv_steps}"], "FGSM": common + ["adv=fgsm", f"total_steps={args.fgsm_steps}"]}
    if not args.skip_train:
        for name, overrides in teams.items():
            train(args.out, name, overrides)
    runs = [os.path.join(args.out, name) for name in teams]
    table_s = evaluate(os.path.join(args.out, "table"), runs, [])
    evaluate(os.path.join(args.out, "sweep"), runs, ["sweep_eps=[0,0.05,0.1,0.15,0.2,0.25]"])

    rows = json.load(open(os.path.join(args.out, "table", "table.json")))["tables"]["win_rate"]["rows"]
    win = lambda team, adv: rows[team][adv]["mean"]  # noqa: E731
    figures = {
        "noadv_clean": win("NoAdv", "none"),
        "noadv_fgsm": win("NoAdv", "fgsm"),
        "noadv_pgd": win("NoAdv", "pgd"),
        "noadv_rn_minus_fgsm": win("NoAdv", "rn") - win("NoAdv", "fgsm"),
        "fgsm_team_fgsm": win("FGSM", "fgsm"),
        "fgsm_team_clean": win("FGSM", "none"),
        "table_wall_s": table_s,
    }
    per_seed = lambda team, adv: [round(x, 3) for x in rows[team][adv]["values"]]  # noqa: E731
    detail = {k: "" for k in figures}
    for key, (team, adv) in {"noadv_clean": ("NoAdv", "none"), "noadv_fgsm": ("NoAdv", "fgsm"), "noadv_pgd": ("NoAdv", "pgd"), "fgsm_team_fgsm": ("FGSM", "fgsm"), "fgsm_team_clean": ("FGSM", "none")}.items():
        detail[key] = f"per seed {per_seed(team, adv)}"
    detail["noadv_rn_minus_fgsm"] = f"rn {win('NoAdv', 'rn'):.3f} vs fgsm {win('NoAdv', 'fgsm'):.3f}"
    detail["table_wall_s"] = "2 teams x 3 seeds x 4 adversaries x 500 episodes, compile included"
    print(open(os.path.join(args.out, "table", "table.md")).read())
    title = f"smax_3m, eps 0.25; NoAdv {args.noadv_steps:,} and FGSM {args.fgsm_steps:,} env steps per seed"
    ok = report(title, figures, TARGETS, detail, os.path.join(args.out, "figures.json"), {"noadv_steps": args.noadv_steps, "fgsm_steps": args.fgsm_steps})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
