"""Adversaries of two channels, each in ~20 lines: an observation adversary (Gaussian noise) and
an action adversary (an actuation delay). Each owns its config dataclass (with `validate`) and
registers itself; `adversaries.make(cfg, env, eps)` builds it, the rollout calls it at its
channel's place, and `jarob.evaluate` takes it as a column (with a configs/adv/<name>.yaml for the
command line).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from jarob.adversaries import ADVERSARIES, ActionAdversary, ObservationAdversary
from jarob.config import require


@dataclass(frozen=True)
class GaussianConfig:
    name: str
    sigma: float  # noise scale, in units of the budget eps

    def validate(self, run) -> None:
        require(self.sigma > 0, f"adv.sigma: must be > 0, got {self.sigma}")


@ADVERSARIES.register("gaussian", GaussianConfig)
class GaussianNoise(ObservationAdversary):
    """o~ = proj(o + sigma eps N(0, 1)) onto B_eps(o) on the perturbable features."""

    def perturb(self, adv_state, obs, view, key, train=False):
        eps = adv_state["eps"]
        return self.project(eps)(obs, obs + self.cfg.sigma * eps * jax.random.normal(key, obs.shape))


@dataclass(frozen=True)
class DelayConfig:
    name: str
    prob: float  # per agent and step: the probability that the previous action is played again

    def validate(self, run) -> None:
        require(0.0 <= self.prob <= 1.0, f"adv.prob: must lie in [0, 1], got {self.prob}")


@ADVERSARIES.register("delay", DelayConfig)
class ActuationDelay(ActionAdversary):
    """Each agent plays its previous action again with probability `prob` (where still available):
    its carry is the last actions played in each environment."""

    def initial_carry(self, num_envs: int):
        return {"last": jnp.full((num_envs, self._agents), -1, jnp.int32)}

    def __init__(self, cfg, env, eps, layout=None):
        super().__init__(cfg, env, eps, layout)
        self._agents = env.num_agents

    def act(self, adv_state, carry, actions, view, key, train=False):
        last = jnp.where(view.first, -1, carry["last"])
        still = (last >= 0) & jnp.take_along_axis(view.avail, jnp.maximum(last, 0)[:, None], axis=-1)[:, 0]
        repeat = still & (jax.random.uniform(key, actions.shape) < self.cfg.prob)
        played = jnp.where(repeat, last, actions)
        return played, {"last": played}, {"repeated": repeat}
