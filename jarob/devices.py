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


def free_memory() -> tuple[int | None, bool]:
    """(bytes free, per device): on an accelerator the smallest free memory of one device (its
    limit less what is in use), on CPU the host's available memory (MemAvailable, shared by every
    host device); None where neither is known."""
    stats = [d.memory_stats() for d in jax.devices()]
    if all(s and "bytes_limit" in s for s in stats):
        return min(s["bytes_limit"] - s.get("bytes_in_use", 0) for s in stats), True
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, False
    except OSError:
        pass
    return None, False


def extra_memory(compiled, num_devices: int, outputs: bool = True) -> tuple[int, bool]:
    """(bytes, per device) that running `compiled` adds to what its arguments already hold: its
    temporaries and (`outputs`) its outputs, less the donated arguments it writes in place (XLA's
    memory analysis, which counts one device; on CPU the `num_devices` host devices share the
    host's memory, so their needs add up). (0, True) where the backend gives no analysis."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # a backend without memory analysis
        m = None
    if m is None:
        return 0, True
    need = m.temp_size_in_bytes + (m.output_size_in_bytes - m.alias_size_in_bytes if outputs else 0)
    free, per_device = free_memory()
    return (need, True) if per_device or free is None else (need * num_devices, False)


def gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


class MemoryShortfall(Exception):
    """A program of the run needs more memory than is free; the message is one line."""


def check_fits(compiled, num_devices: int, what: str, outputs: bool = True) -> None:
    """Raise MemoryShortfall with one line when running `compiled` (see `extra_memory`) needs more
    memory than is free now: a run that cannot fit stops before it starts, not mid-run."""
    need, per_device = extra_memory(compiled, num_devices, outputs)
    free, _ = free_memory()
    if free is not None and need > free:
        where = "per device" if per_device else "of host memory"
        raise MemoryShortfall(f"{what} needs {gib(need)} {where}, {gib(free)} is free")
