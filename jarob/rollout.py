"""Acting in E parallel environments: epsilon-greedy collection and greedy evaluation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jarob.envs import EnvState, MarlEnv, TimeStep
from jarob.ops import epsilon_greedy
from jarob.sequence import Sequence, from_steps


@struct.dataclass
class ActorState:
    """Where E parallel environments stand, with the team's recurrent context."""

    env_state: EnvState  # [E]
    ts: TimeStep  # [E], the current view (obs, avail, state, first)
    hidden: jax.Array  # [E, N, H], GRU state before the reset at ts.first
    last_action: jax.Array  # [E, N] int32, -1 before an episode's first action


@struct.dataclass
class StepRecord:
    obs: jax.Array
    avail: jax.Array
    state: jax.Array
    last_action: jax.Array
    first: jax.Array
    action: jax.Array
    reward: jax.Array
    done: jax.Array
    won: jax.Array
    ep_return: jax.Array
    ep_length: jax.Array


def init_actor(env: MarlEnv, learner, key: jax.Array, num_envs: int) -> ActorState:
    env_state, ts = jax.vmap(env.reset)(jax.random.split(key, num_envs))
    hidden = learner.initial_hidden((num_envs, env.num_agents))
    last_action = jnp.full((num_envs, env.num_agents), -1, jnp.int32)
    return ActorState(env_state, ts, hidden, last_action)


def act_step(env: MarlEnv, learner, agent_params, actor: ActorState, key: jax.Array, eps: jax.Array):
    """One epsilon-greedy step of every environment (eps = 0: greedy)."""
    k_act, k_env = jax.random.split(key)
    ts = actor.ts
    last_action = jnp.where(ts.first[:, None], -1, actor.last_action)
    hidden, q = learner.step_q(agent_params, actor.hidden, ts.obs, last_action, ts.first)
    actions = epsilon_greedy(k_act, q, ts.avail, eps).astype(jnp.int32)
    env_keys = jax.random.split(k_env, actions.shape[0])
    env_state, next_ts = jax.vmap(env.step)(env_keys, actor.env_state, actions)
    record = StepRecord(
        obs=ts.obs,
        avail=ts.avail,
        state=ts.state,
        last_action=last_action,
        first=ts.first,
        action=actions,
        reward=next_ts.reward,
        done=next_ts.done,
        won=next_ts.won,
        ep_return=next_ts.ep_return,
        ep_length=next_ts.ep_length,
    )
    return ActorState(env_state, next_ts, hidden, actions), record


def collect(env: MarlEnv, learner, agent_params, actor: ActorState, key: jax.Array, eps: jax.Array, length: int):
    """Run `length` steps; return the new actor state, one Sequence per env ([E, ...]) and the
    per-step records [T, E] (for episode statistics)."""
    hidden0 = actor.hidden

    def body(a, k):
        return act_step(env, learner, agent_params, a, k, eps)

    actor, records = jax.lax.scan(body, actor, jax.random.split(key, length))
    ts = actor.ts
    final = {
        "obs": ts.obs,
        "avail": ts.avail,
        "state": ts.state,
        "first": ts.first,
        "last_action": jnp.where(ts.first[:, None], -1, actor.last_action),
    }
    return actor, from_steps(records, final, hidden0), records


@struct.dataclass
class EpisodeStats:
    won: jax.Array  # [E] bool
    ret: jax.Array  # [E]
    length: jax.Array  # [E]


def evaluate(env: MarlEnv, learner, agent_params, key: jax.Array, num_episodes: int) -> EpisodeStats:
    """Greedy team, `num_episodes` fresh environments, each played to its first episode end."""
    k_init, k_run = jax.random.split(key)
    actor = init_actor(env, learner, k_init, num_episodes)

    def body(a, k):
        a, rec = act_step(env, learner, agent_params, a, k, jnp.zeros(()))
        return a, (rec.done, rec.won, rec.ep_return, rec.ep_length)

    _, (done, won, ret, length) = jax.lax.scan(body, actor, jax.random.split(k_run, env.max_steps + 1))
    idx = jnp.argmax(done, axis=0)  # first episode end of each env
    pick = lambda x: jnp.take_along_axis(x, idx[None], axis=0)[0]  # noqa: E731
    return EpisodeStats(pick(won), pick(ret), pick(length))
