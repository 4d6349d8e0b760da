"""python -m jarob.train [env=<key>] [alg=<qmix|vdn|iql>] [adv=<name>] [seeds=S] [total_steps=T] [run_dir=PATH] ...

Trains `seeds` seeds in one jitted, vmapped program, run in chunks from this thin driver:
between chunks it logs (progress bar, metrics.csv, TensorBoard), evaluates greedily and
checkpoints. `resume=true` continues `run_dir` from its last checkpoint (from step 0 if it was
killed before its first) and ends bit-identical to an uninterrupted run; from the newest intact
checkpoint when the latest is damaged. A run directory holds config.yaml, metrics.csv,
checkpoints/ and, at the end, summary.json. A run that stops early (Ctrl-C, out of memory, a
crash) says so in one line on stderr, with how to resume, and keeps its checkpoints (error.log
holds a crash's traceback; JAROB_DEBUG=1 raises it instead).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import resource
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback

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
    "train_crash_rate",
    "eval_return",
    "eval_win_rate",
    "eval_length",
    "eval_crash_rate",
]


ATTACK_FILE = "attack.json"  # an attack run's victim


class RunError(Exception):
    """A problem with the run directory; the message is one line."""


@dataclasses.dataclass
class Progress:
    """How far a run got, kept up to date by `run` for the line `launch` prints when it stops."""

    chunk: int | None = None  # the chunk being run; None before the first
    env_steps: int = 0  # env steps done, per seed
    checkpoint: int | None = None  # env steps per seed at the newest checkpoint written or restored
    evaluating: bool = False  # in the final evaluation, after the last chunk
    interrupted: bool = False  # Ctrl-C was pressed (set by `launch`'s SIGINT handler)
    saving: bool = False  # writing a checkpoint: a first Ctrl-C waits for it to finish

    def where(self) -> str:
        """Where the run is, for a message: 'at env step N (chunk c)' and the like."""
        if self.evaluating:
            return f"in the final evaluation (env step {self.env_steps})"
        if self.chunk is None:
            return "while starting"
        return f"at env step {self.env_steps} (chunk {self.chunk})"


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


def run(cfg, run_dir: str, victim: str | None = None, progress: Progress | None = None, prog: str = "jarob.train") -> dict:
    """Train, log, checkpoint and evaluate; returns the summary written to summary.json.

    With `victim` (a run directory; `python -m jarob.attack`) the team is that run's frozen
    greedy team and only the adversary learns: `cfg.attackers` attackers per victim seed, attacker
    k of seed s in lane s * attackers + k (`attacker_keys`), all lanes in one vmapped program.
    `progress` is kept up to date; a resume whose checkpoints are all damaged raises RunError
    before anything is written."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from tqdm import tqdm

    from jarob.checkpoint import ADVERSARY_FILE, TEAM_FILE, Checkpointer, NoIntactCheckpoint, load_params, save_params
    from jarob.devices import check_fits, seed_sharding
    from jarob.metrics_log import MetricsLog
    from jarob.trainer import Trainer, attacker_keys

    t_start = time.time()
    progress = Progress() if progress is None else progress
    ckpt = Checkpointer(os.path.join(run_dir, "checkpoints"))
    restart = cfg.resume and ckpt.latest_step() is None  # killed before its first checkpoint: from step 0
    if victim is not None and (not cfg.resume or restart):
        with open(os.path.join(run_dir, ATTACK_FILE), "w") as f:
            json.dump({"victim": os.path.abspath(victim), "attackers": cfg.attackers}, f)
    trainer = Trainer(cfg, train_team=victim is None)
    schedule = trainer.chunk_schedule()
    steps_per_iter = cfg.steps_per_iteration

    def steps_after(chunks: int) -> int:  # env steps per seed when `chunks` chunks are done
        return sum(n for _, n in schedule[:chunks]) * steps_per_iter

    # The lanes (seeds; in attack mode seeds x attackers) are sharded over devices (one CPU device
    # per lane where possible): every array with a leading lane axis, inputs and outputs alike,
    # carries this sharding.
    attackers = cfg.attackers
    lanes = cfg.seeds * attackers
    seeds = seed_sharding(lanes)
    init = jax.jit(jax.vmap(trainer.init), out_shardings=seeds)
    init_args = ()  # attack mode: the victim's team parameters, seed s in every lane of seed s
    if victim is not None:
        team = trainer.learner.team_from_saved(load_params(victim, TEAM_FILE))
        init_args = (jax.device_put(jax.tree.map(lambda x: jnp.repeat(jnp.asarray(x), attackers, axis=0), team), seeds),)
    # A chunk runs as three programs (`Trainer.chunk` is their composition): its iterations, its
    # greedy evaluation (compiled once: the final evaluation runs it again, batch after batch) and
    # its logged row. Two smaller programs compile faster than their composition.
    iterations = jax.jit(jax.vmap(trainer.iterations, in_axes=(0, None, None)), donate_argnums=0, out_shardings=seeds)
    evaluation = jax.jit(jax.vmap(trainer.evaluation), out_shardings=seeds)
    chunk_metrics = jax.jit(jax.vmap(trainer.chunk_metrics))

    keys = jax.device_put(attacker_keys(cfg.seed, cfg.seeds, attackers), seeds)  # attackers=1: seed_keys
    t0 = time.time()
    init_c = init.lower(keys, *init_args).compile()
    compile_s = time.time() - t0
    devices = len(seeds.mesh.devices.flat)
    check_fits(init_c, devices, "the training state (the replay buffer included)")
    state = init_c(keys, *init_args)
    t0 = time.time()  # compiled and checked before a resume changes anything in the run directory
    iterations_c = iterations.lower(state, jnp.int32(0), jnp.int32(schedule[0][1])).compile()
    evaluation_c = evaluation.lower(state, keys).compile()
    compile_s += time.time() - t0
    check_fits(iterations_c, devices, "a chunk of training (a batch's activations and gradients included)")
    check_fits(evaluation_c, devices, "the greedy evaluation")

    first_chunk, wall_before, solved = 0, 0.0, None
    if cfg.resume and not restart:
        try:
            step, state, meta, damaged = ckpt.restore_newest_intact(state)
        except NoIntactCheckpoint as exc:
            if progress.interrupted:  # what a Ctrl-C broke is not damage
                raise KeyboardInterrupt from None
            reasons = "; ".join(f"chunk {s}: {why}" for s, why in exc.damaged)
            raise RunError(f"resume: no checkpoint in {os.path.join(run_dir, 'checkpoints')!r} is intact ({reasons}); nothing was changed") from None
        if progress.interrupted:
            raise KeyboardInterrupt
        for s, why in damaged:  # deleted, so that the resumed run can save that step again
            print(f"{prog}: checkpoint at chunk {s} is damaged ({why}); resuming from chunk {step} and deleting it", file=sys.stderr)
            ckpt.delete(s)
        first_chunk, wall_before, solved = meta["chunks_done"], meta["wall_s"], meta["solved"]
        progress.checkpoint = steps_after(first_chunk)
    progress.env_steps = steps_after(first_chunk)

    if restart:  # the killed run's TensorBoard events describe steps that will be run again
        shutil.rmtree(os.path.join(run_dir, "tensorboard"), ignore_errors=True)
    columns = (_METRIC_COLUMNS if victim is None else _METRIC_COLUMNS[:2] + ["attacker"] + _METRIC_COLUMNS[2:]) + list(trainer.stat_names)
    log = MetricsLog(run_dir, columns, cfg.tensorboard)
    if cfg.resume:
        log.truncate_after(first_chunk - 1)  # drop rows logged after the checkpoint (all of them on a restart)


    ckpt_every_chunks = max(1, round(cfg.checkpoint_every / (steps_per_iter * cfg.iterations_per_chunk)))
    done_steps = steps_after(first_chunk)
    train_s = 0.0
    bar = tqdm(total=cfg.total_iterations * steps_per_iter, initial=done_steps, unit="step", disable=not cfg.progress, dynamic_ncols=True, file=sys.stderr)
    try:
        for c in range(first_chunk, len(schedule)):
            progress.chunk = c
            t0 = time.time()
            first_iteration, num_iterations = schedule[c]
            state, acc, k_eval = iterations_c(state, jnp.int32(first_iteration), jnp.int32(num_iterations))
            m = chunk_metrics(state.env_steps, acc, evaluation_c(state, k_eval))
            m = jax.tree.map(np.asarray, jax.block_until_ready(m))
            progress.env_steps = int(m.env_steps[0])
            dt = time.time() - t0
            train_s += dt
            n_steps = num_iterations * steps_per_iter
            wall = wall_before + time.time() - t_start
            sps = n_steps * lanes / dt
            rows = []
            for i in range(lanes):
                row = {f.name: float(getattr(m, f.name)[i]) for f in dataclasses.fields(m) if f.name != "adv_stats"}
                row.update({name: float(v[i]) for name, v in m.adv_stats.items()})
                row.update(chunk=c, seed=i // attackers, attacker=i % attackers, env_steps=int(m.env_steps[i]), wall_s=round(wall, 3), sps=round(sps, 1))
                rows.append(row)
            log.write(rows, int(m.env_steps[0]))
            if solved is None and victim is None:
                solved = _solved(trainer.env, m, cfg, c, wall)
            bar.update(n_steps)
            shown = {"win_rate": float(np.mean(m.eval_win_rate))} if trainer.env.has_win else {}
            shown.update({"crash_rate": float(np.mean(m.eval_crash_rate))} if trainer.env.has_crash else {})
            bar.set_postfix(sps=f"{sps:,.0f}", **{k: f"{v:.2f}" for k, v in shown.items()}, ret=f"{float(np.mean(m.eval_return)):.2f}")
            last = c == len(schedule) - 1
            if last or (c + 1) % ckpt_every_chunks == 0:
                progress.saving = True
                ckpt.save(c + 1, state, {"chunks_done": c + 1, "wall_s": wall, "solved": solved})
                progress.saving = False
                progress.checkpoint = progress.env_steps
            if progress.interrupted:  # Ctrl-C during the save, or one whose KeyboardInterrupt a library swallowed
                raise KeyboardInterrupt
    finally:  # a run stopped mid-way ends its progress bar's line before launch's message
        bar.close()
        log.close()
        ckpt.close()
    progress.evaluating = True

    final_keys = jax.vmap(trainer.final_keys, in_axes=(0, None))(state, cfg.final_eval_episodes)  # [seeds, batches]
    batches = [jax.tree.map(np.asarray, evaluation_c(state, final_keys[:, b])) for b in range(final_keys.shape[1])]
    ev = jax.tree.map(lambda *xs: np.concatenate(xs, axis=1)[:, : cfg.final_eval_episodes], *batches)
    files = {}
    if victim is None:
        save_params(run_dir, TEAM_FILE, trainer.learner.team(state.learner))
        files["team"] = TEAM_FILE
    if trainer.learned_adversary:
        save_params(run_dir, ADVERSARY_FILE, state.adversary["params"])
        files["adversary"] = ADVERSARY_FILE
    convergence = {}
    if victim is not None:  # the victim's curve under attack: attack_curve.png and the slope test
        from jarob.convergence import report

        title = f"{cfg.env.name}: {cfg.adv.name} against {os.path.basename(os.path.normpath(victim))} ({cfg.seeds} seeds x {attackers} attackers)"
        plateau, line = report(run_dir, trainer.env.has_win, title)
        convergence = {"convergence": {**dataclasses.asdict(plateau), "line": line}}
    env_steps = int(np.asarray(state.env_steps)[0])
    run_steps = (env_steps - done_steps) * lanes
    summary = {
        "env": cfg.env.name,
        "alg": cfg.alg.name,
        "adv": cfg.adv.name,
        "seeds": cfg.seeds,
        **({"attackers": attackers} if victim is not None else {}),
        "seed": cfg.seed,
        "env_steps": env_steps,
        "env_steps_all_seeds": env_steps * lanes,
        "wall_s": round(wall_before + time.time() - t_start, 2),
        "compile_s": round(compile_s, 2),
        "sps": round(run_steps / train_s, 1) if train_s > 0 else None,
        "solved": solved,
        **files,
        **({"victim": os.path.abspath(victim)} if victim is not None else {}),
        **convergence,
        "final": {
            "episodes": cfg.final_eval_episodes,
            "win_rate": [float(x) for x in ev.won.mean(axis=1)],
            "return": [float(x) for x in ev.ret.mean(axis=1)],
            "length": [float(x) for x in ev.length.mean(axis=1)],
            **({"crash_rate": [float(x) for x in ev.crashed.mean(axis=1)]} if trainer.env.has_crash else {}),
        },
        "has_win": trainer.env.has_win,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "jax": jax.__version__,
        "device": str(jax.devices()[0].platform),
    }
    with open(os.path.join(run_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def _solved(env, m, cfg, chunk: int, wall: float) -> dict | None:
    """The chunk's entry for summary.json's `solved`, or None: the first evaluation whose mean win
    rate reached `solve_win_rate` (envs with wins), or whose mean crash rate fell to
    `solve_crash_rate` (envs with crashes and no wins)."""
    import numpy as np

    at = {"chunk": chunk, "env_steps": int(m.env_steps[0]), "wall_s": round(wall, 2)}
    if env.has_win:
        win_rate = float(np.mean(m.eval_win_rate))
        return {**at, "eval_win_rate": win_rate} if win_rate >= cfg.solve_win_rate else None
    if env.has_crash:
        crash_rate = float(np.mean(m.eval_crash_rate))
        return {**at, "eval_crash_rate": crash_rate} if crash_rate <= cfg.solve_crash_rate else None
    return None


def describe(exc: BaseException, limit: int = 240) -> str:
    """`Type: first line of its message`, cut to `limit` characters."""
    first = str(exc).strip().partition("\n")[0]
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` is the host (MemoryError) or XLA (RESOURCE_EXHAUSTED) running out of memory."""
    if isinstance(exc, MemoryError):
        return True
    xla = any(t.__name__ in ("JaxRuntimeError", "XlaRuntimeError") for t in type(exc).__mro__)
    return xla and ("RESOURCE_EXHAUSTED" in str(exc) or "Out of memory" in str(exc))


def _resume_command(prog: str, args, run_dir: str) -> str:
    kept = [a for a in args if a.partition("=")[0].lstrip("+~") not in ("run_dir", "resume")]
    return " ".join(["python -m", prog, *map(shlex.quote, kept), shlex.quote(f"run_dir={run_dir}"), "resume=true"])


def _write_traceback(run_dir: str | None, where: str) -> str:
    """Append the traceback being handled to run_dir/error.log (a new temporary file when
    `run_dir` is None); returns the file's path."""
    if run_dir is None:
        fd, path = tempfile.mkstemp(prefix="jarob-error-", suffix=".log")
        os.close(fd)
    else:
        path = os.path.join(run_dir, "error.log")
    with open(path, "a") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}: the run stopped {where}\n{traceback.format_exc()}\n")
    return path


def _stop_message(exc: BaseException, prog: str, args, victim, run_dir: str, kept: bool, removed: bool, progress: Progress) -> tuple[str, int]:
    """The one line (and exit code) for a run stopped by `exc`; a crash's traceback goes to a file."""
    where = progress.where()
    if kept:
        at = f" (env step {progress.checkpoint})" if progress.checkpoint is not None else ""
        tail = f"the last checkpoint{at} is kept: resume with {_resume_command(prog, args, run_dir)}"
    elif removed:
        tail = f"there was no checkpoint yet, so {run_dir} is removed"
    else:
        tail = f"there was no checkpoint yet: {_resume_command(prog, args, run_dir)} starts it again"
    if isinstance(exc, KeyboardInterrupt) or progress.interrupted:  # whatever Ctrl-C broke on its way
        return f"{prog}: interrupted {where}; {tail}", 130
    log = _write_traceback(None if removed else run_dir, where)
    if out_of_memory(exc):
        if victim is None:
            smaller = "a new run with smaller alg.num_envs, alg.batch_size, alg.buffer_size or seeds needs less"
        else:
            smaller = "alg.num_envs, alg.batch_size, alg.buffer_size and seeds come from the victim's run"
        return f"{prog}: error: out of memory {where} ({describe(exc)}); {smaller}; {tail}; traceback in {log}", 1
    return f"{prog}: error: the run failed {where}: {describe(exc)}; {tail}; traceback in {log}", 1


@contextlib.contextmanager
def _noting_interrupts(progress: Progress):
    """Ctrl-C sets `progress.interrupted` and raises KeyboardInterrupt, except that a first Ctrl-C
    lets a checkpoint being written finish (`run` stops after it): orbax interrupted mid-save leaves
    a thread that fails noisily at exit. A KeyboardInterrupt may land where it is swallowed (JAX's
    garbage-collection callback) or turned into another error; the flag still stops the run (at the
    end of its chunk) and reports it as interrupted."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield  # SIGINT ignored (a background job) or handled by the caller: left alone
        return

    def handler(signum, frame):
        again, progress.interrupted = progress.interrupted, True
        if again or not progress.saving:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def launch(cfg, prog: str, victim: str | None = None, args=()) -> int:
    """Prepare the run directory, run, print the one-line result; shared by jarob.train and
    jarob.attack (`args`: the command line, for the resume hint). Exit codes: 0 done; 2 bad run
    directory, no intact checkpoint to resume, or a program of the run that needs more memory than
    is free (found after compiling, before the first step; nothing written); 1 the run failed (out of memory,
    a crash; its traceback appended to error.log); 130 interrupted (Ctrl-C). A run stopped before
    its first checkpoint removes the run directory it created. JAROB_DEBUG=1 raises instead."""
    from jarob.checkpoint import has_checkpoint
    from jarob.devices import MemoryShortfall

    try:
        run_dir = prepare_run_dir(cfg)
    except RunError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    created = not os.path.exists(run_dir)
    progress = Progress()
    try:
        with _noting_interrupts(progress):
            os.makedirs(run_dir, exist_ok=True)
            if not cfg.resume:
                _save_yaml(cfg, os.path.join(run_dir, "config.yaml"))
            summary = run(cfg, run_dir, victim, progress, prog)
    except RunError as exc:  # a resume with no intact checkpoint
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except MemoryShortfall as exc:  # found before the first step: the run cannot fit
        if created:
            shutil.rmtree(run_dir, ignore_errors=True)
        smaller = "smaller alg.num_envs, alg.batch_size, alg.buffer_size or seeds need less" if victim is None else "the victim's run sets alg.num_envs, alg.buffer_size and seeds; fewer seeds need less"
        kept = "nothing was written" if created else "the run directory is unchanged"
        print(f"{prog}: error: out of memory ahead: {exc}; {smaller}; {kept}", file=sys.stderr)
        return 2
    except BaseException as exc:
        kept = has_checkpoint(os.path.join(run_dir, "checkpoints"))
        removed = created and not kept  # no half-written run dir
        if os.environ.get("JAROB_DEBUG") == "1" or not isinstance(exc, (Exception, KeyboardInterrupt)):
            if removed:
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        line, code = _stop_message(exc, prog, args, victim, run_dir, kept, removed, progress)
        if removed:
            shutil.rmtree(run_dir, ignore_errors=True)
        print(line, file=sys.stderr)
        return code
    print(f"{cfg.env.name} {cfg.alg.name}: {_final_line(summary, cfg, victim)}, {summary['sps']:,.0f} env steps/s; {os.path.join(run_dir, 'summary.json')}")
    if "convergence" in summary:
        print(summary["convergence"]["line"])
    return 0


def _final_line(summary: dict, cfg, victim: str | None) -> str:
    """The final evaluation's means over seeds: win rate (envs with wins), return, crash rate
    (envs with crashes), e.g. 'greedy win rate 0.950, return 1.812 over 3 seed(s)'."""
    final = summary["final"]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    whose = "greedy" if victim is None else f"the victim's, under {cfg.adv.name},"
    over = f"{cfg.seeds} seed(s)" if cfg.attackers == 1 else f"{cfg.seeds} seed(s) x {cfg.attackers} attackers"
    parts = [f"win rate {mean(final['win_rate']):.3f}"] if summary["has_win"] else []
    parts.append(f"return {mean(final['return']):.3f}")
    parts += [f"crash rate {mean(final['crash_rate']):.3f}"] if "crash_rate" in final else []
    return f"{whose} {', '.join(parts)} over {over}"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(USAGE)
        print("Keys and defaults: configs/config.yaml and its groups configs/{env,alg,adv,reg}/*.yaml (see README.md).")
        return 0
    from jarob.config import ConfigError, load_config

    try:
        cfg = load_config(args)
        if cfg.attackers != 1:
            raise ConfigError(f"attackers: trains several attackers per victim seed, for python -m jarob.attack; jarob.train takes 1, got {cfg.attackers}")
    except ConfigError as exc:
        print(f"jarob.train: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # while importing the environments
        print("jarob.train: interrupted while starting; nothing was written", file=sys.stderr)
        return 130
    return launch(cfg, "jarob.train", args=args)


if __name__ == "__main__":
    sys.exit(main())
