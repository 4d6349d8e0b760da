"""The host driver: a team, under any adversary, playing host envs stepped in Python.

`evaluate_host` plays `num_episodes` greedy episodes on E host envs (`jarob.envs.host`) and
returns the `EpisodeStats` of `rollout.evaluate`. Episode j is played by env j % E, in order.
At every step one jitted function decides the actions of the E envs with the rollout's own
decision code (`rollout.decide`: the team's policy, an observation adversary before it, an
action adversary after it, learned ones in test mode); the envs are then stepped in Python.
Two forms give identical episodes:

- mode="loop": a Python loop calls the jitted decision and steps the envs;
- mode="callback": the whole loop is one jitted `lax.while_loop` that steps the envs through
  `io_callback(ordered=True)`.

Keys follow `rollout.evaluate`'s: episode j's reset seed carries the reset key of its
environment j (`envs.host.seed_of_key`), and the adversary's key at its step t is the one of
environment j at step t. So the episodes depend on (key, num_episodes), not on E, and a
deterministic JAX env wrapped by `JaxEnvOnHost` plays exactly the native env's episodes.
"""

from __future__ import annotations

import itertools
from functools import partial
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.experimental import io_callback

from jarob.envs.core import TimeStep
from jarob.envs.host import HostEnv, seed_of_key
from jarob.rollout import ActorState, EpisodeStats, decide

MODES = ("loop", "callback")
_SPACES = ("num_agents", "obs_dim", "num_actions", "state_dim", "max_steps")


class HostEnvError(ValueError):
    """A host env broke the API (`jarob.envs.host`); the message is one line."""


@struct.dataclass
class HostView:
    """What the E host envs show the team at the current step."""

    obs: jax.Array  # [E, N, O] float32
    avail: jax.Array  # [E, N, A] bool
    state: jax.Array  # [E, S] float32
    first: jax.Array  # [E] bool, the step starts an episode
    episode: jax.Array  # [E] int32, the episode each env plays (its index among num_episodes)
    t: jax.Array  # [E] int32, the step within that episode
    active: jax.Array  # [E] bool, the env still has an episode to play


@struct.dataclass
class Carry:
    """The team's and the adversary's recurrent context in the E envs."""

    hidden: jax.Array  # [E, N, H]
    last_action: jax.Array  # [E, N] int32
    adv_carry: dict  # [E, ...]


class Episodes:
    """The host side: E host envs playing `len(seeds)` episodes (episode j on env j % E, reset
    with seeds[j]), and the statistics of the episodes that ended."""

    def __init__(self, envs: Sequence[HostEnv], seeds: Sequence[int], step_limit: int):
        self.envs, self.seeds, self.step_limit = list(envs), list(seeds), step_limit
        e, n, env = len(self.envs), len(self.seeds), self.envs[0]
        self.view = HostView(
            obs=np.zeros((e, env.num_agents, env.obs_dim), np.float32),
            avail=np.ones((e, env.num_agents, env.num_actions), bool),  # rows without an episode: all available
            state=np.zeros((e, env.state_dim), np.float32),
            first=np.ones((e,), bool),
            episode=np.arange(e, dtype=np.int32),
            t=np.zeros((e,), np.int32),
            active=np.arange(e) < n,
        )
        self.ret = np.zeros((e,), np.float32)
        self.stats = EpisodeStats(np.zeros((n,), bool), np.zeros((n,), np.float32), np.zeros((n,), np.int32), np.zeros((n,), bool))
        self.error: str | None = None
        for i in np.flatnonzero(self.view.active):
            self._show(i, self.envs[i].reset(self.seeds[i]), first=True)

    def _show(self, i: int, view: dict, first: bool) -> None:
        v, env = self.view, self.envs[i]
        for field in ("obs", "avail", "state"):
            x = np.asarray(view[field])
            if x.shape != getattr(v, field).shape[1:]:
                raise HostEnvError(f"host env {env.name}: {field} has shape {x.shape}, expected {getattr(v, field).shape[1:]}")
            getattr(v, field)[i] = x
        v.first[i] = first

    def advance(self, actions: np.ndarray) -> HostView:
        """Step every env that has an episode with its actions [E, N]; an env whose episode ended
        records it and starts its next one. Returns the new view."""
        v = self.view
        for i in np.flatnonzero(v.active):
            env = self.envs[i]
            view, reward, done, won = env.step(actions[i])
            self.ret[i] = np.float32(self.ret[i] + np.float32(reward))  # float32 sums, as the JAX envs keep them
            v.t[i] += 1
            if done:
                j = v.episode[i]
                self.stats.won[j], self.stats.ret[j], self.stats.length[j] = bool(won), self.ret[i], v.t[i]
                self.stats.crashed[j] = bool(env.crashed())
                self.ret[i], v.t[i] = 0.0, 0
                v.episode[i] += len(self.envs)
                v.active[i] = v.episode[i] < len(self.seeds)
                if v.active[i]:
                    view = env.reset(self.seeds[v.episode[i]])
            elif v.t[i] >= self.step_limit:
                raise HostEnvError(f"host env {env.name}: an episode ran {v.t[i]} steps without done (max_steps={env.max_steps})")
            if v.active[i]:
                self._show(i, view, first=bool(done))
        return self.snapshot()

    def snapshot(self) -> HostView:
        """A copy of the current view (the host side keeps updating its own in place)."""
        return jax.tree.map(np.copy, self.view)

    def advance_or_stop(self, actions: np.ndarray) -> HostView:
        """`advance`, for a callback: an error stops every env and is kept for the caller."""
        try:
            return self.advance(np.asarray(actions))
        except Exception as exc:  # noqa: BLE001 - re-raised by evaluate_host after the program
            self.error = self.error or exc
            self.view.active[:] = False
            return self.snapshot()


