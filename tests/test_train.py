"""End-to-end training through the CLI: run directory contents, determinism, seeds, resume."""

import csv
import json

import jax
import numpy as np
import pytest

import jarob.checkpoint
from jarob.config import load_config
from jarob.train import main

from conftest import TINY, last_checkpoint
TIMING = {"wall_s", "sps"}


def _rows(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(f)]


def _final_params(run_dir):
    return last_checkpoint(run_dir).learner.params


@pytest.fixture(scope="module")
def reference_run(tiny_run):
    return tiny_run


def test_run_directory_contents(reference_run):
    summary = json.loads((reference_run / "summary.json").read_text())
    for key in ("env", "alg", "adv", "seeds", "env_steps", "wall_s", "sps", "compile_s", "final"):
        assert key in summary
    assert (summary["env"], summary["alg"], summary["adv"], summary["seeds"]) == ("smax_3m", "qmix", "none", 2)
    assert summary["env_steps"] == 256 and summary["sps"] > 0
    assert len(summary["final"]["win_rate"]) == 2 and len(summary["final"]["return"]) == 2
    assert summary["final"]["episodes"] == 8
    assert (reference_run / "config.yaml").exists()
    rows = _rows(reference_run)
    assert len(rows) == 4 * 2  # 4 chunks x 2 seeds
    assert [int(r["env_steps"]) for r in rows[::2]] == [64, 128, 192, 256]
    assert load_config(["env=smax_3m"]).env.name == "smax_3m"


def test_seeds_differ(reference_run):
    rows = _rows(reference_run)
    assert rows[0]["loss"] != rows[1]["loss"]


def test_same_seed_same_run(reference_run, tmp_path):
    again = tmp_path / "again"
    assert main(TINY + [f"run_dir={again}"]) == 0
    assert _rows(again) == _rows(reference_run)
    a, b = _final_params(again), _final_params(reference_run)
    jax.tree.map(np.testing.assert_array_equal, a, b)


def test_the_driver_runs_the_pure_program(reference_run):
    """jarob.train runs a chunk as separate programs (iterations, evaluation, row) and the final
    evaluation as batches of the chunk evaluation; `make_train`'s single pure program is their
    composition and gives the same run."""
    from jarob.trainer import make_train, seed_keys

    cfg = load_config(TINY)
    state, metrics, final = jax.jit(jax.vmap(make_train(cfg)))(seed_keys(cfg.seed, cfg.seeds))
    rows = _rows(reference_run)
    for name in ("loss", "eval_win_rate", "eval_return", "train_return"):
        logged = np.array([float(r[name]) for r in rows]).reshape(-1, cfg.seeds)  # [chunks, seeds]
        np.testing.assert_allclose(logged, np.asarray(getattr(metrics, name)).T, rtol=1e-5, atol=1e-6)
    summary = json.loads((reference_run / "summary.json").read_text())
    assert final.won.shape == (cfg.seeds, cfg.final_eval_episodes)
    np.testing.assert_allclose(summary["final"]["win_rate"], final.won.mean(axis=1))
    np.testing.assert_allclose(summary["final"]["return"], final.ret.mean(axis=1), rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), _final_params(reference_run), state.learner.params)


class Killed(BaseException):
    pass


def test_resume_is_bit_identical(reference_run, tmp_path, monkeypatch):
    run_dir = tmp_path / "killed"
    save = jarob.checkpoint.Checkpointer.save

    def save_then_die(self, step, state, meta):
        if step == 3:  # killed after chunk 3's metrics were logged, before its checkpoint
            raise Killed()
        save(self, step, state, meta)

    monkeypatch.setattr(jarob.checkpoint.Checkpointer, "save", save_then_die)
    with pytest.raises(Killed):
        main(TINY + [f"run_dir={run_dir}"])
    assert len(_rows(run_dir)) == 3 * 2 and not (run_dir / "summary.json").exists()
    monkeypatch.setattr(jarob.checkpoint.Checkpointer, "save", save)

    assert main(TINY + [f"run_dir={run_dir}", "resume=true"]) == 0
    assert _rows(run_dir) == _rows(reference_run)
    a, b = _final_params(run_dir), _final_params(reference_run)
    jax.tree.map(np.testing.assert_array_equal, a, b)
    ref = json.loads((reference_run / "summary.json").read_text())["final"]
    assert json.loads((run_dir / "summary.json").read_text())["final"] == ref


def test_resume_before_first_checkpoint_starts_again(reference_run, tmp_path):
    """A run SIGKILLed before its first checkpoint leaves config.yaml and a partial metrics.csv;
    resume=true starts it again from step 0 and ends as the uninterrupted run."""
    run_dir = tmp_path / "early"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text((reference_run / "config.yaml").read_text())
    logged = (reference_run / "metrics.csv").read_text().splitlines(keepends=True)
    (run_dir / "metrics.csv").write_text("".join(logged[:3]))  # header + chunk 0 of both seeds
    assert main(TINY + [f"run_dir={run_dir}", "resume=true"]) == 0
    assert _rows(run_dir) == _rows(reference_run)
    a, b = _final_params(run_dir), _final_params(reference_run)
    jax.tree.map(np.testing.assert_array_equal, a, b)


def test_resume_refuses_changed_config(reference_run, capsys):
    assert main(TINY + [f"run_dir={reference_run}", "resume=true", "alg.lr=0.5"]) == 2
    assert "alg.lr" in capsys.readouterr().err


def test_crash_rates_in_the_log_the_summary_and_the_line(tmp_path, capsys):
    """On an env with crashes and no wins (CrashEnv) the metrics log has the training and
    evaluation crash rates, summary.json the final per-seed crash rate, `solved` is the first
    evaluation whose mean crash rate is at most solve_crash_rate, and the printed line gives
    return and crash rate, no win rate."""
    from fakes import CrashEnv

    from jarob import envs
    from jarob.budgets import QUIET, TINY_TEAM

    envs.register("crash", lambda name: CrashEnv())
    try:
        args = ["env.name=crash", *TINY_TEAM, *QUIET, "total_steps=512", "solve_crash_rate=0.5", f"run_dir={tmp_path / 'run'}"]
        assert main(args) == 0
    finally:
        envs._REGISTRY.pop("crash")
    line = capsys.readouterr().out
    assert "crash rate" in line and "win rate" not in line
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["has_win"] is False and len(summary["final"]["crash_rate"]) == 2
    assert all(0.0 <= c <= 1.0 for c in summary["final"]["crash_rate"])
    with open(tmp_path / "run" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    by_chunk = {}
    for r in rows:
        assert 0.0 <= float(r["train_crash_rate"]) <= 1.0 and 0.0 <= float(r["eval_crash_rate"]) <= 1.0
        by_chunk.setdefault(int(r["chunk"]), []).append(float(r["eval_crash_rate"]))
    assert any(float(r["train_crash_rate"]) > 0 for r in rows)  # the random early policy crashes
    first = next((c for c, v in sorted(by_chunk.items()) if np.mean(v) <= 0.5), None)
    assert (summary["solved"] or {}).get("chunk") == first
