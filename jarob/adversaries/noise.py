"""The static non-gradient adversaries: none (clean observations) and RN (uniform noise)."""

from __future__ import annotations

from dataclasses import dataclass

import jax

from jarob.adversaries.base import ADVERSARIES, ObservationAdversary, TeamView


@dataclass(frozen=True)
class NoiseConfig:
    """none and rn have no settings of their own (the budget is the env's eps)."""

    name: str

    def validate(self, run) -> None:
        pass


@ADVERSARIES.register("none", NoiseConfig)
class NoAttack(ObservationAdversary):
    """The clean observation."""

    def perturb(self, adv_state, obs: jax.Array, view: TeamView, key: jax.Array, train: bool = False) -> jax.Array:
        return obs


@ADVERSARIES.register("rn", NoiseConfig)
class UniformNoise(ObservationAdversary):
    """RN: o~ = proj(o + U(-eps, eps)) on perturbable features."""

    def perturb(self, adv_state, obs: jax.Array, view: TeamView, key: jax.Array, train: bool = False) -> jax.Array:
        return self.random_start(key, obs, adv_state["eps"])