def _decision(learner, adversary, num_episodes: int, team, adv_state, step_keys: jax.Array, carry: Carry, view: HostView):
    """(actions [E, N], new carry): the rollout's greedy decision (`rollout.decide`, test mode) at
    the current step of each env, with the adversary's key of episode j at step t being the one
    `rollout.evaluate` gives environment j at step t. A new episode starts from fresh contexts."""
    e = view.first.shape[0]
    first = view.first
    fresh_hidden = learner.initial_hidden(carry.hidden.shape[:2])
    fresh_adv = {} if adversary is None else adversary.initial_carry(e)
    at_first = lambda fresh, old: jnp.where(first.reshape((e,) + (1,) * (old.ndim - 1)), fresh, old)  # noqa: E731
    hidden = at_first(fresh_hidden, carry.hidden)
    adv_carry = jax.tree.map(at_first, fresh_adv, carry.adv_carry)
    zero_f, zero_b = jnp.zeros((e,), jnp.float32), jnp.zeros((e,), bool)
    ts = TimeStep(view.obs, view.avail, view.state, zero_f, zero_b, first, zero_b, zero_f, jnp.zeros((e,), jnp.int32), zero_b)
    actor = ActorState(None, ts, hidden, carry.last_action, jnp.ones((e,), bool), adv_carry)
    # rollout.act_step: k_act, k_env, k_adv, k_coin = split(keys[t], 4); env j's k_adv = split(k_adv, E)[j].
    k_adv = jax.vmap(lambda t: jax.random.split(step_keys[t], 4)[2])(view.t)
    adv_keys = jax.vmap(lambda k, j: jax.random.split(k, num_episodes)[j])(k_adv, view.episode)
    d = decide(learner, team, actor, None, None, adv_keys, None, adversary, adv_state, train=False)
    return d.action, Carry(d.hidden, d.action, d.adv_carry)


_decide_step = jax.jit(_decision, static_argnames=("learner", "adversary", "num_episodes"))

# Episodes objects of the running callback programs, by handle (a program is compiled once and
# reused with other envs).
_LIVE: dict[int, Episodes] = {}
_HANDLES = itertools.count()


def _advance(handle, actions) -> HostView:
    return _LIVE[int(handle)].advance_or_stop(actions)


@partial(jax.jit, static_argnames=("learner", "adversary", "num_episodes"))
def _play(learner, adversary, num_episodes: int, team, adv_state, step_keys: jax.Array, handle: jax.Array, carry: Carry, view: HostView) -> HostView:
    """Every episode in one program: decide, then step the host envs through an ordered callback."""
    shapes = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), view)

    def body(c):
        carry, view = c
        actions, carry = _decision(learner, adversary, num_episodes, team, adv_state, step_keys, carry, view)
        return carry, io_callback(_advance, shapes, handle, actions, ordered=True)

    return jax.lax.while_loop(lambda c: jnp.any(c[1].active), body, (carry, view))[1]


def check_envs(envs: Sequence[HostEnv]) -> None:
    """One-line errors unless `envs` are host envs with the same spaces."""
    if len(envs) == 0:
        raise ValueError("envs: give at least one host env")
    for env in envs:
        if not isinstance(env, HostEnv):
            raise TypeError(f"envs: {type(env).__name__} is not a HostEnv (jarob.envs.host)")
        differ = [a for a in _SPACES if getattr(env, a) != getattr(envs[0], a)]
        if differ:
            raise ValueError(f"envs: {env.name} and {envs[0].name} differ in {', '.join(differ)}")


def evaluate_host(envs: Sequence[HostEnv], learner, team, key: jax.Array, num_episodes: int, adversary=None, adv_state=None, mode: str = "loop") -> EpisodeStats:
    """The greedy team (under `adversary` in test mode) for `num_episodes` episodes on the host
    envs `envs` (E = len(envs) in parallel): won, return and length of each episode, as
    `rollout.evaluate` gives them for the same key."""
    if mode not in MODES:
        raise ValueError(f"mode: must be one of {', '.join(MODES)}; got {mode!r}")
    if num_episodes <= 0:
        raise ValueError(f"num_episodes: must be > 0, got {num_episodes}")
    check_envs(envs)
    env = envs[0]
    k_init, k_run = jax.random.split(key)
    seeds = [seed_of_key(k) for k in np.asarray(jax.random.split(k_init, num_episodes))]
    step_keys = jax.random.split(k_run, env.max_steps + 1)
    episodes = Episodes(envs, seeds, step_keys.shape[0])
    e = len(envs)
    carry = Carry(
        learner.initial_hidden((e, env.num_agents)),
        jnp.full((e, env.num_agents), -1, jnp.int32),
        {} if adversary is None else adversary.initial_carry(e),
    )
    if mode == "loop":
        while episodes.view.active.any():
            actions, carry = _decide_step(learner, adversary, num_episodes, team, adv_state, step_keys, carry, episodes.snapshot())
            episodes.advance(np.asarray(actions))
    else:
        handle = next(_HANDLES)
        _LIVE[handle] = episodes
        try:
            jax.block_until_ready(_play(learner, adversary, num_episodes, team, adv_state, step_keys, jnp.int32(handle), carry, episodes.snapshot()))
        finally:
            del _LIVE[handle]
        if episodes.error is not None:
            raise episodes.error
    return jax.tree.map(jnp.asarray, episodes.stats)
