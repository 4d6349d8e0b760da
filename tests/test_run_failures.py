"""Runs that stop at run time (Ctrl-C, out of memory, a crash) end with one line, a non-zero exit
and their checkpoints kept."""

import csv
import json
import os
import signal

import jax
import pytest

import jarob.metrics_log
import jarob.trainer
from jarob.checkpoint import Checkpointer
from jarob.config import load_config
from jarob.train import launch, main

from conftest import TINY

TIMING = {"wall_s", "sps"}


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


def test_ctrl_c_keeps_checkpoint_and_resumes(tiny_run, tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    _fail_on_write(monkeypatch, KeyboardInterrupt(), call=2)  # in chunk 1, after chunk 0's checkpoint
    assert main(TINY + [f"run_dir={run_dir}"]) == 130
    line = _one_line(capsys)
    assert line.startswith("jarob.train: interrupted at env step 128 (chunk 1); the last checkpoint (env step 64) is kept: resume with python -m jarob.train env=smax_3m seeds=2 "), line
    assert line.endswith(f" alg.target_update_every=3 run_dir={run_dir} resume=true"), line
    assert Checkpointer(str(run_dir / "checkpoints")).steps() == [1]
    assert not (run_dir / "error.log").exists() and not (run_dir / "summary.json").exists()
    monkeypatch.undo()

    assert main(TINY + [f"run_dir={run_dir}", "resume=true"]) == 0
    assert _final(run_dir) == _final(tiny_run)
    assert _rows(run_dir) == _rows(tiny_run)


def test_ctrl_c_during_a_save_lets_it_finish(tmp_path, monkeypatch, capsys):
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


def test_swallowed_ctrl_c_still_stops(tmp_path, monkeypatch, capsys):
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


def test_debug_raises(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    monkeypatch.setenv("JAROB_DEBUG", "1")
    _fail_on_start(monkeypatch, RuntimeError("simulator crashed"))
    with pytest.raises(RuntimeError, match="simulator crashed"):
        main(TINY + [f"run_dir={run_dir}"])
    assert not run_dir.exists()
