"""Proximal policy optimisation pieces (ATLA's MAPPO adversary): GAE and the clipped objective."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jarob.ops import weighted_mean


def gae(rewards: jax.Array, values: jax.Array, dones: jax.Array, last_value: jax.Array, gamma: float, lam: float):
    """Generalised advantage estimates and value targets along time (leading axis).

    rewards, values, dones [T, ...]; last_value [...] = V of the state after the last step.
    delta_t = r_t + gamma (1 - d_t) V_{t+1} - V_t and A_t = delta_t + gamma lam (1 - d_t) A_{t+1}
    (Schulman et al. 2016, eq. 16); an episode end (d_t) cuts both. Returns (A, A + V)."""
    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    live = 1.0 - dones.astype(values.dtype)
    deltas = rewards + gamma * live * next_values - values

    def step(a_next, x):
        delta, alive = x
        a = delta + gamma * lam * alive * a_next
        return a, a

    _, adv = jax.lax.scan(step, jnp.zeros_like(last_value), (deltas, live), reverse=True)
    return adv, adv + values


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
