"""Gradient observation attacks on the protagonist's masked softmax policy: FGSM and PGD.

Untargeted: ascend CE(pi(.|o~), a*) with a* the greedy action on the clean observation.
Targeted: descend CE(pi(.|o~), a^) toward a given target action (ATSA's STor, eqs. 12-13, and
PAAD's actor). Each agent is attacked on its own policy; the sum of the agents' losses has
per-agent gradients because every agent's utilities depend only on its own observation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import jax
import jax.numpy as jnp

from jarob.adversaries.base import ADVERSARIES, ObservationAdversary, TeamView, team_log_policy
from jarob.ascent import sign_ascent
from jarob.config import require, require_positive
from jarob.ops import masked_argmax, take


@dataclass(frozen=True)
class GradientConfig:
    """FGSM and PGD on the team's softmax policy."""

    name: str
    temperature: float  # pi(.|o) = softmax(Q / temperature) over available actions
    steps: int  # PGD: gradient steps (FGSM: 1)
    step_size: Optional[float]  # PGD: step size; null = eps / steps
    random_start: bool  # PGD: start from a uniform point of the eps-ball
    restarts: int  # PGD: runs from R starts (the first as random_start says, the others random), each agent keeping its strongest
    targeted: bool  # PGD: push toward each agent's worst available action instead of away from the greedy one

    def validate(self, run) -> None:
        require_positive(self, "adv.", ("temperature", "steps", "restarts"))
        require(self.step_size is None or self.step_size > 0, f"adv.step_size: must be > 0, got {self.step_size}")


def pgd_attack(
    q_fn,
    avail: jax.Array,
    obs: jax.Array,
    project,
    *,
    steps: int,
    step_size: float,
    temperature: float = 1.0,
    target: Optional[jax.Array] = None,
    start: Optional[jax.Array] = None,
) -> jax.Array:
    """K signed-gradient steps on CE(pi(.|o~), label), each projected by `project(clean, x)`.

    label = target (descend: targeted) or the clean greedy action (ascend: untargeted).
    `start` is the first iterate (default: the clean obs). FGSM is steps=1, step_size=eps.
    Differentiable in every argument (ATSA needs gradients through it later).
    """
    label, sign = attack_label(q_fn, avail, obs, target)

    def objective(x):  # ascended: +CE untargeted, -CE targeted
        return jnp.sum(agent_objective(q_fn, avail, x, label, sign, temperature))

    return sign_ascent(objective, obs, project, steps=steps, step_size=step_size, start=start)


def attack_label(q_fn, avail: jax.Array, obs: jax.Array, target: Optional[jax.Array] = None):
    """(label, sign) of `pgd_attack`: the clean greedy action, +1 (untargeted), or target, -1."""
    if target is None:
        return masked_argmax(jax.lax.stop_gradient(q_fn(obs)), avail), 1.0
    return target, -1.0


def agent_objective(q_fn, avail: jax.Array, x: jax.Array, label: jax.Array, sign: float, temperature: float) -> jax.Array:
    """Each agent's attack objective at observations x [N, d]: sign * CE(pi(.|x_i), label_i)
    (ascended by `pgd_attack`; larger is a stronger perturbation)."""
    return -sign * take(team_log_policy(q_fn(x), avail, temperature), label)


def configured_pgd(adversary: ObservationAdversary, adv_state, obs: jax.Array, view: TeamView, *, target=None, start=None) -> jax.Array:
    """`pgd_attack` with an adversary's settings: `adv.steps` steps of `adv.step_size` (default
    eps / steps) on softmax(Q / `adv.temperature`), projected onto its eps-ball."""
    eps, c = adv_state["eps"], adversary.cfg
    step_size = eps / c.steps if c.step_size is None else c.step_size
    return pgd_attack(view.q_fn, view.avail, obs, adversary.project(eps), steps=c.steps, step_size=step_size, temperature=c.temperature, target=target, start=start)


@ADVERSARIES.register("fgsm", GradientConfig)
class FGSM(ObservationAdversary):
    """Untargeted FGSM: o~ = proj(o + eps * sign(grad_o CE(pi(.|o), a*)))."""

    def perturb(self, adv_state, obs: jax.Array, view: TeamView, key: jax.Array, train: bool = False) -> jax.Array:
        eps = adv_state["eps"]
        return pgd_attack(view.q_fn, view.avail, obs, self.project(eps), steps=1, step_size=eps, temperature=self.cfg.temperature)


@ADVERSARIES.register("pgd", GradientConfig)
class PGD(ObservationAdversary):
    """K-step PGD (step size `step_size`, default eps / K), optional random start; untargeted, or
    `targeted`: toward each agent's worst available action on the clean observation. With
    `restarts` R > 1, R runs per step and each agent's strongest end point (Madry et al.'s
    restarts, per step and per agent)."""

    def perturb(self, adv_state, obs: jax.Array, view: TeamView, key: jax.Array, train: bool = False) -> jax.Array:
        c = self.cfg
        target = masked_argmax(-jax.lax.stop_gradient(view.q_fn(obs)), view.avail) if c.targeted else None
        if c.restarts == 1:
            start = self.random_start(key, obs, adv_state["eps"]) if c.random_start else None
            return configured_pgd(self, adv_state, obs, view, target=target, start=start)
        # R runs: the first from the clean obs (or a random point), the others from random points;
        # each agent keeps the run whose end point has its largest objective (its own utilities
        # depend on its own observation only, so the agents' choices are independent).
        starts = jax.vmap(lambda k: self.random_start(k, obs, adv_state["eps"]))(jax.random.split(key, c.restarts))
        if not c.random_start:
            starts = starts.at[0].set(obs)
        ends = jax.vmap(lambda s: configured_pgd(self, adv_state, obs, view, target=target, start=s))(starts)  # [R, N, d]
        label, sign = attack_label(view.q_fn, view.avail, obs, target)
        scores = jax.vmap(lambda x: agent_objective(view.q_fn, view.avail, x, label, sign, c.temperature))(ends)  # [R, N]
        best = jnp.argmax(scores, axis=0)
        return jnp.take_along_axis(ends, best[None, ..., None], axis=0)[0]
