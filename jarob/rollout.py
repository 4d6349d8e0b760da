"""Acting in E parallel environments: exploring collection and greedy evaluation.

The team is any team learner (`jarob.learners.base`): the rollout asks it for its policy view,
its exploring and its greedy actions. An adversary (`jarob.adversaries`) acts on its channel:
an observation adversary perturbs each environment's observations before the team acts (the
team's GRU and replay buffer see the perturbed observations, DESIGN.md section 8); an action
adversary changes the chosen actions before env.step (the team stores the actions played); a
training adversary chooses how the team samples its actions while it learns (in training mode,
exploring, only: never in an evaluation or on a frozen victim). `adversary=None` = clean play.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jarob.adversaries.base import ActionView, TeamView, TrainingView
from jarob.envs import EnvState, MarlEnv, TimeStep
from jarob.learners.actor_critic import log_policy
from jarob.ops import take
from jarob.sequence import from_steps


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
    action: jax.Array  # [E, N] the action played (the team's exploring choice, after an action adversary)
    greedy: jax.Array  # [E, N] the greedy action on what the team saw: its deterministic policy pi
    reward: jax.Array
    done: jax.Array
    won: jax.Array
    ep_return: jax.Array
    ep_length: jax.Array
    crashed: jax.Array  # [E] bool, the episode that ended here ended in a crash
    adv_out: dict  # what the adversary recorded at this step (a director's target actions)
    attacked: jax.Array  # [E] bool, the step's episode is attacked (training mode)


def init_actor(env: MarlEnv, learner, key: jax.Array, num_envs: int, adversary=None, clean_view: bool = False) -> ActorState:
    """E fresh environments; `clean_view` also tracks the team's GRU state on the clean observations."""
    env_state, ts = jax.vmap(env.reset)(jax.random.split(key, num_envs))
    hidden = learner.initial_hidden((num_envs, env.num_agents))
    last_action = jnp.full((num_envs, env.num_agents), -1, jnp.int32)
    carry = {} if adversary is None else adversary.initial_carry(num_envs)
    return ActorState(env_state, ts, hidden, last_action, jnp.ones((num_envs,), bool), carry, hidden if clean_view else None)


def _channel(adversary) -> str | None:
    return None if adversary is None else adversary.channel


def perceive(learner, team, actor: ActorState, last_action: jax.Array, adversary, adv_state, keys: jax.Array, train: bool):
    """(observations [E, N, O] the team sees at the current step, the adversary's new carry,
    what it records): an observation adversary's perturbation of each environment's clean
    observations (the clean ones for any other), with `keys` [E] the adversary's key of each
    environment. In training mode only the environments whose current episode is attacked are
    perturbed."""
    ts = actor.ts
    if _channel(adversary) != "observation":
        return ts.obs, actor.adv_carry, {}

    def one(obs, avail, state, hidden, last, first, carry, k):
        q_fn = lambda o: learner.policy(team, hidden, o, last, first)[1]  # noqa: E731
        return adversary.act(adv_state, carry, obs, TeamView(q_fn, avail, state, first), k, train)

    seen, carry, out = jax.vmap(one)(ts.obs, ts.avail, ts.state, actor.hidden, last_action, ts.first, actor.adv_carry, keys)
    if train:
        seen = jnp.where(actor.attacked[:, None, None], seen, ts.obs)
    return seen, carry, out


def _attacked_episodes(actor: ActorState, attack_prob: float, key: jax.Array) -> jax.Array:
    """Training mode: each new episode is attacked with probability `protocol.attack_prob`."""
    if attack_prob >= 1.0:
        return jnp.ones_like(actor.attacked)
    coin = jax.random.uniform(key, actor.attacked.shape) < attack_prob
    return jnp.where(actor.ts.first, coin, actor.attacked)


def intervene(learner, team, actor: ActorState, actions: jax.Array, scores: jax.Array, adversary, adv_state, keys: jax.Array, train: bool):
    """(actions [E, N] played, the adversary's new carry, what it records): an action adversary's
    change of the team's chosen actions (unchanged for any other), with `keys` [E] the
    adversary's key of each environment. In training mode only the environments whose current
    episode is attacked are changed."""
    if _channel(adversary) != "action":
        return actions, actor.adv_carry, {}
    ts = actor.ts

    def one(chosen, q, avail, state, first, carry, k):
        joint = learner.joint_value(team, take(q, chosen), state)
        value = None if joint is None else (lambda utilities: learner.joint_value(team, utilities, state))  # noqa: E731
        return adversary.act(adv_state, carry, chosen, ActionView(q, avail, state, first, value), k, train)

    played, carry, out = jax.vmap(one)(actions, scores, ts.avail, ts.state, ts.first, actor.adv_carry, keys)
    if train:
        played = jnp.where(actor.attacked[:, None], played, actions)
    return played.astype(jnp.int32), carry, out


