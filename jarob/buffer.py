"""A replay buffer of fixed-length sequences, stored with their recurrent context.

Each item is one environment's rollout of T steps (episodes continue across items, with
auto-reset inside them) plus the agent's hidden state before the first step, so training
unrolls the GRU from the context it had when acting (stored-state replay, as in R2D2).

The buffer is a pytree of arrays with a leading capacity axis, written as a ring. Where to
write and how much is filled are functions of the iteration index, not buffer state: every seed
of a vmapped run writes at the same slot, so the write stays an in-place dynamic update slice
instead of becoming a scatter that copies the whole buffer.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def init(example_item, capacity: int):
    """An empty buffer for items shaped like `example_item` (no leading axis)."""
    return jax.tree.map(lambda x: jnp.zeros((capacity,) + x.shape, x.dtype), example_item)


def ring_position(iteration: jax.Array, items_per_add: int, capacity: int) -> tuple[jax.Array, jax.Array]:
    """(slot written by `iteration`, filled size after that write) for a ring receiving
    `items_per_add` items per iteration; capacity % items_per_add == 0."""
    slot = (iteration * items_per_add) % capacity
    size = jnp.minimum((iteration + 1) * items_per_add, capacity)
    return slot, size


def write(data, items, slot: jax.Array):
    """Write a batch of E items (leading axis E) at `slot`."""
    return jax.tree.map(lambda d, x: jax.lax.dynamic_update_slice_in_dim(d, x, slot, axis=0), data, items)


def sample(data, key: jax.Array, batch_size: int, size: jax.Array, weights: jax.Array | None = None):
    """`batch_size` items drawn with replacement from the first `size` slots: uniformly, or with
    probability proportional to `weights` ([capacity], >= 0) when given. If every filled slot
    weighs 0, the draw falls back to uniform."""
    if weights is None:
        idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(size, 1))
    else:
        filled = jnp.arange(weights.shape[0]) < jnp.maximum(size, 1)
        w = jnp.where(filled, weights, 0.0)
        w = jnp.where(jnp.sum(w) > 0, w, filled.astype(w.dtype))
        idx = jax.random.categorical(key, jnp.log(w), shape=(batch_size,))
    return jax.tree.map(lambda d: d[idx], data)
