"""jarob environments: `make(name)` returns a `MarlEnv` with the array API of `core.py`, or for a
host env (`host.py`: a simulator stepped in Python) one `HostEnv` instance; `is_host_env` tells them apart."""

from __future__ import annotations

import os
import sys
from functools import partial
from typing import Callable

from jarob.envs.core import EnvState, MarlEnv, PerturbationSpec, TimeStep
from jarob.envs.host import HostEnv, is_host_env



def _import_jaxmarl_quietly() -> None:
    """jaxmarl prints a banner on import after resetting sys.stdout and sys.stderr to the
    interpreter's own streams: silence file descriptor 1 and put back the streams the caller
    had (a redirected or captured sys.stderr stays in place)."""
    sys.stdout.flush()
    streams = sys.stdout, sys.stderr
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        import jaxmarl  # noqa: F401
    finally:
        sys.stdout.flush()
        sys.stdout, sys.stderr = streams
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


_import_jaxmarl_quietly()


def _smax(map_name: str, eps: float, name: str) -> MarlEnv:
    from jarob.envs.smax import SMAXEnv

    return SMAXEnv(map_name, name=name, default_eps=eps)


def _spread(name: str) -> MarlEnv:
    from jarob.envs.mpe import SpreadEnv

    return SpreadEnv(name=name, default_eps=0.1)


def _tag(name: str) -> MarlEnv:
    from jarob.envs.mpe import TagEnv

    return TagEnv(name=name, default_eps=0.1)


def _cav_merge(name: str) -> MarlEnv:
    from jarob.envs.cav_merge import CavMergeEnv

    return CavMergeEnv(name=name, default_eps=0.05)


def _highway_merge(name: str) -> HostEnv:
    from jarob.envs.highway import HighwayMergeEnv  # raises a one-line ImportError without the extra

    return HighwayMergeEnv(name=name)


# name -> builder; default attack budgets eps follow DESIGN.md section 5.
_REGISTRY: dict[str, Callable[[str], MarlEnv | HostEnv]] = {
    "smax_3m": partial(_smax, "3m", 0.25),
    "smax_8m": partial(_smax, "8m", 0.1),
    "smax_2s3z": partial(_smax, "2s3z", 0.05),
    "smax_3s_vs_3z": partial(_smax, "3s_vs_3z", 0.25),
    "smax_2m_vs_1z": partial(_smax, "2m_vs_1z", 0.2),
    "mpe_spread": _spread,
    "mpe_tag": _tag,
    "cav_merge": _cav_merge,
    "highway_merge": _highway_merge,
}

ENV_NAMES: tuple[str, ...] = tuple(_REGISTRY)  # the built-in environments


class UnknownEnvError(ValueError):
    pass


def register(name: str, builder: Callable[..., MarlEnv | HostEnv]) -> None:
    """Make `builder(name=name)` the environment `env=<name>` builds (a new environment's module
    calls this when imported; configs/env/<name>.yaml makes it a command-line option). A host
    env's builder makes one simulator instance per call."""
    if name in _REGISTRY and _REGISTRY[name] is not builder:
        raise ValueError(f"env {name!r} is registered twice")
    _REGISTRY[name] = builder


def names() -> tuple[str, ...]:
    """Every registered environment's name."""
    return tuple(_REGISTRY)


def make(name: str) -> MarlEnv | HostEnv:
    """Build the environment registered under `name` (a host env: one more instance)."""
    if name not in _REGISTRY:
        raise UnknownEnvError(f"unknown env {name!r}; known: {', '.join(names())}")
    return _REGISTRY[name](name=name)


__all__ = ["ENV_NAMES", "EnvState", "HostEnv", "MarlEnv", "PerturbationSpec", "TimeStep", "UnknownEnvError", "is_host_env", "make", "names", "register"]
