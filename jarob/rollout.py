"""Acting in E parallel environments: epsilon-greedy collection and greedy evaluation.

An observation adversary (`jarob.adversaries`) sits between the environment and the team: it
perturbs each environment's observations before the team acts, and the team's GRU and replay
buffer see the perturbed observations (DESIGN.md section 8). `adversary=None` = clean.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jarob.adversaries.base import TeamView
from jarob.envs import EnvState, MarlEnv, TimeStep
from jarob.ops import epsilon_greedy, masked_argmax
from jarob.sequence import Sequence, from_steps


@struct.dataclass
class ActorState:
    """Where E parallel environments stand, with the team's recurrent context."""

    env_state: EnvState  # [E]
    ts: TimeStep  # [E], the current view (obs, avail, state, first)
    hidden: jax.Array  # [E, N, H], GRU state before the reset at ts.first
    last_action: jax.Array  # [E, N] int32, -1 before an episode's first action
    attacked: jax.Array  # [E] bool, the current episode is attacked (training mode, see perceive)
    adv_carry: dict  # [E, ...] the adversary's recurrent context ({} for static adversaries)
    clean_hidden: jax.Array | None = None  # [E, N, H], the GRU state on the clean observations (tracked only for the team's clean view)


@struct.dataclass
class StepRecord:
    obs: jax.Array  # [E, N, O] what the team saw
    clean_obs: jax.Array  # [E, N, O] what the environment emitted
    avail: jax.Array
    state: jax.Array
    last_action: jax.Array
    first: jax.Array
    action: jax.Array  # [E, N] the epsilon-greedy action played
    greedy: jax.Array  # [E, N] the greedy action on what the team saw: its deterministic policy pi
    reward: jax.Array
    done: jax.Array
    won: jax.Array
    ep_return: jax.Array
    ep_length: jax.Array
    adv_out: dict  # what the adversary recorded at this step (a director's target actions)
    attacked: jax.Array  # [E] bool, the step's episode is attacked (training mode)


def init_actor(env: MarlEnv, learner, key: jax.Array, num_envs: int, adversary=None, clean_view: bool = False) -> ActorState:
    """E fresh environments; `clean_view` also tracks the team's GRU state on the clean observations."""
    env_state, ts = jax.vmap(env.reset)(jax.random.split(key, num_envs))
    hidden = learner.initial_hidden((num_envs, env.num_agents))
    last_action = jnp.full((num_envs, env.num_agents), -1, jnp.int32)
    carry = {} if adversary is None else adversary.initial_carry(num_envs)
    return ActorState(env_state, ts, hidden, last_action, jnp.ones((num_envs,), bool), carry, hidden if clean_view else None)


def perceive(learner, agent_params, actor: ActorState, last_action: jax.Array, adversary, adv_state, key: jax.Array, train: bool):
    """(observations [E, N, O] the team sees at the current step, the adversary's new carry,
    what it records): the adversary's perturbation of each environment's clean observations
    (the clean ones without adversary). In training mode only the environments whose current
    episode is attacked are perturbed."""
    ts = actor.ts
    if adversary is None:
        return ts.obs, actor.adv_carry, {}

    def one(obs, avail, state, hidden, last, first, carry, k):
        q_fn = lambda o: learner.step_q(agent_params, hidden, o, last, first)[1]  # noqa: E731
        return adversary.act(adv_state, carry, obs, TeamView(q_fn, avail, state, first), k, train)

    keys = jax.random.split(key, ts.obs.shape[0])
    seen, carry, out = jax.vmap(one)(ts.obs, ts.avail, ts.state, actor.hidden, last_action, ts.first, actor.adv_carry, keys)
    if train:
        seen = jnp.where(actor.attacked[:, None, None], seen, ts.obs)
    return seen, carry, out


def _attacked_episodes(actor: ActorState, adversary, key: jax.Array) -> jax.Array:
    """Training mode: each new episode is attacked with probability `adv.attack_prob`."""
    prob = 1.0 if adversary is None else adversary.cfg.attack_prob
    if prob >= 1.0:
        return jnp.ones_like(actor.attacked)
    coin = jax.random.uniform(key, actor.attacked.shape) < prob
    return jnp.where(actor.ts.first, coin, actor.attacked)


