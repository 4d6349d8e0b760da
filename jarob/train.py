"""python -m jarob.train [env=<key>] [alg=<qmix|vdn|iql>] [adv=<name>] [seeds=S] [total_steps=T] [run_dir=PATH] ...

Trains `seeds` seeds in one jitted, vmapped program, run in chunks from this thin driver:
between chunks it logs (progress bar, metrics.csv, TensorBoard), evaluates greedily and
checkpoints. `resume=true` continues `run_dir` from its last checkpoint (from step 0 if it was
killed before its first) and ends bit-identical to an uninterrupted run. A run directory holds
config.yaml, metrics.csv, checkpoints/ and, at the end, summary.json.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import shutil
import sys
import time

USAGE = __doc__.strip().splitlines()[0]

# Keys that may differ between a run and its resumption.
_RESUMABLE_KEYS = {"resume", "progress", "tensorboard", "run_dir"}
_METRIC_COLUMNS = ["chunk", "seed", "env_steps", "wall_s", "sps"] + [
    "epsilon",
    "loss",
    "q_tot",
    "grad_norm",
    "dropped_updates",
    "adv_loss",
    "adv_dropped_updates",
    "reg_loss",
    "train_episodes",
    "train_return",
    "train_win_rate",
    "eval_return",
    "eval_win_rate",
    "eval_length",
]


ATTACK_FILE = "attack.json"  # an attack run's victim


class RunError(Exception):
    """A problem with the run directory; the message is one line."""


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def prepare_run_dir(cfg) -> str:
    """Check the run directory against `resume` before anything is written."""
    from jarob.checkpoint import has_checkpoint
    from jarob.config import to_dict

    run_dir = cfg.run_dir
    if run_dir is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = os.path.join("runs", f"{cfg.env.name}_{cfg.alg.name}_{cfg.adv.name}_{stamp}")
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    if cfg.resume:
        if not os.path.isdir(run_dir):
            raise RunError(f"resume: run_dir {run_dir!r} does not exist")
        if not has_checkpoint(ckpt_dir) and not os.path.isfile(os.path.join(run_dir, "config.yaml")):
            raise RunError(f"resume: run_dir {run_dir!r} has no checkpoint and no config.yaml")
        saved = _load_yaml(os.path.join(run_dir, "config.yaml"))
        now = _flatten(to_dict(cfg))
        for key, value in sorted(_flatten(saved).items()):
            if key not in _RESUMABLE_KEYS and now.get(key) != value:
                raise RunError(f"{key}: {now.get(key)!r} differs from the resumed run's {value!r}")
    elif os.path.exists(run_dir) and os.listdir(run_dir):
        raise RunError(f"run_dir: {run_dir!r} already exists; pass resume=true to continue it or choose another run_dir")
    return run_dir


def _load_yaml(path: str) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def _save_yaml(cfg, path: str) -> None:
    from omegaconf import OmegaConf

    from jarob.config import to_dict

    OmegaConf.save(OmegaConf.create(to_dict(cfg)), path)


def run(cfg, run_dir: str, victim: str | None = None) -> dict:
    """Train, log, checkpoint and evaluate; returns the summary written to summary.json.

    With `victim` (a run directory; `python -m jarob.attack`) the team is that run's frozen
    greedy team, seed i of this run attacking its seed i, and only the adversary learns."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from tqdm import tqdm

    from jarob.checkpoint import ADVERSARY_FILE, TEAM_FILE, Checkpointer, load_params, save_params
    from jarob.devices import seed_sharding
    from jarob.metrics_log import MetricsLog
    from jarob.trainer import Trainer, seed_keys

    t_start = time.time()
    ckpt = Checkpointer(os.path.join(run_dir, "checkpoints"))
    restart = cfg.resume and ckpt.latest_step() is None  # killed before its first checkpoint: from step 0
    if victim is not None and (not cfg.resume or restart):
        with open(os.path.join(run_dir, ATTACK_FILE), "w") as f:
            json.dump({"victim": os.path.abspath(victim)}, f)
    trainer = Trainer(cfg, train_team=victim is None)
    schedule = trainer.chunk_schedule()
    steps_per_iter = cfg.steps_per_iteration

    # Seeds are sharded over devices (one CPU device per seed where possible): every array with a
    # leading seed axis, inputs and outputs alike, carries this sharding.
    seeds = seed_sharding(cfg.seeds)
    init = jax.jit(jax.vmap(trainer.init), out_shardings=seeds)
    init_args = ()  # attack mode: the victim's team parameters, one per seed
    if victim is not None:
        team = trainer.learner.team_from_saved(load_params(victim, TEAM_FILE))
        init_args = (jax.device_put(jax.tree.map(jnp.asarray, team), seeds),)
    chunk = jax.jit(jax.vmap(trainer.chunk, in_axes=(0, None, None)), donate_argnums=0, out_shardings=seeds)
    final_eval = jax.jit(jax.vmap(trainer.final_evaluation, in_axes=(0, None)), static_argnums=1, out_shardings=seeds)

    keys = jax.device_put(seed_keys(cfg.seed, cfg.seeds), seeds)
    t0 = time.time()
    init_c = init.lower(keys, *init_args).compile()
    compile_s = time.time() - t0
    state = init_c(keys, *init_args)

    if restart:  # the killed run's TensorBoard events describe steps that will be run again
        shutil.rmtree(os.path.join(run_dir, "tensorboard"), ignore_errors=True)
    log = MetricsLog(run_dir, _METRIC_COLUMNS, cfg.tensorboard)
    first_chunk, wall_before, solved = 0, 0.0, None
    if cfg.resume:
        if not restart:
            state, meta = ckpt.restore(ckpt.latest_step(), state)
            first_chunk, wall_before, solved = meta["chunks_done"], meta["wall_s"], meta["solved"]
        log.truncate_after(first_chunk - 1)  # drop rows logged after the checkpoint (all of them on a restart)

    t0 = time.time()
    chunk_c = chunk.lower(state, jnp.int32(0), jnp.int32(schedule[0][1])).compile()
    compile_s += time.time() - t0

    ckpt_every_chunks = max(1, round(cfg.checkpoint_every / (steps_per_iter * cfg.iterations_per_chunk)))
    done_steps = sum(n for _, n in schedule[:first_chunk]) * steps_per_iter
    train_s = 0.0
    bar = tqdm(total=cfg.total_iterations * steps_per_iter, initial=done_steps, unit="step", disable=not cfg.progress, dynamic_ncols=True, file=sys.stderr)
    for c in range(first_chunk, len(schedule)):
        t0 = time.time()
        first_iteration, num_iterations = schedule[c]
        state, m = chunk_c(state, jnp.int32(first_iteration), jnp.int32(num_iterations))
        m = jax.tree.map(np.asarray, jax.block_until_ready(m))
        dt = time.time() - t0
        train_s += dt
        n_steps = num_iterations * steps_per_iter
        wall = wall_before + time.time() - t_start
        sps = n_steps * cfg.seeds / dt
        rows = []
        for s in range(cfg.seeds):
            row = {f.name: float(getattr(m, f.name)[s]) for f in dataclasses.fields(m)}
            row.update(chunk=c, seed=s, env_steps=int(m.env_steps[s]), wall_s=round(wall, 3), sps=round(sps, 1))
            rows.append(row)
        log.write(rows, int(m.env_steps[0]))
        win_rate = float(np.mean(m.eval_win_rate))
        if solved is None and victim is None and trainer.env.has_win and win_rate >= cfg.solve_win_rate:
            solved = {"chunk": c, "env_steps": int(m.env_steps[0]), "wall_s": round(wall, 2), "eval_win_rate": win_rate}
        bar.update(n_steps)
        bar.set_postfix(sps=f"{sps:,.0f}", win_rate=f"{win_rate:.2f}", ret=f"{float(np.mean(m.eval_return)):.2f}")
        last = c == len(schedule) - 1
        if last or (c + 1) % ckpt_every_chunks == 0:
            ckpt.save(c + 1, state, {"chunks_done": c + 1, "wall_s": wall, "solved": solved})
    bar.close()
    log.close()
    ckpt.close()

    t0 = time.time()
    eval_c = final_eval.lower(state, cfg.final_eval_episodes).compile()
    compile_s += time.time() - t0
    ev = jax.tree.map(np.asarray, eval_c(state))
    files = {}
    if victim is None:
        save_params(run_dir, TEAM_FILE, trainer.learner.team(state.learner))
        files["team"] = TEAM_FILE
    if trainer.learned_adversary:
        save_params(run_dir, ADVERSARY_FILE, state.adversary["params"])
        files["adversary"] = ADVERSARY_FILE
    env_steps = int(np.asarray(state.env_steps)[0])
    run_steps = (env_steps - done_steps) * cfg.seeds
    summary = {
        "env": cfg.env.name,
        "alg": cfg.alg.name,
        "adv": cfg.adv.name,
        "seeds": cfg.seeds,
        "seed": cfg.seed,
        "env_steps": env_steps,
        "env_steps_all_seeds": env_steps * cfg.seeds,
        "wall_s": round(wall_before + time.time() - t_start, 2),
        "compile_s": round(compile_s, 2),
        "sps": round(run_steps / train_s, 1) if train_s > 0 else None,
        "solved": solved,
        **files,
        **({"victim": os.path.abspath(victim)} if victim is not None else {}),
        "final": {
            "episodes": cfg.final_eval_episodes,
            "win_rate": [float(x) for x in ev.won.mean(axis=1)],
            "return": [float(x) for x in ev.ret.mean(axis=1)],
            "length": [float(x) for x in ev.length.mean(axis=1)],
        },
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "jax": jax.__version__,
        "device": str(jax.devices()[0].platform),
    }
    with open(os.path.join(run_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def launch(cfg, prog: str, victim: str | None = None) -> int:
    """Prepare the run directory, run, print the one-line result; shared by jarob.train and
    jarob.attack. Exit codes: 0 done, 2 bad run directory (nothing written)."""
    from jarob.checkpoint import has_checkpoint

    try:
        run_dir = prepare_run_dir(cfg)
    except RunError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    created = not os.path.exists(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    if not cfg.resume:
        _save_yaml(cfg, os.path.join(run_dir, "config.yaml"))
    try:
        summary = run(cfg, run_dir, victim)
    except BaseException:
        if created and not has_checkpoint(os.path.join(run_dir, "checkpoints")):  # no half-written run dir
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    wr = summary["final"]["win_rate"]
    what = "greedy win rate" if victim is None else f"victim's win rate under {cfg.adv.name}"
    print(
        f"{cfg.env.name} {cfg.alg.name}: {what} {sum(wr) / len(wr):.3f} over {cfg.seeds} seed(s), "
        f"return {sum(summary['final']['return']) / len(wr):.3f}, {summary['sps']:,.0f} env steps/s; "
        f"{os.path.join(run_dir, 'summary.json')}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(USAGE)
        print("Keys and defaults: configs/config.yaml and its groups configs/{env,alg,adv,reg}/*.yaml (see README.md).")
        return 0
    from jarob.config import ConfigError, load_config

    try:
        cfg = load_config(args)
    except ConfigError as exc:
        print(f"jarob.train: error: {exc}", file=sys.stderr)
        return 2
    return launch(cfg, "jarob.train")


if __name__ == "__main__":
    sys.exit(main())
