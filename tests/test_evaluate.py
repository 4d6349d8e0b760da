"""The cross evaluator and its report on a fake env whose outcomes are known, and the CLI."""

import csv
import json

import jax.numpy as jnp
import numpy as np
import pytest
from fakes import CrashEnv, LinearTeam, ThresholdEnv

from jarob import adversaries
from jarob.config import adv_config, load_config
from jarob.evaluate import main
from jarob.envs.host import JaxEnvOnHost
from jarob.evaluation import CrossEvaluator, HostEvaluator, Team
from jarob.report import read_cells, write_report

SEEDS = 3


def _team(label, w, b):
    params = {"w": jnp.broadcast_to(jnp.asarray(w, jnp.float32), (SEEDS, 2, 2)), "b": jnp.broadcast_to(jnp.asarray(b, jnp.float32), (SEEDS, 2))}
    return Team(label, "threshold", load_config([]).alg, params, SEEDS)


@pytest.fixture(scope="module")
def cells():
    env = ThresholdEnv()
    teams = [
        # Q_1 - Q_0 = 10 o_0 - 4: takes action 1 (wins) iff o_0 > 0.4; clean o_0 = 0.5.
        _team("sensitive", [[0.0, 10.0], [0.0, 0.0]], [0.0, -4.0]),
        _team("robust", [[0.0, 0.0], [0.0, 0.0]], [0.0, 5.0]),  # always action 1
        _team("hopeless", [[0.0, 0.0], [0.0, 0.0]], [5.0, 0.0]),  # always action 0
    ]
    ev = CrossEvaluator(env, episodes=2000, seed=0, make_learner=LinearTeam)
    out = []
    for name in ("none", "rn", "fgsm", "pgd"):
        adv = None if name == "none" else adversaries.make(adv_config(name), env)
        for eps in (0.25, 0.05):
            out += ev.run_group(teams, name, adv, eps)
    return out


def _win(cells, team, adversary, eps=0.25):
    return np.array([c.win_rate for c in cells if c.team == team and c.adversary == adversary and c.eps == eps])


def test_known_outcomes(cells):
    assert len(_win(cells, "sensitive", "none")) == SEEDS
    np.testing.assert_array_equal(_win(cells, "sensitive", "none"), 1.0)
    np.testing.assert_array_equal(_win(cells, "sensitive", "fgsm"), 0.0)  # o_0 -> 0.25 < 0.4
    np.testing.assert_array_equal(_win(cells, "sensitive", "pgd"), 0.0)
    np.testing.assert_array_equal(_win(cells, "sensitive", "fgsm", 0.05), 1.0)  # 0.45 > 0.4
    # RN: each of the 2 agents sees o_0 ~ U(0.25, 0.75), both must exceed 0.4: 0.7^2 = 0.49.
    np.testing.assert_allclose(_win(cells, "sensitive", "rn"), 0.49, atol=0.04)
    for adv in ("none", "rn", "fgsm", "pgd"):
        np.testing.assert_array_equal(_win(cells, "robust", adv), 1.0)
        np.testing.assert_array_equal(_win(cells, "hopeless", adv), 0.0)


def test_report_files_and_table(cells, tmp_path):
    teams, advs = ["sensitive", "robust", "hopeless"], ["none", "rn", "fgsm", "pgd"]
    table = write_report(str(tmp_path), cells, teams, advs, 0.25, True, "robust", "threshold", sweep=True)
    for name in ("cells.csv", "table.md", "table.json", "heatmap.png", "sweep.png"):
        assert (tmp_path / name).stat().st_size > 0
    rows = list(csv.DictReader(open(tmp_path / "cells.csv")))
    assert len(rows) == 3 * SEEDS * 4 * 2 and set(rows[0]) >= {"team", "seed", "adversary", "eps", "win_rate", "return", "length"}
    assert table["rows"]["robust"]["AVG"]["mean"] == 1.0 and table["rows"]["hopeless"]["AVG"]["mean"] == 0.0
    np.testing.assert_allclose(table["rows"]["sensitive"]["AVG"]["mean"], (1 + 0.49 + 0 + 0) / 4, atol=0.02)
    assert table["best"] == {"none": ["sensitive", "robust"], "rn": ["robust"], "fgsm": ["robust"], "pgd": ["robust"], "AVG": ["robust"]}
    assert table["ranksum"]["hopeless"]["p_value"] < 1e-3 and "robust" not in table["ranksum"]
    md = (tmp_path / "table.md").read_text()
    assert "| robust | **1.000 ± 0.000** |" in md and "| sensitive | **1.000 ± 0.000** | 0.4" in md and "rank-sum" in md
    saved = json.loads((tmp_path / "table.json").read_text())
    assert saved["tables"]["win_rate"]["rows"]["sensitive"]["none"]["values"] == [1.0] * SEEDS


