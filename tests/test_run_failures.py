"""Runs that stop at run time (Ctrl-C, out of memory, a crash) end with one line, a non-zero exit
and their checkpoints kept; a resume whose latest checkpoint is damaged falls back to an older one."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys

import jax
import pytest

import jarob.metrics_log
import jarob.trainer
from jarob.checkpoint import Checkpointer, has_checkpoint
from jarob.config import load_config
from jarob.train import launch, main

from conftest import TINY

TIMING = {"wall_s", "sps"}

# A failed restore must not leave a traceback on stderr, even one printed when garbage is collected.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")


def _rows(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(f)]


def _final(run_dir):
    return json.loads((run_dir / "summary.json").read_text())["final"]


def _one_line(capsys):
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err.strip()


def _fail_on_write(monkeypatch, exc, call):
    """Raise `exc` from the `call`-th MetricsLog.write (between chunks: chunk call-1's metrics)."""
    write, calls = jarob.metrics_log.MetricsLog.write, []

    def failing_write(self, rows, step):
        calls.append(step)
        if len(calls) == call:
            raise exc
        write(self, rows, step)

    monkeypatch.setattr(jarob.metrics_log.MetricsLog, "write", failing_write)


def _fail_on_start(monkeypatch, exc):
    """Raise `exc` where `run` builds its Trainer (before anything is compiled)."""

    def failing_trainer(*args, **kwargs):
        raise exc

    monkeypatch.setattr(jarob.trainer, "Trainer", failing_trainer)


def _files(directory):
    """Every file under `directory` with its bytes."""
    return {os.path.join(r, f): open(os.path.join(r, f), "rb").read() for r, _, fs in os.walk(directory) for f in fs}


def test_ctrl_c_keeps_checkpoint_and_resumes(tiny_run, tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    _fail_on_write(monkeypatch, KeyboardInterrupt(), call=2)  # in chunk 1, after chunk 0's checkpoint
    assert main(TINY + [f"run_dir={run_dir}"]) == 130
    line = _one_line(capsys)
    assert line == f"jarob.train: interrupted at env step 128 (chunk 1); the last checkpoint (env step 64) is kept: resume with python -m jarob.train {' '.join(TINY)} run_dir={run_dir} resume=true", line
    assert Checkpointer(str(run_dir / "checkpoints")).steps() == [1]
    assert not (run_dir / "error.log").exists() and not (run_dir / "summary.json").exists()
    monkeypatch.undo()

    assert main(TINY + [f"run_dir={run_dir}", "resume=true"]) == 0
    assert _final(run_dir) == _final(tiny_run)
    assert _rows(run_dir) == _rows(tiny_run)


@pytest.fixture
def ctrl_c_reaches_python():
    """Python's own SIGINT handler for the test: a process started in the background by a shell
    without job control (nohup, `cmd &` in a script) inherits SIGINT ignored, and a run leaves an
    ignored Ctrl-C alone."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_during_a_save_lets_it_finish(ctrl_c_reaches_python, tmp_path, monkeypatch, capsys):
    """A real SIGINT while checkpoint 2 is written: the save finishes, then the run stops."""
    run_dir = tmp_path / "run"
    save = Checkpointer.save

    def save_after_ctrl_c(self, step, state, meta):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)
        save(self, step, state, meta)

    monkeypatch.setattr(Checkpointer, "save", save_after_ctrl_c)
    assert main(TINY + [f"run_dir={run_dir}"]) == 130
    line = _one_line(capsys)
    assert line.startswith("jarob.train: interrupted at env step 128 (chunk 1); the last checkpoint (env step 128) is kept: resume with "), line
    assert Checkpointer(str(run_dir / "checkpoints")).steps() == [2, 1]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_swallowed_ctrl_c_still_stops(ctrl_c_reaches_python, tmp_path, monkeypatch, capsys):
    """A KeyboardInterrupt that lands in library code which swallows it (as JAX's garbage-collection
    callback does) still stops the run at the end of its chunk."""
    run_dir = tmp_path / "run"
    write = jarob.metrics_log.MetricsLog.write

    def write_swallowing_ctrl_c(self, rows, step):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs at the next bytecode boundary
                pass
        except KeyboardInterrupt:
            pass
        write(self, rows, step)

    monkeypatch.setattr(jarob.metrics_log.MetricsLog, "write", write_swallowing_ctrl_c)
    assert main(TINY + [f"run_dir={run_dir}"]) == 130
    assert _one_line(capsys).startswith("jarob.train: interrupted at env step 64 (chunk 0); the last checkpoint (env step 64) is kept: ")
    assert Checkpointer(str(run_dir / "checkpoints")).steps() == [1]


def test_crash_keeps_checkpoint_and_traceback(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    _fail_on_write(monkeypatch, RuntimeError("simulator crashed\nsecond line"), call=2)
    assert main(TINY + [f"run_dir={run_dir}"]) == 1
    line = _one_line(capsys)
    assert line.startswith("jarob.train: error: the run failed at env step 128 (chunk 1): RuntimeError: simulator crashed; the last checkpoint (env step 64) is kept: resume with python -m jarob.train "), line
    assert line.endswith(f"run_dir={run_dir} resume=true; traceback in {run_dir / 'error.log'}"), line
    log = (run_dir / "error.log").read_text()
    assert "the run stopped at env step 128 (chunk 1)" in log and "Traceback" in log and "second line" in log
    assert Checkpointer(str(run_dir / "checkpoints")).steps() == [1]


@pytest.mark.parametrize("exc", [MemoryError(), jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 8.00GiB.\ndetails")])
def test_out_of_memory_before_first_checkpoint(exc, tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    _fail_on_start(monkeypatch, exc)
    assert main(TINY + [f"run_dir={run_dir}"]) == 1
    line = _one_line(capsys)
    assert line.startswith(f"jarob.train: error: out of memory while starting ({type(exc).__name__}"), line
    assert "; a new run with smaller alg.num_envs, alg.batch_size, alg.buffer_size or seeds needs less; " in line
    assert f"there was no checkpoint yet, so {run_dir} is removed; traceback in " in line
    assert not run_dir.exists()  # nothing to resume: no half-written run directory
    log = line.rpartition("traceback in ")[2]
    assert type(exc).__name__ in open(log).read()
    os.remove(log)


def test_ctrl_c_before_first_checkpoint_removes_run_dir(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    _fail_on_start(monkeypatch, KeyboardInterrupt())
    assert main(TINY + [f"run_dir={run_dir}"]) == 130
    assert _one_line(capsys) == f"jarob.train: interrupted while starting; there was no checkpoint yet, so {run_dir} is removed"
    assert not run_dir.exists()


def test_attack_prefix_and_advice(tmp_path, monkeypatch, capsys):
    """jarob.attack shares `launch`: its own prefix, and no advice to change what the victim fixed."""
    run_dir = tmp_path / "attack"
    _fail_on_start(monkeypatch, jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory"))
    args = TINY + ["adv=atla", f"run_dir={run_dir}"]
    assert launch(load_config(args), "jarob.attack", victim=str(tmp_path / "victim"), args=["victim=v"] + args) == 1
    line = _one_line(capsys)
    assert line.startswith("jarob.attack: error: out of memory while starting (JaxRuntimeError: RESOURCE_EXHAUSTED: Out of memory); alg.num_envs, alg.batch_size, alg.buffer_size and seeds come from the victim's run;"), line
    os.remove(line.rpartition("traceback in ")[2])


def test_debug_raises(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    monkeypatch.setenv("JAROB_DEBUG", "1")
    _fail_on_start(monkeypatch, RuntimeError("simulator crashed"))
    with pytest.raises(RuntimeError, match="simulator crashed"):
        main(TINY + [f"run_dir={run_dir}"])
    assert not run_dir.exists()


# -- damaged checkpoints ---------------------------------------------------------------------


def _truncate_data(step_dir):
    """Halve every array data file of a checkpoint (tensorstore's `d/` files). Not only the
    largest: OCDBT may leave a data file no longer referenced, whose damage a restore never sees,
    and in a tiny run a metadata file that a restore may do without can be the largest."""
    for r, _, fs in os.walk(step_dir):
        if os.path.basename(r) == "d":
            for f in fs:
                with open(os.path.join(r, f), "r+b") as fh:
                    fh.truncate(os.path.getsize(os.path.join(r, f)) // 2)


def _empty_meta(step_dir):
    open(os.path.join(step_dir, "meta", "metadata"), "w").close()  # the meta JSON


def _empty_dir(step_dir):
    shutil.rmtree(step_dir)
    os.mkdir(step_dir)


@pytest.mark.parametrize("damage", [_truncate_data, _empty_meta, _empty_dir])
def test_restore_falls_back_past_damage(damage, tiny_run, tmp_path):
    ckpt_dir = tmp_path / "checkpoints"
    shutil.copytree(tiny_run / "checkpoints", ckpt_dir)
    damage(str(ckpt_dir / "4"))
    assert has_checkpoint(str(ckpt_dir))
    ckpt = Checkpointer(str(ckpt_dir))
    assert ckpt.latest_step() == 4 and ckpt.steps() == [4, 3]
    cfg = load_config(TINY)
    like = jax.eval_shape(jax.vmap(jarob.trainer.Trainer(cfg).init), jarob.trainer.seed_keys(cfg.seed, cfg.seeds))
    step, _, meta, damaged = ckpt.restore_newest_intact(like)
    assert (step, meta["chunks_done"]) == (3, 3)
    assert [s for s, _ in damaged] == [4]
    assert "\n" not in damaged[0][1] and "TensorStore details" not in damaged[0][1]  # the innermost cause


def test_resume_past_damaged_checkpoint(tiny_run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    _truncate_data(str(run_dir / "checkpoints" / "4"))
    (run_dir / "summary.json").unlink()
    assert main(TINY + [f"run_dir={run_dir}", "resume=true"]) == 0
    out = capsys.readouterr()
    assert out.err.startswith("jarob.train: checkpoint at chunk 4 is damaged ("), out.err
    assert "TensorStore details" not in out.err  # tensorstore's own reason, not orbax's wrapper
    assert out.err.endswith("); resuming from chunk 3 and deleting it\n") and out.err.count("\n") == 1, out.err
    assert _final(run_dir) == _final(tiny_run)
    assert _rows(run_dir) == _rows(tiny_run)  # chunk 3's rows written once, by the resumed run
    assert Checkpointer(str(run_dir / "checkpoints")).steps() == [4, 3]


def test_resume_with_every_checkpoint_damaged(tiny_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    _empty_meta(str(run_dir / "checkpoints" / "4"))
    _truncate_data(str(run_dir / "checkpoints" / "3"))
    before = _files(run_dir)
    # In a process of its own: orbax's reads left in flight by a failed restore report errors
    # (tracebacks on stderr) as they finish or are collected, up to the interpreter's exit.
    proc = subprocess.run([sys.executable, "-m", "jarob.train", *TINY, f"run_dir={run_dir}", "resume=true"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.endswith("\n") and proc.stderr.count("\n") == 1, proc.stderr[-3000:]
    line = proc.stderr.strip()
    assert line.startswith(f"jarob.train: error: resume: no checkpoint in '{run_dir / 'checkpoints'}' is intact (chunk 4: JSONDecodeError: Expecting value"), line
    assert "; chunk 3: ValueError: " in line and line.endswith("); nothing was changed"), line
    assert _files(run_dir) == before


def test_extra_memory_counts_outputs_and_temporaries():
    """XLA's analysis of a program whose one output is a fresh (256, 1024) float32 array: at least
    its 1 MiB, counted once per host device on CPU."""
    import jax.numpy as jnp

    from jarob.devices import extra_memory

    compiled = jax.jit(lambda x: x[:, None] * jnp.ones(1024)).lower(jnp.ones(256)).compile()
    one, _ = extra_memory(compiled, 1)
    assert 2**20 <= one < 2 * 2**20
    two, per_device = extra_memory(compiled, 2)
    assert two == (one if per_device else 2 * one)


def test_a_run_that_cannot_fit_stops_before_it_starts(tmp_path, monkeypatch, capsys):
    import jarob.devices

    monkeypatch.setattr(jarob.devices, "free_memory", lambda: (1024, False))  # 1 KiB of host memory free
    run_dir = tmp_path / "run"
    assert main(TINY + [f"run_dir={run_dir}"]) == 2
    line = _one_line(capsys)
    assert line.startswith("jarob.train: error: out of memory ahead: the training state (the replay buffer included) needs "), line
    assert line.endswith(" of host memory, 0.0 GiB is free; smaller alg.num_envs, alg.batch_size, alg.buffer_size or seeds need less; nothing was written"), line
    assert not run_dir.exists()


def test_a_resume_that_cannot_fit_changes_nothing(tiny_run, tmp_path, monkeypatch, capsys):
    """The chunk's program is checked before a resume deletes a damaged checkpoint or truncates the log."""
    import jarob.devices

    check_fits = jarob.devices.check_fits

    def short_for_training(compiled, num_devices, what, outputs=True):
        if what.startswith("a chunk of training"):
            raise jarob.devices.MemoryShortfall(f"{what} needs 9.0 GiB of host memory, 1.0 GiB is free")
        check_fits(compiled, num_devices, what, outputs)

    monkeypatch.setattr(jarob.devices, "check_fits", short_for_training)
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    _truncate_data(str(run_dir / "checkpoints" / "4"))
    before = _files(run_dir)
    assert main(TINY + [f"run_dir={run_dir}", "resume=true"]) == 2
    assert _one_line(capsys).endswith("1.0 GiB is free; smaller alg.num_envs, alg.batch_size, alg.buffer_size or seeds need less; the run directory is unchanged")
    assert _files(run_dir) == before
