"""TRAM's Figures 2-3, 5-6 and Table 1 (issue 42): a policy-gradient team learning under training-time attacks.

    python benchmarks/tram.py curves [--env smax_3m] [--alg dop] [--seeds 3] [--steps 2000000]
        [--attacks none,tram_random,tram_variance,tram_j] [--out benchmarks/results/tram/<env>]
    python benchmarks/tram.py sweep --param f_a|kl_max [--values 0.4,0.6,0.8,1.0] [--attack tram_variance] ...

`curves` trains the team once per attack (`python -m jarob.train ... adv=<attack>`, 3 seeds vmapped,
each run checkpointed, resumable and kept with its team), then writes `curves.json`, `curves.png`
(greedy evaluation win rate, or return where the env has no wins, against env steps: mean and 95%
confidence band over seeds, Student t) and `table.md`: the final greedy win rate / return under
each attack, and the attack's stealth log-likelihood (eq. 3, averaged over training: the paper's
Table 1) with its attack rate and KL. The paper's finding to check: the variance- and J-based
attacks hurt the learner more than the random direction at the same budget.

`sweep` trains one attack at every value of f_A or KL^U in one compiled program: the values are
state of the adversary (`adv_state["f_a"]`, `["kl_max"]`), so values x seeds are the lanes of one
vmapped training program (Figures 5-6). It checkpoints every chunk and resumes where it stopped.
Its output: `sweep_<param>.json`, `sweep_<param>.png` and the lanes' teams.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import run_once  # noqa: E402

ATTACKS = ("none", "tram_random", "tram_variance", "tram_j")


def band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and the half-width of the 95% confidence interval over the seeds (axis 0; Student t)."""
    from scipy import stats

    n = values.shape[0]
    mean = values.mean(axis=0)
    if n < 2:
        return mean, np.zeros_like(mean)
    return mean, stats.t.ppf(0.975, n - 1) * values.std(axis=0, ddof=1) / np.sqrt(n)


def read_curves(run_dir: str, metric: str) -> dict:
    """{env_steps, values [seeds, chunks], attack stats averaged over the run} from a run's metrics.csv."""
    rows = list(csv.DictReader(open(os.path.join(run_dir, "metrics.csv"))))
    seeds = sorted({int(r["seed"]) for r in rows})
    chunks = sorted({int(r["chunk"]) for r in rows})
    table = {(int(r["chunk"]), int(r["seed"])): r for r in rows}
    values = np.array([[float(table[c, s][metric]) for c in chunks] for s in seeds])
    steps = [int(table[c, seeds[0]]["env_steps"]) for c in chunks]
    stats = {k: float(np.mean([float(r[k]) for r in rows])) for k in ("attack_rate", "attack_kl", "stealth_ll") if k in rows[0]}
    return {"env_steps": steps, "values": values.tolist(), **stats}