def test_crash_rates_reach_the_cells_and_the_report(tmp_path):
    """On an env with crashes (CrashEnv: a crash unless every agent takes action 1) the cells
    carry crash rates, natively and on host envs alike, and the report adds a crash-rate table
    whose best row is the lowest."""
    env = CrashEnv()
    teams = [
        _team("sensitive", [[0.0, 10.0], [0.0, 0.0]], [0.0, -4.0]),  # action 1 iff o_0 > 0.4: crashes under fgsm
        _team("robust", [[0.0, 0.0], [0.0, 0.0]], [0.0, 5.0]),
        _team("hopeless", [[0.0, 0.0], [0.0, 0.0]], [5.0, 0.0]),
    ]
    fgsm = adversaries.make(adv_config("fgsm"), env)
    native, host = CrossEvaluator(env, episodes=50, seed=0, make_learner=LinearTeam), HostEvaluator([JaxEnvOnHost(env) for _ in range(2)], episodes=10, make_learner=LinearTeam)
    for ev in (native, host):
        cells = ev.run_group(teams, "none", None, 0.25) + ev.run_group(teams, "fgsm", fgsm, 0.25)
        rate = {(c.team, c.adversary): c.crash_rate for c in cells if c.seed == 0}
        assert rate == {("sensitive", "none"): 0.0, ("sensitive", "fgsm"): 1.0, ("robust", "none"): 0.0, ("robust", "fgsm"): 0.0, ("hopeless", "none"): 1.0, ("hopeless", "fgsm"): 1.0}
        assert all(c.win_rate == 0.0 for c in cells)
    write_report(str(tmp_path), cells, ["sensitive", "robust", "hopeless"], ["none", "fgsm"], 0.25, False, "robust", "crash", sweep=False, has_crash=True)
    saved = json.loads((tmp_path / "table.json").read_text())["tables"]
    assert set(saved) == {"return", "crash_rate"}
    assert saved["crash_rate"]["best"] == {"none": ["sensitive", "robust"], "fgsm": ["robust"], "AVG": ["robust"]}
    assert saved["crash_rate"]["rows"]["sensitive"]["AVG"]["mean"] == 0.5
    assert "### crash rate" in (tmp_path / "table.md").read_text() and (tmp_path / "heatmap_crash_rate.png").stat().st_size > 0
    assert [c.crash_rate for c in read_cells(str(tmp_path / "cells.csv"))] == [c.crash_rate for c in cells]


def test_cli_end_to_end_and_sweep(tiny_run, tmp_path):
    out = tmp_path / "eval"
    args = [f"runs=[{tiny_run}]", "adversaries=[none,fgsm]", "episodes=4", f"out={out}", "sweep_eps=[0,0.1]", "progress=false"]
    assert main(args) == 0
    rows = list(csv.DictReader(open(out / "cells.csv")))
    assert {(r["adversary"], float(r["eps"])) for r in rows} == {(a, e) for a in ("none", "fgsm") for e in (0.25, 0.0, 0.1)}
    assert (out / "sweep.png").exists() and (out / "heatmap.png").exists()


@pytest.mark.parametrize(
    "make_args,message",
    [
        (lambda run, tmp: [f"runs=[{tmp}/missing]"], "does not exist"),
        (lambda run, tmp: [f"runs=[{tmp}]"], "is not a jarob run directory"),
        (lambda run, tmp: [f"runs=[{run}]", "adversaries=[atsa]"], "adversaries: unknown 'atsa'"),
        (lambda run, tmp: [f"runs=[{run}]", "compare=nobody"], "compare: 'nobody' is not a team"),
        (lambda run, tmp: ["runs=[]"], "runs: give at least one"),
        (lambda run, tmp: [f"runs=[{run}]", "episodes=0"], "episodes: must be > 0"),
        (lambda run, tmp: [f"runs=[{run}]", "eps=-1"], "eps: must be >= 0"),
        (lambda run, tmp: [f"runs=[{run}]", "adversaries=[none,malicious:rate=0.05]"], "adversaries: quote a column with settings"),
        (lambda run, tmp: [f"runs=[{run}]", "adversaries=[none,'malicious:rate=2']"], "adversaries: 'malicious:rate=2': adv.rate: must lie in [0, 1]"),
        (lambda run, tmp: [f"runs=[{run}]", "adversaries=[none,'malicious:speed=2']"], "adv.speed: unknown key"),
    ],
)
def test_cli_errors_are_one_line(tiny_run, tmp_path, capsys, make_args, message):
    out = tmp_path / "out"
    assert main(make_args(tiny_run, tmp_path) + [f"out={out}", "progress=false"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jarob.evaluate: error: ") and message in err and "\n" not in err, err
    assert not out.exists()


def test_cli_refuses_teams_of_different_envs(tiny_run, tmp_path, capsys):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(tiny_run, other)
    text = (other / "config.yaml").read_text().replace("name: smax_3m", "name: smax_8m")
    (other / "config.yaml").write_text(text)
    assert main([f"runs=[{tiny_run},{other}]", f"out={tmp_path / 'o'}", "progress=false"]) == 2
    assert "same env" in capsys.readouterr().err


def test_action_adversary_column_with_settings(tiny_run, tmp_path):
    """A column of the action channel, with its own settings: at rate 1 a QMIX team's worst-case
    hijacked agent costs it the episodes it wins clean (or at least never helps)."""
    out = tmp_path / "eval"
    args = [f"runs=[{tiny_run}]", "adversaries=[none,'malicious:rate=1.0','malicious:rate=0.0,mode=random']", "episodes=8", f"out={out}", "progress=false"]
    assert main(args) == 0
    rows = list(csv.DictReader(open(out / "cells.csv")))
    by = {(r["adversary"], r["seed"]): float(r["return"]) for r in rows}
    assert {a for a, _ in by} == {"none", "malicious:rate=1.0", "malicious:rate=0.0,mode=random"}
    for seed in {s for _, s in by}:
        assert by[("malicious:rate=0.0,mode=random", seed)] == by[("none", seed)]  # rate 0 changes nothing
