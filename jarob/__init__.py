"""jarob: JAX-native robust cooperative multi-agent reinforcement learning."""

import os as _os


def _configure_xla_cpu() -> None:
    """XLA CPU settings jarob relies on; they must be set before JAX starts its CPU backend.

    - Several host devices (JAROB_HOST_DEVICES, default 8): the driver places each seed of a
      multi-seed run on its own CPU device, so seeds run on separate threads (seeds=4 costs about
      2x one seed on 2 cores instead of 4x). A user's own setting is kept.
    - The concurrency-optimised scheduler off: with it, programs that loop over a vmapped batch
      hang at random in XLA's CPU runtime (jaxlib 0.10; seen as all workers idle while the
      caller waits in Execute).
    Flags already present in XLA_FLAGS are left alone; on GPU they only affect the host backend.
    """
    flags = _os.environ.get("XLA_FLAGS", "")
    wanted = {
        "--xla_force_host_platform_device_count": _os.environ.get("JAROB_HOST_DEVICES", "8"),
        "--xla_cpu_enable_concurrency_optimized_scheduler": "false",
    }
    extra = [f"{k}={v}" for k, v in wanted.items() if k not in flags]
    if extra:
        _os.environ["XLA_FLAGS"] = " ".join([flags, *extra]).strip()


_configure_xla_cpu()

__version__ = "0.1.0"
