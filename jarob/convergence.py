"""Has an attacker converged? The victim's win rate (or return) under a learned attacker, chunk
by chunk, from an attack run's metrics.csv; a least-squares slope test on the last quarter of
the run; and its plot (attack_curve.png).

The test: fit y = a + b x by least squares to the last quarter of the chunks (at least 3) of the
mean curve over all attackers, x the env steps per seed; the fitted change over that stretch is
d = b (x_last - x_first), its standard error s_d = SE(b) (x_last - x_first) with
SE(b)^2 = sum(residual^2) / (m - 2) / sum((x - mean x)^2). The run was *still falling* where
d < -max(tol, 2 s_d): it fell by more than `tol` (0.02 of a win rate; 2% of the curve's largest
|value| for a return) and by more than twice its noise. A fall larger than `tol` but within 2 s_d
is *inconclusive*; anything else has *plateaued*.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass

import numpy as np

CURVE_FILE = "attack_curve.png"
WIN_TOL = 0.02  # the smallest fall of a win rate over the last quarter that counts


@dataclass(frozen=True)
class Curve:
    """The victim's metric under attack: `values[c, lane]` at `steps[c]` env steps per seed, lane
    s * attackers + k for attacker k of victim seed s."""

    metric: str  # "win_rate" or "return"
    steps: np.ndarray  # [chunks]
    values: np.ndarray  # [chunks, lanes]
    attackers: int


@dataclass(frozen=True)
class Plateau:
    """The slope test's result (module docstring)."""

    falling: bool | None  # None: fewer than 3 chunks, nothing to test
    change: float  # fitted change over the tested stretch
    noise: float  # its standard error s_d
    tol: float
    first_step: int
    last_step: int
    chunks: int  # chunks tested


def read_curve(run_dir: str, metric: str = "win_rate") -> Curve:
    """The eval_<metric> column of `run_dir`/metrics.csv as a Curve (rows without an `attacker`
    column, from a run before attackers=K, are attacker 0)."""
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return Curve(metric, np.zeros(0), np.zeros((0, 0)), 1)
    attackers = 1 + max(int(r.get("attacker") or 0) for r in rows)
    seeds = 1 + max(int(r["seed"]) for r in rows)
    chunks = sorted({int(r["chunk"]) for r in rows})
    index = {c: i for i, c in enumerate(chunks)}
    steps = np.zeros(len(chunks))
    values = np.full((len(chunks), seeds * attackers), np.nan)
    for r in rows:
        i = index[int(r["chunk"])]
        steps[i] = float(r["env_steps"])
        values[i, int(r["seed"]) * attackers + int(r.get("attacker") or 0)] = float(r[f"eval_{metric}"])
    return Curve(metric, steps, values, attackers)


def plateau_test(steps, values, tol: float = WIN_TOL) -> Plateau:
    """The slope test of the module docstring on `values` ([chunks] or [chunks, lanes]: their
    mean over lanes) at `steps`."""
    x = np.asarray(steps, dtype=float)
    y = np.asarray(values, dtype=float)
    y = y.mean(axis=1) if y.ndim == 2 else y
    n = len(x)
    if n < 3:
        return Plateau(None, math.nan, math.nan, tol, int(x[0]) if n else 0, int(x[-1]) if n else 0, n)
    m = max(3, math.ceil(n / 4))
    x, y = x[-m:], y[-m:]
    dx = x - x.mean()
    b = float(np.sum(dx * (y - y.mean())) / np.sum(dx**2))
    residual = y - (y.mean() + b * dx)
    se_b = math.sqrt(float(np.sum(residual**2)) / (m - 2) / float(np.sum(dx**2)))
    span = float(x[-1] - x[0])
    change, noise = b * span, se_b * span
    return Plateau(change < -max(tol, 2 * noise), change, noise, tol, int(x[0]), int(x[-1]), m)


def curve_tol(curve: Curve) -> float:
    """`tol` for a curve: WIN_TOL for a win rate, 2% of the largest |value| for a return."""
    if curve.metric == "win_rate":
        return WIN_TOL
    finite = curve.values[np.isfinite(curve.values)]
    return 0.02 * float(np.max(np.abs(finite))) if finite.size else WIN_TOL


def describe(p: Plateau, metric: str = "win_rate") -> str:
    """One line: whether the last quarter of the run was still falling."""
    what = "win rate" if metric == "win_rate" else "return"
    if p.falling is None:
        return f"convergence: {p.chunks} evaluation(s), too few for a slope test (3 needed)"
    stretch = f"over env steps {p.first_step:,}-{p.last_step:,} ({p.chunks} evaluations)"
    fit = f"the victim's {what} changed {p.change:+.3f} ± {p.noise:.3f} (fitted slope, ± its standard error)"
    if p.falling:
        return f"convergence: still falling {stretch}: {fit}; a longer total_steps may find a stronger attacker"
    if p.change < -p.tol:
        return f"convergence: inconclusive {stretch}: {fit}, a fall within 2 SE of none; a longer run (more evaluations) would tell"
    return f"convergence: not falling {stretch}: {fit}, no fall larger than {p.tol:.3g}; the attacker has plateaued at this budget"


def plot_curve(curve: Curve, path: str, title: str) -> None:
    """Each attacker's curve (thin, one colour per victim seed) and their mean (bold)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for lane in range(curve.values.shape[1]):
        seed, k = divmod(lane, curve.attackers)
        label = f"seed {seed}" if k == 0 else None
        ax.plot(curve.steps, curve.values[:, lane], color=colours[seed % len(colours)], lw=0.9, alpha=0.7, label=label)
    ax.plot(curve.steps, np.nanmean(curve.values, axis=1), color="k", lw=2.2, label="mean")
    ax.set_xlabel("attacker env steps per seed")
    ax.set_ylabel(f"victim's {curve.metric.replace('_', ' ')} under attack")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(run_dir: str, has_win: bool, title: str) -> tuple[Plateau, str]:
    """Read `run_dir`'s curve, plot it to attack_curve.png; (the slope test, its line)."""
    curve = read_curve(run_dir, "win_rate" if has_win else "return")
    p = plateau_test(curve.steps, curve.values, curve_tol(curve))
    if curve.steps.size:
        plot_curve(curve, os.path.join(run_dir, CURVE_FILE), title)
    return p, describe(p, curve.metric)
