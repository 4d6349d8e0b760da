"""Host environments: simulators stepped in Python, numpy in and out (DESIGN.md section 3).

A host env is one simulator instance (a process, a Python object); E parallel environments are E
instances. It declares the attributes of a `MarlEnv` (name, num_agents, obs_dim, num_actions,
state_dim, max_steps, has_win, perturbation, default_eps) and two methods:

    reset(seed)     -> view                          view = {"obs":   [N, O] float32,
    step(actions)   -> (view, reward, done, won)             "avail": [N, A] bool,
                                                             "state": [S] float32}

`seed` is an int in [0, 2**64); `actions` an int array [N]; `reward` the team reward of the step
(a float), `done` whether the step ended the episode (terminal or time limit: at the latest the
`max_steps`-th step), `won` whether the episode was won (read only where done). Unlike a
MarlEnv's, `step` does not reset: after `done` the driver calls `reset` with the next episode's
seed, and the view returned with `done` is not acted on. The driver keeps the episode statistics
(return, length). An env with `has_crash` also answers `crashed()`: whether the episode that
its last step ended ended in a crash. `jarob.host_driver` runs a team on host envs.

`JaxEnvOnHost` steps a JAX env (`MarlEnv`) from Python through this API: the tests' and the
benchmark's reference host env.
"""

from __future__ import annotations

from functools import cache

import jax
import numpy as np

from jarob.envs.core import EnvSpaces, MarlEnv


class HostEnv(EnvSpaces):
    """Base class of host envs: one simulator instance; subclasses implement `reset` and `step`."""

    def reset(self, seed: int) -> dict[str, np.ndarray]:
        """Start an episode seeded by `seed`; its first view {obs, avail, state}."""
        raise NotImplementedError

    def step(self, actions: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool]:
        """Play the agents' `actions` [N]: (view, reward, done, won)."""
        raise NotImplementedError

    def crashed(self) -> bool:
        """Whether the episode the last step ended ended in a crash (envs with has_crash)."""
        return False

    def close(self) -> None:
        """Release the simulator (nothing by default)."""


def is_host_env(env) -> bool:
    """Whether `env` is stepped in Python (a `HostEnv`) rather than a JAX env (`MarlEnv`)."""
    return isinstance(env, HostEnv)


def seed_of_key(key) -> int:
    """The 64-bit seed carrying the data of a threefry key (raw uint32 [2], as
    `jax.random.PRNGKey` makes): high word << 32 | low word."""
    hi, lo = (int(x) for x in np.asarray(key, np.uint32))
    return hi << 32 | lo


def key_of_seed(seed: int) -> np.ndarray:
    """The threefry key (raw uint32 [2]) of a 64-bit seed, the inverse of `seed_of_key`: equal
    to `jax.random.PRNGKey(seed)` for every seed that accepts."""
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must lie in [0, 2**64), got {seed}")
    return np.array([seed >> 32, seed & 0xFFFFFFFF], np.uint32)


# Steps draw their keys from fold_in(reset key, _STEP_STREAM), apart from the reset's own keys.
_STEP_STREAM = 0x5EED5


@cache
def _programs(env: MarlEnv):
    """The jitted reset and step of `env`, shared by every JaxEnvOnHost wrapping it."""

    def reset(key):
        inner = env._reset(key)
        return jax.random.fold_in(key, _STEP_STREAM), inner, env._view(inner)

    def step(key, inner, actions):
        key, k_step = jax.random.split(key)
        inner, reward, done, won = env._step(k_step, inner, actions)
        return key, inner, env._view(inner), reward.astype(np.float32), done, won & done, env._crashed(inner) & done

    return jax.jit(reset), jax.jit(step)


class JaxEnvOnHost(HostEnv):
    """A JAX env stepped from Python with numpy in and out.

    `reset(seed)` resets the JAX env with the key `key_of_seed(seed)`: the host driver's seeds
    carry the very reset keys of `rollout.evaluate`, so the first views match the native env's
    exactly. Steps draw their keys from a stream of the reset key (a host simulator keeps its own
    randomness), so the episodes match the native ones exactly only where the env's step does
    not use its key (a deterministic env).
    """

    def __init__(self, env: MarlEnv, name: str | None = None):
        if not isinstance(env, MarlEnv):
            raise TypeError(f"JaxEnvOnHost wraps a MarlEnv, got {type(env).__name__}")
        self.env = env
        self.name = env.name if name is None else name
        self.mirror_spaces(env)
        self._reset_fn, self._step_fn = _programs(env)
        self._key = self._inner = None
        self._crashed = False

    @staticmethod
    def _numpy(view) -> dict[str, np.ndarray]:
        obs, avail, state = view
        return {"obs": np.asarray(obs), "avail": np.asarray(avail), "state": np.asarray(state)}

    def reset(self, seed: int) -> dict[str, np.ndarray]:
        self._key, self._inner, view = self._reset_fn(key_of_seed(seed))
        return self._numpy(view)

    def step(self, actions: np.ndarray):
        if self._inner is None:
            raise RuntimeError(f"{self.name}: step before reset")
        self._key, self._inner, view, reward, done, won, crashed = self._step_fn(self._key, self._inner, np.asarray(actions, np.int32))
        self._crashed = bool(crashed)
        return self._numpy(view), float(reward), bool(done), bool(won)

    def crashed(self) -> bool:
        return self._crashed
