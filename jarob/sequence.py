"""The stored unit of experience: one environment's T consecutive steps with their context."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Sequence:
    """T transitions of one environment (batch-major when sampled: a leading B axis).

    Per-step views have T+1 entries (the view after the last step is kept for bootstrapping);
    per-transition fields have T. `first[t]` marks obs[t] as an episode's first observation,
    so first[t + 1] == done[t]. `hidden` is the agent's GRU state before step 0 (the reset at
    first[0] is applied when unrolling, exactly as when acting).
    """

    obs: jax.Array  # [T+1, N, O] what the team saw
    avail: jax.Array  # [T+1, N, A] bool
    state: jax.Array  # [T+1, S]
    last_action: jax.Array  # [T+1, N] int32, previous action (-1 at an episode's start)
    first: jax.Array  # [T+1] bool
    action: jax.Array  # [T, N] int32
    reward: jax.Array  # [T] team reward
    done: jax.Array  # [T] bool, step t ended its episode
    hidden: jax.Array  # [N, H]
    # The clean view, kept only when the team also learns from it (`protocol.clean_td`,
    # `protocol.consistency`): what the environment emitted, and the team's GRU state before step 0 had
    # it seen that all along. None otherwise (no leaves: old buffers and checkpoints keep their layout).
    clean_obs: jax.Array | None = None  # [T+1, N, O]
    clean_hidden: jax.Array | None = None  # [N, H]

    def time_major(self) -> "Sequence":
        """Swap the batch and time axes of a sampled batch ([B, T, ...] -> [T, B, ...])."""
        swap = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731
        fields = ("obs", "avail", "state", "last_action", "first", "action", "reward", "done") + (() if self.clean_obs is None else ("clean_obs",))
        return self.replace(**{k: swap(getattr(self, k)) for k in fields})

    def clean_view(self) -> "Sequence":
        """The same transitions as the environment emitted them, unrolled from the clean context."""
        return self.replace(obs=self.clean_obs, hidden=self.clean_hidden, clean_obs=None, clean_hidden=None)


def zeros(length: int, num_agents: int, obs_dim: int, num_actions: int, state_dim: int, hidden, clean: bool = False) -> Sequence:
    """An all-zero Sequence of `length` transitions (a replay buffer's example item); `hidden`
    is the learner's initial recurrent state for one environment; `clean` keeps the clean view."""
    t, n = length, num_agents
    return Sequence(
        obs=jnp.zeros((t + 1, n, obs_dim)),
        avail=jnp.zeros((t + 1, n, num_actions), bool),
        state=jnp.zeros((t + 1, state_dim)),
        last_action=jnp.zeros((t + 1, n), jnp.int32),
        first=jnp.zeros((t + 1,), bool),
        action=jnp.zeros((t, n), jnp.int32),
        reward=jnp.zeros((t,)),
        done=jnp.zeros((t,), bool),
        hidden=hidden,
        clean_obs=jnp.zeros((t + 1, n, obs_dim)) if clean else None,
        clean_hidden=hidden if clean else None,
    )


def from_steps(steps, final, hidden, clean_hidden=None) -> "Sequence":
    """Assemble Sequences from a time-major scan of per-step records.

    `steps` holds per-step fields [T, E, ...] (obs, avail, state, last_action, first, action,
    reward, done), `final` a mapping of the view after the last step (obs, avail, state,
    last_action, first; each [E, ...]), `hidden` [E, N, H]. With `clean_hidden` [E, N, H] the
    clean view is kept too (steps.clean_obs and final["clean_obs"]). Returns a batch-major
    Sequence with leading axis E.
    """
    def views(name):
        seq = jnp.concatenate([getattr(steps, name), final[name][None]], axis=0)
        return jnp.swapaxes(seq, 0, 1)

    batch_major = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731
    return Sequence(
        obs=views("obs"),
        avail=views("avail"),
        state=views("state"),
        last_action=views("last_action"),
        first=views("first"),
        action=batch_major(steps.action),
        reward=batch_major(steps.reward),
        done=batch_major(steps.done),
        hidden=hidden,
        clean_obs=None if clean_hidden is None else views("clean_obs"),
        clean_hidden=clean_hidden,
    )



