"""The static non-gradient adversaries: none (clean observations) and RN (uniform noise)."""

from __future__ import annotations

import jax

from jarob.adversaries.base import ObservationAdversary, TeamView


class NoAttack(ObservationAdversary):
    """The clean observation."""

    def perturb(self, adv_state, obs: jax.Array, view: TeamView, key: jax.Array, train: bool = False) -> jax.Array:
        return obs


class UniformNoise(ObservationAdversary):
    """RN: o~ = proj(o + U(-eps, eps)) on perturbable features."""

    def perturb(self, adv_state, obs: jax.Array, view: TeamView, key: jax.Array, train: bool = False) -> jax.Array:
        return self.random_start(key, obs, adv_state["eps"])
