"""The array API every jarob environment presents to learners and adversaries.

An environment is a pair of pure functions over pytrees of arrays:

    reset(key)                    -> (env_state, TimeStep)
    step(key, env_state, actions) -> (env_state, TimeStep)

`actions` is an int array [N]. `step` auto-resets: when `TimeStep.done` is true, `reward`,
`won`, `ep_return` and `ep_length` describe the episode that just ended while `obs`, `avail`
and `state` are already the first ones of the next episode (`first` is then true).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


@struct.dataclass
class TimeStep:
    """What the team sees after a reset or a step (one environment, N agents)."""

    obs: jax.Array  # [N, O] float32, each agent's observation
    avail: jax.Array  # [N, A] bool, available actions
    state: jax.Array  # [S] float32, normalised world state (never perturbed)
    reward: jax.Array  # [] float32, team reward of the step
    done: jax.Array  # [] bool, the step ended an episode (terminal or time limit)
    first: jax.Array  # [] bool, obs is the first of an episode
    won: jax.Array  # [] bool, the episode that just ended was won (valid when done)
    ep_return: jax.Array  # [] float32, return of the episode that just ended (valid when done)
    ep_length: jax.Array  # [] int32, length of the episode that just ended (valid when done)
    crashed: jax.Array  # [] bool, the episode that just ended ended in a crash (valid when done; envs with has_crash)


@dataclass(frozen=True)
class PerturbationSpec:
    """Which observation features an attacker may change, and the valid range of each.

    Attacks project onto B_eps(o) intersected with [low, high] on the features where
    `mask` is true and leave every other feature untouched (DESIGN.md section 3).
    """

    mask: np.ndarray  # [O] bool
    low: np.ndarray  # [O] float32
    high: np.ndarray  # [O] float32

    def __post_init__(self):
        if not (self.mask.shape == self.low.shape == self.high.shape):
            raise ValueError("PerturbationSpec fields must share one shape")
        if np.any(self.low > self.high):
            raise ValueError("PerturbationSpec: low must not exceed high")

    def project(self, clean: jax.Array, perturbed: jax.Array, eps: float) -> jax.Array:
        """Project `perturbed` onto B_eps(clean) ∩ [low, high] on perturbable features."""
        lo = jnp.maximum(clean - eps, self.low)
        hi = jnp.minimum(clean + eps, self.high)
        proj = jnp.clip(perturbed, lo, hi)
        return jnp.where(self.mask, proj, clean)

    def random_point(self, key: jax.Array, clean: jax.Array, eps) -> jax.Array:
        """A uniform point of B_eps(clean) ∩ [low, high] on perturbable features."""
        noise = jax.random.uniform(key, clean.shape, clean.dtype, -1.0, 1.0) * eps
        return self.project(clean, clean + noise, eps)


@struct.dataclass
class EnvState:
    """A wrapped environment's state: the simulator's state plus running episode statistics."""

    inner: Any
    ep_return: jax.Array
    ep_length: jax.Array


class EnvSpaces:
    """What every environment declares, JAX-native (`MarlEnv`) or stepped on the host
    (`jarob.envs.host.HostEnv`): its sizes, whether episodes are won, and what an attacker may
    perturb within which default budget."""

    name: str
    num_agents: int
    obs_dim: int
    num_actions: int
    state_dim: int
    max_steps: int
    has_win: bool
    has_crash: bool = False  # episodes can end in a crash (TimeStep.crashed; the evaluator reports a crash rate)
    perturbation: PerturbationSpec
    default_eps: float

    def mirror_spaces(self, other: "EnvSpaces") -> None:
        """Declare everything `other` declares but its name (a wrapper or bridge of that env)."""
        for attr in EnvSpaces.__annotations__:
            if attr != "name":
                setattr(self, attr, getattr(other, attr))


class MarlEnv(EnvSpaces):
    """Base class of jarob environments. Subclasses implement `_reset`, `_step` and `_view`.

    `_reset(key) -> inner_state`; `_step(key, inner_state, actions) -> (inner_state, reward,
    done, won)`; `_view(inner_state) -> (obs [N, O], avail [N, A], state [S])`; an env with
    `has_crash` also implements `_crashed(inner_state) -> bool` (read after a step that ends an episode).
    """

    # -- subclass hooks --------------------------------------------------------------
    def _reset(self, key):
        raise NotImplementedError

    def _step(self, key, inner, actions):
        raise NotImplementedError

    def _view(self, inner):
        raise NotImplementedError

    def _crashed(self, inner):
        return jnp.zeros((), bool)

    # -- public API ------------------------------------------------------------------
    def reset(self, key: jax.Array) -> tuple[EnvState, TimeStep]:
        inner = self._reset(key)
        obs, avail, state = self._view(inner)
        zero = jnp.zeros((), jnp.float32)
        ts = TimeStep(
            obs=obs,
            avail=avail,
            state=state,
            reward=zero,
            done=jnp.zeros((), bool),
            first=jnp.ones((), bool),
            won=jnp.zeros((), bool),
            ep_return=zero,
            ep_length=jnp.zeros((), jnp.int32),
            crashed=jnp.zeros((), bool),
        )
        return EnvState(inner, zero, jnp.zeros((), jnp.int32)), ts

    def step(self, key: jax.Array, env_state: EnvState, actions: jax.Array):
        key_step, key_reset = jax.random.split(key)
        inner, reward, done, won = self._step(key_step, env_state.inner, actions)
        reward = reward.astype(jnp.float32)
        ep_return = env_state.ep_return + reward
        ep_length = env_state.ep_length + 1
        crashed = self._crashed(inner) & done
        reset_inner = self._reset(key_reset)
        inner = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_inner, inner)
        obs, avail, state = self._view(inner)
        ts = TimeStep(
            obs=obs,
            avail=avail,
            state=state,
            reward=reward,
            done=done,
            first=done,
            won=won & done,
            ep_return=ep_return,
            ep_length=ep_length,
            crashed=crashed,
        )
        new_state = EnvState(
            inner,
            jnp.where(done, 0.0, ep_return),
            jnp.where(done, 0, ep_length),
        )
        return new_state, ts
