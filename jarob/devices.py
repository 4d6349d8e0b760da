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
    devices = jax.devices()
    d = max(k for k in range(1, min(num_seeds, len(devices)) + 1) if num_seeds % k == 0)
    mesh = Mesh(devices[:d], ("seeds",))
    return NamedSharding(mesh, PartitionSpec("seeds"))