def steer(learner, team, actor: ActorState, seen: jax.Array, last_action: jax.Array, actions: jax.Array, scores: jax.Array, adversary, adv_state, keys: jax.Array):
    """(actions [E, N] played, the adversary's new carry, what it records): a training
    adversary's change of how the learning team samples its actions (TRAM), with `keys` [E] the
    adversary's key of each environment; the team's context before the step is `actor.hidden`."""
    ts = actor.ts

    def one(chosen, q, avail, state, h, obs, last, first, carry, k):
        def log_pi(agent_params):
            return log_policy(learner.policy({**team, "agent": agent_params}, h, obs, last, first)[1], avail)

        view = TrainingView(q, avail, log_pi, team["agent"], learner.action_advantages(team, obs, state, q, avail), team.get("policy_grad"))
        return adversary.act(adv_state, carry, chosen, view, k, True)

    played, carry, out = jax.vmap(one)(actions, scores, ts.avail, ts.state, actor.hidden, seen, last_action, ts.first, actor.adv_carry, keys)
    return played.astype(jnp.int32), carry, out


@struct.dataclass
class Decision:
    """What the team, under an adversary, chose at the current step of E environments."""

    seen: jax.Array  # [E, N, O] the observations the team saw
    last_action: jax.Array  # [E, N] int32, the previous actions (-1 at an episode's first step)
    action: jax.Array  # [E, N] int32, the actions played (after an action adversary)
    greedy: jax.Array  # [E, N] int32, the greedy action on what the team saw
    hidden: jax.Array  # [E, N, H] the team's GRU state after this step
    clean_hidden: jax.Array | None  # [E, N, H] the same on the clean observations (None: not tracked)
    adv_carry: dict  # [E, ...] the adversary's new recurrent context
    adv_out: dict  # what the adversary recorded
    attacked: jax.Array  # [E] bool, the step's episode is attacked


def decide(learner, team, actor: ActorState, k_act, k_coin, adv_keys: jax.Array, eps, adversary=None, adv_state=None, train: bool = True, attack_prob: float = 1.0) -> Decision:
    """The actions of every environment at `actor.ts` under `adversary` (no env step): the team
    explores at level `eps` with `k_act` (None: greedy, no key needed), `train` selects the
    adversary's training mode, in which each new episode is attacked with probability
    `attack_prob` (coin `k_coin`; unused in test mode); `adv_keys` [E] are the adversary's keys.
    Shared by the JAX rollout (`act_step`) and the host driver (`jarob.host_driver`)."""
    ts = actor.ts
    last_action = jnp.where(ts.first[:, None], -1, actor.last_action)
    actor = actor.replace(attacked=_attacked_episodes(actor, attack_prob if train else 1.0, k_coin))
    seen, adv_carry, adv_out = perceive(learner, team, actor, last_action, adversary, adv_state, adv_keys, train)
    hidden, q = learner.policy(team, actor.hidden, seen, last_action, ts.first)
    # What the GRU would hold had the team seen the clean observations (the same actions played).
    clean_hidden = None if actor.clean_hidden is None else learner.policy(team, actor.clean_hidden, ts.obs, last_action, ts.first)[0]
    greedy = learner.greedy(q, ts.avail).astype(jnp.int32)
    actions = greedy if eps is None else learner.explore(k_act, q, ts.avail, eps).astype(jnp.int32)
    if _channel(adversary) == "action":
        actions, adv_carry, adv_out = intervene(learner, team, actor, actions, q, adversary, adv_state, adv_keys, train)
    if _channel(adversary) == "training" and train and eps is not None:  # only while the team learns
        actions, adv_carry, adv_out = steer(learner, team, actor, seen, last_action, actions, q, adversary, adv_state, adv_keys)
    return Decision(seen, last_action, actions, greedy, hidden, clean_hidden, adv_carry, adv_out, actor.attacked)