def act_step(env: MarlEnv, learner, agent_params, actor: ActorState, key: jax.Array, eps: jax.Array, adversary=None, adv_state=None, train: bool = True):
    """One epsilon-greedy step of every environment (eps = 0: greedy), under `adversary`."""
    k_act, k_env, k_adv, k_coin = jax.random.split(key, 4)
    ts = actor.ts
    last_action = jnp.where(ts.first[:, None], -1, actor.last_action)
    actor = actor.replace(attacked=_attacked_episodes(actor, adversary, k_coin))
    seen, adv_carry, adv_out = perceive(learner, agent_params, actor, last_action, adversary, adv_state, k_adv, train)
    hidden, q = learner.step_q(agent_params, actor.hidden, seen, last_action, ts.first)
    # What the GRU would hold had the team seen the clean observations (the same actions played).
    clean_hidden = None if actor.clean_hidden is None else learner.step_q(agent_params, actor.clean_hidden, ts.obs, last_action, ts.first)[0]
    actions = epsilon_greedy(k_act, q, ts.avail, eps).astype(jnp.int32)
    env_keys = jax.random.split(k_env, actions.shape[0])
    env_state, next_ts = jax.vmap(env.step)(env_keys, actor.env_state, actions)
    record = StepRecord(
        obs=seen,
        clean_obs=ts.obs,
        avail=ts.avail,
        state=ts.state,
        last_action=last_action,
        first=ts.first,
        action=actions,
        greedy=masked_argmax(q, ts.avail).astype(jnp.int32),
        reward=next_ts.reward,
        done=next_ts.done,
        won=next_ts.won,
        ep_return=next_ts.ep_return,
        ep_length=next_ts.ep_length,
        adv_out=adv_out,
        attacked=actor.attacked,
    )
    return ActorState(env_state, next_ts, hidden, actions, actor.attacked, adv_carry, clean_hidden), record


def collect(env: MarlEnv, learner, agent_params, actor: ActorState, key: jax.Array, eps: jax.Array, length: int, adversary=None, adv_state=None):
    """Run `length` steps (training mode); return the new actor state, one Sequence per env
    ([E, ...], holding what the team saw), the per-step records [T, E] and the adversary's
    carry before the first step (a learned adversary builds its own sequences from these). An
    actor that tracks `clean_hidden` also stores the clean view in the Sequences."""
    hidden0, carry0, clean_hidden0 = actor.hidden, actor.adv_carry, actor.clean_hidden
    k_steps, k_final = jax.random.split(key)

    def body(a, k):
        return act_step(env, learner, agent_params, a, k, eps, adversary, adv_state, True)

    actor, records = jax.lax.scan(body, actor, jax.random.split(k_steps, length))
    ts = actor.ts
    last_action = jnp.where(ts.first[:, None], -1, actor.last_action)
    final = {
        # The bootstrap view, perturbed as the team would see it with the current parameters.
        "obs": perceive(learner, agent_params, actor, last_action, adversary, adv_state, k_final, True)[0],
        "avail": ts.avail,
        "state": ts.state,
        "first": ts.first,
        "last_action": last_action,
        "clean_obs": ts.obs,
    }
    return actor, from_steps(records, final, hidden0, clean_hidden0), records, carry0


@struct.dataclass
class EpisodeStats:
    won: jax.Array  # [E] bool
    ret: jax.Array  # [E]
    length: jax.Array  # [E]


def evaluate(env: MarlEnv, learner, agent_params, key: jax.Array, num_episodes: int, adversary=None, adv_state=None) -> EpisodeStats:
    """Greedy team (under `adversary` in test mode), `num_episodes` fresh environments, each
    played to its first episode end; stops as soon as every environment has finished one."""
    k_init, k_run = jax.random.split(key)
    actor = init_actor(env, learner, k_init, num_episodes, adversary)
    keys = jax.random.split(k_run, env.max_steps + 1)
    zero_f = jnp.zeros((num_episodes,), jnp.float32)
    stats = EpisodeStats(jnp.zeros((num_episodes,), bool), zero_f, jnp.zeros((num_episodes,), jnp.int32))
    finished = jnp.zeros((num_episodes,), bool)

    def cond(carry):
        t, _, finished, _ = carry
        return (t < keys.shape[0]) & ~jnp.all(finished)

    def body(carry):
        t, a, finished, stats = carry
        a, rec = act_step(env, learner, agent_params, a, keys[t], jnp.zeros(()), adversary, adv_state, False)
        new = rec.done & ~finished  # first episode end of these environments
        stats = EpisodeStats(
            jnp.where(new, rec.won, stats.won),
            jnp.where(new, rec.ep_return, stats.ret),
            jnp.where(new, rec.ep_length, stats.length),
        )
        return t + 1, a, finished | rec.done, stats

    _, _, _, stats = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), actor, finished, stats))
    return stats