def plot(curves: dict, metric: str, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, c in curves.items():
        x = np.asarray(c["env_steps"])
        mean, half = band(np.asarray(c["values"]))
        ax.plot(x, mean, label=name)
        ax.fill_between(x, mean - half, mean + half, alpha=0.2)
    ax.set_xlabel("env steps per seed")
    ax.set_ylabel(f"greedy {metric.replace('eval_', '').replace('_', ' ')}")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def final(run_dir: str, metric: str) -> list[float]:
    """The final greedy evaluation (summary.json) of every seed."""
    summary = json.load(open(os.path.join(run_dir, "summary.json")))
    return [float(v) for v in summary["final"]["win_rate" if metric == "eval_win_rate" else "return"]]


def curves_main(args) -> None:
    from jarob import envs

    env = envs.make(args.env)
    metric = "eval_win_rate" if env.has_win else "eval_return"
    os.makedirs(args.out, exist_ok=True)
    walls, out = {}, {}
    for attack in args.attacks.split(","):
        run_dir = os.path.join(args.out, attack)
        t0 = time.time()
        run_once("jarob.train", run_dir, [f"env={args.env}", f"alg={args.alg}", f"adv={attack}", f"seeds={args.seeds}", f"total_steps={args.steps}", f"eval_every={args.eval_every}", *args.overrides])
        walls[attack] = round(time.time() - t0, 1)
        out[attack] = read_curves(run_dir, metric) | {"final": final(run_dir, metric)}
    json.dump({"env": args.env, "alg": args.alg, "metric": metric, "curves": out, "wall_s": walls}, open(os.path.join(args.out, "curves.json"), "w"), indent=1)
    plot(out, metric, os.path.join(args.out, "curves.png"), f"{args.alg} on {args.env} under TRAM (f_A, KL^U of the adv files)")
    lines = [f"# TRAM on {args.env}, alg={args.alg}, {args.seeds} seeds x {args.steps:,} env steps", "", f"| attack | final {metric.replace('eval_', '')} | stealth log-likelihood | attack rate | KL | wall s |", "|---|---|---|---|---|---|"]
    for attack, c in out.items():
        f = np.asarray(c["final"])
        extra = [f"{c[k]:.3f}" if k in c else "" for k in ("stealth_ll", "attack_rate", "attack_kl")]
        lines.append(f"| {attack} | {f.mean():.3f} ± {f.std():.3f} | {' | '.join(extra)} | {walls[attack]:,.0f} |")
    figures = {}
    if "tram_random" in out:
        base = np.mean(out["tram_random"]["final"])
        for name in ("tram_variance", "tram_j"):
            if name in out:
                figures[f"{name}_final_minus_random"] = float(np.mean(out[name]["final"]) - base)
    lines += ["", "The paper's finding (variance- and J-based attacks hurt more than random): " + ", ".join(f"{k} = {v:+.3f} (< 0 reproduces)" for k, v in figures.items())]
    open(os.path.join(args.out, "table.md"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


def sweep_main(args) -> None:
    import jax
    import jax.numpy as jnp

    from jarob.checkpoint import TEAM_FILE, Checkpointer, save_params
    from jarob.config import load_config
    from jarob.trainer import Trainer, seed_keys

    values = [float(v) for v in args.values.split(",")]
    cfg = load_config([f"env={args.env}", f"alg={args.alg}", f"adv={args.attack}", f"seeds={args.seeds}", f"total_steps={args.steps}", f"eval_every={args.eval_every}", *args.overrides])
    trainer = Trainer(cfg)
    metric = "eval_win_rate" if trainer.env.has_win else "eval_return"
    lanes = len(values) * args.seeds
    keys = jnp.tile(seed_keys(cfg.seed, args.seeds), (len(values), 1))  # lane v * seeds + s: value v, seed s
    lane_values = jnp.repeat(jnp.asarray(values, jnp.float32), args.seeds)

    def init(key, value):
        state = trainer.init(key)
        return state.replace(adversary={**state.adversary, args.param: value})

    init_c = jax.jit(jax.vmap(init))
    iterations = jax.jit(jax.vmap(trainer.iterations, in_axes=(0, None, None)), donate_argnums=0)
    evaluation = jax.jit(jax.vmap(trainer.evaluation))
    chunk_metrics = jax.jit(jax.vmap(trainer.chunk_metrics))
    out_dir = os.path.join(args.out, f"sweep_{args.param}_{args.attack}")
    os.makedirs(out_dir, exist_ok=True)
    ckpt = Checkpointer(os.path.join(out_dir, "checkpoints"))
    state = init_c(keys, lane_values)
    log_path = os.path.join(out_dir, "chunks.json")
    rows, first = [], 0
    if ckpt.latest_step() is not None:
        first, state, _, _ = ckpt.restore_newest_intact(state)
        rows = [r for r in json.load(open(log_path)) if r["chunk"] < first]
    t0 = time.time()
    schedule = trainer.chunk_schedule()
    for c in range(first, len(schedule)):
        start, n = schedule[c]
        state, acc, k_eval = iterations(state, jnp.int32(start), jnp.int32(n))
        m = jax.tree.map(np.asarray, chunk_metrics(state.env_steps, acc, evaluation(state, k_eval)))
        rows.append({"chunk": c, "env_steps": int(m.env_steps[0]), metric: getattr(m, metric).tolist(), **{k: v.tolist() for k, v in m.adv_stats.items()}})
        ckpt.save(c + 1, state, {"chunks_done": c + 1})
        json.dump(rows, open(log_path + ".tmp", "w"))
        os.replace(log_path + ".tmp", log_path)
        print(f"chunk {c + 1}/{len(schedule)}: {metric} by value {np.round(np.asarray(getattr(m, metric)).reshape(len(values), -1).mean(1), 3).tolist()} ({time.time() - t0:,.0f} s)", flush=True)
    ckpt.close()
    save_params(out_dir, TEAM_FILE, trainer.learner.team(state.learner))
    per_value = {}
    for v_i, v in enumerate(values):
        lane = slice(v_i * args.seeds, (v_i + 1) * args.seeds)
        per_value[f"{args.param}={v:g}"] = {
            "env_steps": [r["env_steps"] for r in rows],
            "values": np.asarray([r[metric][lane] for r in rows]).T.tolist(),
            **{k: float(np.mean([np.mean(r[k][lane]) for r in rows])) for k in trainer.stat_names},
        }
    json.dump({"env": args.env, "alg": args.alg, "attack": args.attack, "param": args.param, "lanes": lanes, "metric": metric, "wall_s": round(time.time() - t0, 1), "curves": per_value}, open(os.path.join(args.out, f"sweep_{args.param}_{args.attack}.json"), "w"), indent=1)
    plot(per_value, metric, os.path.join(args.out, f"sweep_{args.param}_{args.attack}.png"), f"{args.attack} on {args.env}: {args.param} sweep, one program")
    for name, c in per_value.items():
        print(f"{name}: final {metric} {np.mean(np.asarray(c['values'])[:, -1]):.3f}, stealth {c.get('stealth_ll', float('nan')):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("curves", "sweep"))
    ap.add_argument("--env", default="smax_3m")
    ap.add_argument("--alg", default="dop")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2_000_000, help="env steps per seed")
    ap.add_argument("--eval-every", type=int, default=50_000)
    ap.add_argument("--attacks", default=",".join(ATTACKS), help="curves: the attacks, none for the clean learner")
    ap.add_argument("--attack", default="tram_variance", help="sweep: the attack swept")
    ap.add_argument("--param", choices=("f_a", "kl_max"), default="f_a")
    ap.add_argument("--values", default=None, help="sweep values (default: the paper's, f_a 0.4,0.6,0.8,1.0; kl_max 2,4,6)")
    ap.add_argument("--out", default=None, help="default benchmarks/results/tram/<env>")
    args, extra = ap.parse_known_args()  # the rest: jarob.train overrides (key=value)
    bad = [a for a in extra if a.startswith("-") or "=" not in a]
    if bad:
        ap.error(f"unrecognized arguments: {' '.join(bad)} (after the options: jarob.train overrides, key=value)")
    args.overrides = extra
    args.out = args.out or os.path.join("benchmarks", "results", "tram", args.env)
    args.values = args.values or ("0.4,0.6,0.8,1.0" if args.param == "f_a" else "2,4,6")
    (curves_main if args.mode == "curves" else sweep_main)(args)


if __name__ == "__main__":
    main()