def act_step(env: MarlEnv, learner, team, actor: ActorState, key: jax.Array, eps, adversary=None, adv_state=None, train: bool = True, attack_prob: float = 1.0):
    """One step of every environment under `adversary`: the team explores at level `eps` (its
    learner's exploration; None: greedy), `train` selects the adversary's training mode, in which
    each episode is attacked with probability `attack_prob`."""
    k_act, k_env, k_adv, k_coin = jax.random.split(key, 4)
    ts = actor.ts
    num_envs = ts.first.shape[0]
    d = decide(learner, team, actor, k_act, k_coin, jax.random.split(k_adv, num_envs), eps, adversary, adv_state, train, attack_prob)
    env_keys = jax.random.split(k_env, num_envs)
    env_state, next_ts = jax.vmap(env.step)(env_keys, actor.env_state, d.action)
    record = StepRecord(
        obs=d.seen,
        clean_obs=ts.obs,
        avail=ts.avail,
        state=ts.state,
        last_action=d.last_action,
        first=ts.first,
        action=d.action,
        greedy=d.greedy,
        reward=next_ts.reward,
        done=next_ts.done,
        won=next_ts.won,
        ep_return=next_ts.ep_return,
        ep_length=next_ts.ep_length,
        crashed=next_ts.crashed,
        adv_out=d.adv_out,
        attacked=d.attacked,
    )
    return ActorState(env_state, next_ts, d.hidden, d.action, d.attacked, d.adv_carry, d.clean_hidden), record


def collect(env: MarlEnv, learner, team, actor: ActorState, key: jax.Array, eps: jax.Array, length: int, adversary=None, adv_state=None, attack_prob: float = 1.0):
    """Run `length` steps (training mode); return the new actor state, one Sequence per env
    ([E, ...], holding what the team saw), the per-step records [T, E] and the adversary's
    carry before the first step (a learned adversary builds its own sequences from these). An
    actor that tracks `clean_hidden` also stores the clean view in the Sequences."""
    hidden0, carry0, clean_hidden0 = actor.hidden, actor.adv_carry, actor.clean_hidden
    k_steps, k_final = jax.random.split(key)

    def body(a, k):
        return act_step(env, learner, team, a, k, eps, adversary, adv_state, True, attack_prob)

    actor, records = jax.lax.scan(body, actor, jax.random.split(k_steps, length))
    ts = actor.ts
    last_action = jnp.where(ts.first[:, None], -1, actor.last_action)
    final = {
        # The bootstrap view, perturbed as the team would see it with the current parameters.
        "obs": perceive(learner, team, actor, last_action, adversary, adv_state, jax.random.split(k_final, ts.first.shape[0]), True)[0],
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
    crashed: jax.Array  # [E] bool (false on envs without crashes)


def evaluate(env: MarlEnv, learner, team, key: jax.Array, num_episodes: int, adversary=None, adv_state=None) -> EpisodeStats:
    """Greedy team (under `adversary` in test mode), `num_episodes` fresh environments, each
    played to its first episode end; stops as soon as every environment has finished one."""
    k_init, k_run = jax.random.split(key)
    actor = init_actor(env, learner, k_init, num_episodes, adversary)
    keys = jax.random.split(k_run, env.max_steps + 1)
    zero_f = jnp.zeros((num_episodes,), jnp.float32)
    stats = EpisodeStats(jnp.zeros((num_episodes,), bool), zero_f, jnp.zeros((num_episodes,), jnp.int32), jnp.zeros((num_episodes,), bool))
    finished = jnp.zeros((num_episodes,), bool)

    def cond(carry):
        t, _, finished, _ = carry
        return (t < keys.shape[0]) & ~jnp.all(finished)

    def body(carry):
        t, a, finished, stats = carry
        a, rec = act_step(env, learner, team, a, keys[t], None, adversary, adv_state, False)
        new = rec.done & ~finished  # first episode end of these environments
        stats = EpisodeStats(
            jnp.where(new, rec.won, stats.won),
            jnp.where(new, rec.ep_return, stats.ret),
            jnp.where(new, rec.ep_length, stats.length),
            jnp.where(new, rec.crashed, stats.crashed),
        )
        return t + 1, a, finished | rec.done, stats

    _, _, _, stats = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), actor, finished, stats))
    return stats
