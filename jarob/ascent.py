"""Projected signed-gradient ascent on observations: the step shared by the gradient attacks
(FGSM, PGD, STor) and the regularizers that search the eps-ball (PR)."""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp


def sign_ascent(objective, obs: jax.Array, project, *, steps: int, step_size, start: Optional[jax.Array] = None) -> jax.Array:
    """K projected signed-gradient ascent steps on a scalar `objective(x)`:
    x <- project(obs, x + step_size * sign(grad objective(x))), from `start` (default obs)."""

    def body(_, x):
        return project(obs, x + step_size * jnp.sign(jax.grad(objective)(x)))

    return jax.lax.fori_loop(0, steps, body, obs if start is None else start)
