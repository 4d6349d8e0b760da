"""Several attackers per victim seed (`jarob.attack attackers=K`): their keys, a K-attacker run
against K separate runs, the strongest-of-K reduction of a learned column, and the convergence
test on hand-made curves."""

import csv
import json

import jax
import numpy as np
import pytest
from conftest import TINY

from jarob.budgets import QUIET, TINY_DIRECTOR, TINY_LOOP
from jarob.convergence import describe, plateau_test, read_curve
from jarob.evaluation import Cell
from jarob.report import attackers_per_seed, cross_table, strongest
from jarob.trainer import attacker_keys, seed_keys

ATTACK = [*TINY_LOOP, *QUIET]


def test_attacker_keys_are_the_keys_of_runs_with_shifted_base_seeds():
    keys = np.asarray(attacker_keys(5, 2, 3))
    assert keys.shape == (6, 2)
    for s in range(2):
        for k in range(3):
            np.testing.assert_array_equal(keys[s * 3 + k], np.asarray(seed_keys(5 + k, 2))[s])
    np.testing.assert_array_equal(np.asarray(attacker_keys(5, 2, 1)), np.asarray(seed_keys(5, 2)))


def _cell(team, seed, adv, win, ret, k):
    return Cell(team, seed, adv, 0.25, win, ret, 10.0, k)


def test_strongest_of_k_is_the_lowest_win_rate_of_each_team_seed():
    cells = [
        _cell("A", 0, "none", 0.9, 1.0, None),
        _cell("A", 1, "none", 0.8, 1.0, None),
        # A's seed 0: attacker 1 is the strongest; seed 1: attacker 2; a win-rate tie goes by return.
        _cell("A", 0, "paad", 0.50, 0.3, 0),
        _cell("A", 0, "paad", 0.10, 0.9, 1),
        _cell("A", 0, "paad", 0.40, 0.1, 2),
        _cell("A", 1, "paad", 0.30, 0.5, 0),
        _cell("A", 1, "paad", 0.20, 0.6, 1),
        _cell("A", 1, "paad", 0.20, 0.4, 2),
    ]
    best = strongest(cells, has_win=True)
    assert [(c.seed, c.adversary, c.attacker) for c in best] == [(0, "none", None), (1, "none", None), (0, "paad", 1), (1, "paad", 2)]
    table = cross_table(best, ["A"], ["none", "paad"], "win_rate", "A", attackers_per_seed(cells))
    assert table["rows"]["A"]["paad"]["values"] == [0.10, 0.20]
    assert table["rows"]["A"]["paad"]["mean"] == pytest.approx(0.15)
    assert table["strongest_of"] == {"paad": 3} and "strongest of 3 attackers" in table["plus_minus"]["strongest"]
    # Without wins, the lowest return: seed 0 -> attacker 2, seed 1 -> attacker 2.
    assert [c.attacker for c in strongest(cells, has_win=False) if c.adversary == "paad"] == [2, 2]


def test_plateau_test_on_hand_made_curves():
    steps = np.arange(1, 41) * 50_000.0
    rng = np.random.default_rng(0)
    falling = 0.8 - 0.4 * steps / steps[-1]  # -0.1 over the last quarter
    p = plateau_test(steps, falling + rng.normal(0, 0.01, 40))
    assert p.falling and p.change == pytest.approx(-0.4 * 9 / 39, abs=0.03) and p.chunks == 10
    flat = np.concatenate([np.linspace(0.8, 0.3, 20), np.full(20, 0.3)]) + rng.normal(0, 0.02, 40)
    p = plateau_test(steps, flat)
    assert p.falling is False and abs(p.change) < 0.05
    # A small but clean fall (0.01 over the quarter) is below the tolerance: not falling.
    assert plateau_test(steps, 0.5 - 0.01 * steps / (steps[-1] - steps[30])).falling is False
    # The mean over lanes is tested: one falling lane and one rising as fast is flat.
    both = np.stack([falling, 1.2 - falling], axis=1)
    assert plateau_test(steps, both).falling is False
    assert plateau_test(steps[:2], falling[:2]).falling is None
    # Three evaluations, a large fall as noisy as it is large: inconclusive, not "plateaued".
    noisy = plateau_test([1.0, 2.0, 3.0], [0.5, 0.1, 0.3])
    assert noisy.falling is False and "inconclusive" in describe(noisy)
    assert "plateaued" in describe(plateau_test(steps, flat)) and "still falling" in describe(plateau_test(steps, falling))


def test_a_k_attacker_run_is_k_separate_runs_and_its_column_is_their_strongest(tiny_run, tmp_path):
    """attackers=2 with seed=0 trains, lane by lane, the attackers of the runs with seed=0 and
    seed=1; evaluated as a column, every attacker gets a cell and the table takes the lowest."""
    from jarob.attack import main as attack
    from jarob.checkpoint import ADVERSARY_FILE, load_params
    from jarob.evaluate import main as evaluate

    both, runs = tmp_path / "k2", [tmp_path / "s0", tmp_path / "s1"]
    common = [f"victim={tiny_run}", "adv=paad", *TINY_DIRECTOR, *ATTACK]
    assert attack(common + ["attackers=2", f"run_dir={both}"]) == 0
    for k, r in enumerate(runs):
        assert attack(common + [f"seed={k}", f"run_dir={r}"]) == 0

    together = load_params(str(both), ADVERSARY_FILE)
    apart = [load_params(str(r), ADVERSARY_FILE) for r in runs]
    for s in range(2):
        for k in range(2):
            jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a)[2 * s + k], np.asarray(b)[s], rtol=1e-5, atol=1e-6), together, apart[k])
    summary = json.loads((both / "summary.json").read_text())
    assert summary["attackers"] == 2 and len(summary["final"]["win_rate"]) == 4
    assert json.loads((both / "attack.json").read_text())["attackers"] == 2
    alone = [json.loads((r / "summary.json").read_text())["final"]["win_rate"] for r in runs]
    np.testing.assert_allclose(summary["final"]["win_rate"], [alone[k][s] for s in range(2) for k in range(2)])
    curve = read_curve(str(both))
    assert curve.values.shape == (4, 4) and curve.attackers == 2 and (both / "attack_curve.png").exists()
    assert "convergence" in summary and summary["convergence"]["line"].startswith("convergence: ")

    out = tmp_path / "eval"
    assert evaluate([f"runs=[{tiny_run}]", f"adversaries=[none,{both}]", "episodes=4", f"out={out}", "progress=false"]) == 0
    rows = list(csv.DictReader(open(out / "cells.csv")))
    learned = [r for r in rows if r["adversary"] == "k2"]
    assert sorted((int(r["seed"]), int(r["attacker"])) for r in learned) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(r["attacker"] == "" for r in rows if r["adversary"] == "none")
    table = json.loads((out / "table.json").read_text())["tables"]["win_rate"]
    for s in range(2):
        lowest = min(float(r["win_rate"]) for r in learned if int(r["seed"]) == s)
        assert table["rows"]["run"]["k2"]["values"][s] == pytest.approx(lowest)
    assert "the strongest of 2 attackers" in (out / "table.md").read_text()


def test_attackers_is_for_jarob_attack_only(capsys):
    from jarob.train import main as train

    assert train(TINY + ["attackers=2"]) == 2
    assert "attackers: " in capsys.readouterr().err
