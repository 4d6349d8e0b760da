"""Masked action-value operations shared by learners, actors and attacks.

Unavailable actions get -inf logits everywhere (DESIGN.md section 8: masks everywhere).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

NEG_INF = -1e9  # finite stand-in for -inf: keeps gradients and softmaxes NaN-free


def linear_schedule(t: jax.Array, start, end, steps) -> jax.Array:
    """start + min(1, t / steps) (end - start), t >= 0: a linear anneal (or ramp) held at `end`."""
    return start + jnp.clip(t / steps, 0.0, 1.0) * (end - start)


def mask_logits(q: jax.Array, avail: jax.Array) -> jax.Array:
    """Replace the values of unavailable actions by NEG_INF."""
    return jnp.where(avail, q, NEG_INF)


def masked_argmax(q: jax.Array, avail: jax.Array) -> jax.Array:
    """Greedy action among the available ones (last axis)."""
    return jnp.argmax(mask_logits(q, avail), axis=-1)


def take(q: jax.Array, actions: jax.Array) -> jax.Array:
    """q[..., a] for integer actions of q's leading shape."""
    return jnp.take_along_axis(q, actions[..., None], axis=-1)[..., 0]


def weighted_mean(x: jax.Array, weights=None) -> jax.Array:
    """mean(x) when weights is None, else sum(w x) / max(sum(w), 1) with w broadcast from the
    leading axes of x."""
    if weights is None:
        return jnp.mean(x)
    w = jnp.broadcast_to(weights.reshape(weights.shape + (1,) * (x.ndim - weights.ndim)), x.shape).astype(x.dtype)
    return jnp.sum(w * x) / jnp.maximum(jnp.sum(w), 1.0)


def uniform_available(key: jax.Array, avail: jax.Array) -> jax.Array:
    """An action drawn uniformly among the available ones (last axis)."""
    return jax.random.categorical(key, jnp.where(avail, 0.0, NEG_INF), axis=-1)


def epsilon_greedy(key: jax.Array, q: jax.Array, avail: jax.Array, eps: jax.Array) -> jax.Array:
    """With probability eps a uniform available action, else the greedy one (per agent)."""
    k_explore, k_action = jax.random.split(key)
    explore = jax.random.uniform(k_explore, q.shape[:-1]) < eps
    return jnp.where(explore, uniform_available(k_action, avail), masked_argmax(q, avail))
