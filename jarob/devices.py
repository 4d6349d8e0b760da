"""Placement of a multi-seed run: the seed axis is sharded over the available devices."""

from __future__ import annotations

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def seed_sharding(num_seeds: int) -> NamedSharding:
    """Shard a leading seed axis of size `num_seeds` over the default backend's devices.

    Uses the largest number of devices d <= len(devices) that divides num_seeds. On CPU, jarob
    asks XLA for 8 host devices (see jarob/__init__.py), so up to 8 seeds each get a device (a
    thread) of their own; on one GPU all seeds share it and run as one vmapped batch.
    """
    n = len(jax.devices())
    return leading_axis_sharding(max(k for k in range(1, min(num_seeds, n) + 1) if num_seeds % k == 0))


def leading_axis_sharding(num_devices: int) -> NamedSharding:
    """A leading axis split evenly over the first `num_devices` devices of the default backend."""
    mesh = Mesh(jax.devices()[:num_devices], ("seeds",))
    return NamedSharding(mesh, PartitionSpec("seeds"))
