"""The cross table's two kinds of ±, on a tiny table computed by hand, and ATSA's AVG on its own rows."""

import json

import numpy as np
import pytest

from jarob.evaluation import Cell
from jarob.report import cross_table, paper_avg, table_markdown, write_report

# Two teams, two seeds, two columns (win rates; returns are 10 x the win rate).
WINS = {
    ("A", "none"): [1.0, 0.8],
    ("A", "x"): [0.2, 0.6],
    ("B", "none"): [0.5, 0.5],
    ("B", "x"): [0.5, 0.5],
}
CELLS = [Cell(t, s, a, 0.25, w, 10 * w, 50.0) for (t, a), ws in WINS.items() for s, w in enumerate(ws)]


@pytest.fixture(scope="module")
def table():
    return cross_table(CELLS, ["A", "B"], ["none", "x"], "win_rate", compare="A")


def test_seed_std_is_the_population_std(table):
    a = table["rows"]["A"]
    # none: seeds 1.0, 0.8 -> mean 0.9, std sqrt((0.1^2 + 0.1^2) / 2) = 0.1 (ddof 1 would be 0.141).
    assert a["none"]["mean"] == pytest.approx(0.9) and a["none"]["std"] == pytest.approx(0.1)
    # x: seeds 0.2, 0.6 -> mean 0.4, std 0.2.
    assert a["x"]["mean"] == pytest.approx(0.4) and a["x"]["std"] == pytest.approx(0.2)
    # AVG per seed: (1.0 + 0.2) / 2 = 0.6, (0.8 + 0.6) / 2 = 0.7 -> 0.65 ± 0.05 over the seeds.
    assert a["AVG"]["values"] == pytest.approx([0.6, 0.7])
    assert a["AVG"]["mean"] == pytest.approx(0.65) and a["AVG"]["std"] == pytest.approx(0.05)


def test_paper_avg_is_mean_and_std_over_the_columns(table):
    a, b = table["rows"]["A"]["AVG_paper"], table["rows"]["B"]["AVG_paper"]
    # Column means 0.9 and 0.4: mean 0.65 (AVG's mean), std sqrt((0.25^2 + 0.25^2) / 2) = 0.25.
    assert a["mean"] == pytest.approx(0.65) and a["std"] == pytest.approx(0.25)
    assert a["mean"] == pytest.approx(table["rows"]["A"]["AVG"]["mean"])
    assert b == pytest.approx({"mean": 0.5, "std": 0.0})
    assert table["columns"] == ["none", "x", "AVG"] and "AVG_paper" not in table["best"]  # readers of columns/best unchanged


def test_paper_avg_reproduces_atsa_table1():
    # ATSA Table 1, 3m, NoAdv row, VDN: NoAdv..ATSA 0.99 0.23 0.00 0.02 0.00 0.00, AVG 0.21±0.36.
    r = paper_avg([0.99, 0.23, 0.00, 0.02, 0.00, 0.00])
    assert round(r["mean"], 2) == 0.21 and round(r["std"], 2) == 0.36  # ddof 1: 0.39; without NoAdv: 0.05
    # 8m, NoAdv row, QMIX: 0.98 0.95 0.00 0.92 0.00 0.01, AVG 0.48±0.47 (ddof 1: 0.52).
    r = paper_avg([0.98, 0.95, 0.00, 0.92, 0.00, 0.01])
    assert round(r["mean"], 2) == 0.48 and round(r["std"], 2) == 0.47
    # Table 5 (MPE), MADDPG row: AVG 103.58±5.12 (ddof 1: 5.61).
    r = paper_avg([103.13, 110.40, 97.88, 96.16, 107.27, 106.67])
    assert round(r["mean"], 2) == 103.58 and round(r["std"], 2) == 5.12


def test_markdown_says_what_each_pm_is(table):
    md = table_markdown(table, "win rate")
    assert "| team | none | x | AVG | AVG (paper: ± over columns) |" in md
    assert "| A | **0.900 ± 0.100** | 0.400 ± 0.200 | **0.650 ± 0.050** | **0.650 ± 0.250** |" in md
    assert "| B | 0.500 ± 0.000 | **0.500 ± 0.000** | 0.500 ± 0.000 | 0.500 ± 0.000 |" in md
    assert "± is the standard deviation over the team's seeds (population std, ddof=0)" in md
    assert "AVG is each seed's mean over the 2 columns (none, x)" in md
    assert "± their standard deviation over those columns (population std, ddof=0" in md


def test_table_json_keeps_avg_and_adds_paper_avg(tmp_path):
    write_report(str(tmp_path), CELLS, ["A", "B"], ["none", "x"], 0.25, True, "A", "tiny", sweep=False)
    saved = json.loads((tmp_path / "table.json").read_text())["tables"]
    for metric, scale in (("win_rate", 1.0), ("return", 10.0)):
        rows = saved[metric]["rows"]
        assert rows["A"]["AVG"]["mean"] == pytest.approx(0.65 * scale) and rows["A"]["AVG"]["std"] == pytest.approx(0.05 * scale)
        assert np.allclose([rows["A"]["AVG_paper"]["mean"], rows["A"]["AVG_paper"]["std"]], [0.65 * scale, 0.25 * scale])
        assert "ddof=0" in saved[metric]["plus_minus"]["cells"] and "columns" in saved[metric]["plus_minus"]["AVG_paper"]
    assert (tmp_path / "table.md").read_text().count("± is the standard deviation over the team's seeds") == 2
