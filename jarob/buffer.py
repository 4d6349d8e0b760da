"""A replay buffer of fixed-length sequences, stored with their recurrent context.

Each item is one environment's rollout of T steps (episodes continue across items, with
auto-reset inside them) plus the agent's hidden state before the first step, so training
unrolls the GRU from the context it had when acting (stored-state replay, as in R2D2).
Pure functions over a pytree of arrays with a leading capacity axis.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class BufferState:
    data: object  # pytree, every leaf [capacity, ...]
    pos: jax.Array  # [] int32, next slot to write
    size: jax.Array  # [] int32, filled slots


def init(example_item, capacity: int) -> BufferState:
    """An empty buffer for items shaped like `example_item` (no leading axis)."""
    data = jax.tree.map(lambda x: jnp.zeros((capacity,) + x.shape, x.dtype), example_item)
    return BufferState(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def add(buf: BufferState, items) -> BufferState:
    """Write a batch of E items (leading axis E) at the ring position. Capacity % E == 0."""
    e = jax.tree.leaves(items)[0].shape[0]
    capacity = jax.tree.leaves(buf.data)[0].shape[0]
    data = jax.tree.map(lambda d, x: jax.lax.dynamic_update_slice_in_dim(d, x, buf.pos, axis=0), buf.data, items)
    return BufferState(data, (buf.pos + e) % capacity, jnp.minimum(buf.size + e, capacity))


def sample(buf: BufferState, key: jax.Array, batch_size: int):
    """`batch_size` items drawn uniformly, with replacement, from the filled slots."""
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buf.size, 1))
    return jax.tree.map(lambda d: d[idx], buf.data)
