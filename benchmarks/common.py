"""Shared pieces of the benchmark scripts: running the CLIs and printing figures beside targets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time


def train(out: str, name: str, overrides: list[str]) -> dict:
    """`python -m jarob.train` into out/name (replaced); returns its summary.json."""
    run_dir = os.path.join(out, name)
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [sys.executable, "-m", "jarob.train", f"run_dir={run_dir}", "progress=false", *overrides]
    print("$", " ".join(cmd), flush=True)
    t0 = time.time()
    subprocess.run(cmd, check=True)
    summary = json.load(open(os.path.join(run_dir, "summary.json")))
    summary["process_wall_s"] = time.time() - t0
    summary["run_dir"] = run_dir
    return summary


def run_once(module: str, run_dir: str, args: list[str]) -> None:
    """`python -m <module> run_dir=... args` unless run_dir holds a summary.json (done): a killed
    run resumes (from step 0 if it had no checkpoint)."""
    if os.path.isfile(os.path.join(run_dir, "summary.json")):
        print(f"# reusing {run_dir}", flush=True)
        return

    resume = []
    if os.path.isfile(os.path.join(run_dir, "config.yaml")):  # killed: resume (from step 0 if it had no checkpoint)
        resume = ["resume=true"]
    elif os.path.isdir(run_dir):  # killed before it wrote its config: nothing to keep
        shutil.rmtree(run_dir)
    cmd = [sys.executable, "-m", module, f"run_dir={run_dir}", "progress=false", *args, *resume]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def mean(xs):
    return sum(xs) / len(xs)


def report(title: str, figures: dict, targets: dict, detail: dict, path: str, extra: dict | None = None) -> bool:
    """Print every figure beside its target, write them to `path`; True if all are met."""
    print(f"\n{title}")
    print(f"{'figure':28s} {'measured':>10s} {'target':>10s}  ok   detail")
    ok_all = True
    for key, value in figures.items():
        op, target = targets[key]
        ok = {"<=": value <= target, ">=": value >= target, "<": value < target, ">": value > target}[op]
        ok_all &= ok
        print(f"{key:28s} {value:10.3f} {op + str(target):>10s}  {'yes' if ok else 'NO ':3s}  {detail.get(key, '')}")
    with open(path, "w") as f:
        json.dump({"figures": figures, "detail": detail, **(extra or {})}, f, indent=2)
    return ok_all
