"""Proximal policy optimisation pieces (ATLA's MAPPO adversary): GAE and the clipped objective."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jarob.learners.targets import lambda_returns
from jarob.ops import weighted_mean


def gae(rewards: jax.Array, values: jax.Array, dones: jax.Array, last_value: jax.Array, gamma: float, lam: float):
    """Generalised advantage estimates and value targets along time (leading axis).

    rewards, values, dones [T, ...]; last_value [...] = V of the state after the last step.
    A_t = delta_t + gamma lam (1 - d_t) A_{t+1}, delta_t = r_t + gamma (1 - d_t) V_{t+1} - V_t
    (Schulman et al. 2016, eq. 16); an episode end (d_t) cuts both. A + V is the lambda-return
    of V, so A is computed as `lambda_returns` - V. Returns (A, A + V)."""
    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    targets = lambda_returns(rewards, dones, next_values, gamma, lam)
    return targets - values, targets


def normalize(x: jax.Array, weights: jax.Array) -> jax.Array:
    """(x - mean) / std over the entries with weight 1 (weights broadcast like `weighted_mean`)."""
    mean = weighted_mean(x, weights)
    std = jnp.sqrt(weighted_mean(jnp.square(x - mean), weights))
    return (x - mean) / (std + 1e-8)


def clipped_surrogate(log_prob: jax.Array, old_log_prob: jax.Array, advantages: jax.Array, clip: float, weights: jax.Array) -> jax.Array:
    """The PPO-clip loss (Schulman et al. 2017, eq. 7, negated to be minimised):
    -mean min(rho A, clip(rho, 1 - c, 1 + c) A), rho = exp(log_prob - old_log_prob)."""
    ratio = jnp.exp(log_prob - old_log_prob)
    surrogate = jnp.minimum(ratio * advantages, jnp.clip(ratio, 1.0 - clip, 1.0 + clip) * advantages)
    return -weighted_mean(surrogate, weights)
