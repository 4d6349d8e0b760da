"""The pure training program: `make_train(cfg)` returns `train(key) -> (state, metrics, final)`.

One iteration = every parallel env steps `rollout_len` times (exploring), the team learner
learns from the rollout (`learn`: a Q-learner stores it in its replay buffer and takes
`updates_per_rollout` gradient steps); a learned adversary then stores
the same rollout from its side and takes its own gradient steps (ATSA Algorithm 1: both in the
same jitted step). A chunk = a fixed number of iterations followed by a greedy evaluation; the
host driver (`jarob.train`) runs chunks one after another, jitted and vmapped over seeds, and
logs and checkpoints between them.

Attack mode (`train_team=False`, `python -m jarob.attack`): the team is a frozen, greedy victim
and only the adversary learns; evaluations then measure the team under the adversary.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jarob import adversaries
from jarob import envs
from jarob import learners
from jarob.config import TrainConfig
from jarob.learners.base import METRICS
from jarob.ops import linear_schedule
from jarob.rollout import ActorState, EpisodeStats, collect, evaluate, init_actor


@struct.dataclass
class TrainState:
    learner: Any  # the team learner's state (its memory included: a replay buffer, unless in attack mode)
    actor: ActorState
    adversary: dict  # the training adversary's state (its budget; its parameters when learned)
    key: jax.Array
    env_steps: jax.Array  # [] int32, env steps taken by this seed


@struct.dataclass
class ChunkMetrics:
    env_steps: jax.Array
    epsilon: jax.Array
    loss: jax.Array
    q_tot: jax.Array
    grad_norm: jax.Array
    dropped_updates: jax.Array  # team gradient steps dropped as non-finite (`keep_if_finite`)
    adv_loss: jax.Array  # a learned adversary's TD loss (0 otherwise)
    adv_dropped_updates: jax.Array  # the learned adversary's gradient steps dropped as non-finite
    reg_loss: jax.Array  # the team's regularizer R, before its weight (without one: the clean-view consistency D when configured, else 0)
    train_episodes: jax.Array
    train_return: jax.Array
    train_win_rate: jax.Array
    train_crash_rate: jax.Array  # share of the chunk's training episodes that ended in a crash (0 on envs without)
    eval_return: jax.Array
    eval_win_rate: jax.Array
    eval_length: jax.Array
    eval_crash_rate: jax.Array
    adv_stats: dict  # the training adversary's per-chunk statistics (`Adversary.stat_names`; {} for most)


_SUMS = ("loss", "q_tot", "grad_norm", "dropped_updates", "adv_loss", "adv_dropped_updates", "reg_loss", "team_turns", "adv_turns", "episodes", "wins", "crashes", "return")


def seed_keys(base_seed: int, seeds: int) -> jax.Array:
    """Key of seed i = fold_in(PRNGKey(base_seed), i): a seed's run does not depend on `seeds`."""
    base = jax.random.PRNGKey(base_seed)
    return jnp.stack([jax.random.fold_in(base, i) for i in range(seeds)])


def attacker_keys(base_seed: int, seeds: int, attackers: int) -> jax.Array:
    """Keys of `attackers` attackers of each of `seeds` victim seeds, attacker k of seed s at
    index s * attackers + k with the key seed s has in a run whose base seed is base_seed + k:
    an attack run with attackers=K is K runs with seeds base_seed, ..., base_seed + K - 1."""
    keys = jnp.stack([seed_keys(base_seed + k, seeds) for k in range(attackers)], axis=1)  # [seeds, K, 2]
    return keys.reshape((seeds * attackers,) + keys.shape[2:])


def _when(pred, learn, unchanged):
    """learn(None) where `pred` holds, `unchanged` otherwise; a Python bool decides at trace time."""
    if isinstance(pred, bool):
        return learn(None) if pred else unchanged
    return jax.lax.cond(pred, learn, lambda _: unchanged, None)


class Trainer:
    """Static configuration plus the pure functions of one seed's training run."""

    def __init__(self, cfg: TrainConfig, train_team: bool = True):
        self.cfg = cfg
        self.train_team = train_team
        self.env = envs.make(cfg.env.name)
        if envs.is_host_env(self.env):
            raise ValueError(f"env: {cfg.env.name} is a host env (stepped in Python): training needs a JAX env; jarob.evaluate plays teams on host envs")
        p = cfg.protocol
        clean = {"clean_td": p.clean_td, "consistency": p.consistency} if train_team else {}
        self.learner = learners.make(cfg.alg, self.env, total_iterations=cfg.total_iterations, reg=cfg.reg, eps=cfg.env.eps, **clean)
        # The adversary the team trains against (none: clean play).
        layout = (cfg.alg.num_envs, cfg.alg.rollout_len, cfg.total_iterations)
        self.adversary = None if cfg.adv.name == "none" else adversaries.make(cfg.adv, self.env, cfg.env.eps, layout)
        self.learned_adversary = self.adversary is not None and self.adversary.learned
        self.stat_names = () if self.adversary is None else tuple(self.adversary.stat_names)
        if not train_team and not self.learned_adversary:
            raise ValueError("attack mode needs a learned adversary")

    def epsilon(self, env_steps: jax.Array) -> jax.Array:
        """The learner's exploration schedule at env step t (0 for a frozen victim)."""
        if not self.train_team:
            return jnp.zeros(())
        return self.learner.exploration(env_steps)

    def acting_adversary(self, adv_state: dict, env_steps: jax.Array) -> dict:
        """The adversary state a training rollout acts with: its budget times min(1, t / (ramp_frac
        x total_steps)) at env step t (`protocol.ramp_frac`: a budget curriculum, the team first meets
        small perturbations), the state itself without a ramp. Only acting sees the ramp: the
        adversary learns, is evaluated and is checkpointed at its full budget."""
        ramp = self.cfg.protocol.ramp_frac * self.cfg.total_steps
        if self.adversary is None or ramp == 0:
            return adv_state
        return {**adv_state, "eps": linear_schedule(env_steps, 0.0, adv_state["eps"], ramp)}

    def turns(self, index: jax.Array):
        """(the team learns, the adversary learns) at iteration `index`. Both every iteration,
        unless `protocol.alternate` > 0 splits training into phases of that many iterations in which
        they learn in turn, the team first (ATLA's alternating training). In attack mode only the
        adversary learns."""
        every = self.cfg.protocol.alternate
        if not self.train_team:
            return False, True
        if not self.learned_adversary or every == 0:
            return True, True
        team = (index // every) % 2 == 0
        return team, ~team

    def init(self, key: jax.Array, team=None) -> TrainState:
        """A fresh run; in attack mode `team` is the victim (`learner.team` of its run)."""
        k_learner, k_actor, k_adv, key = jax.random.split(key, 4)
        learner_state = self.learner.init(k_learner, learning=self.train_team)
        if team is not None:
            learner_state = self.learner.with_team(learner_state, team)
        actor = init_actor(self.env, self.learner, k_actor, self.cfg.alg.num_envs, self.adversary, self.learner.uses_clean_view)
        adv_state = {} if self.adversary is None else self.adversary.init(k_adv)
        return TrainState(learner_state, actor, adv_state, key, jnp.zeros((), jnp.int32))

    def iteration(self, state: TrainState, index: jax.Array):
        """Iteration `index` of the run (an unbatched count, shared by all seeds): collect one
        rollout, store it, take the gradient steps. Returns (state, sums)."""
        a = self.cfg.alg
        key, k_collect, k_update, k_adv = jax.random.split(state.key, 4)
        eps = self.epsilon(state.env_steps) if self.train_team else None  # a frozen victim acts greedily
        team = self.learner.acting_team(state.learner)
        acting = self.acting_adversary(state.adversary, state.env_steps)
        actor, seqs, records, carry0 = collect(self.env, self.learner, team, state.actor, k_collect, eps, a.rollout_len, self.adversary, acting, self.cfg.protocol.attack_prob)
        env_steps = state.env_steps + a.num_envs * a.rollout_len
        zero = jnp.zeros(())
        team_turn, adv_turn = self.turns(index)
        learner_state, m = state.learner, {k: zero for k in METRICS}
        if self.train_team:
            learner_state, m = _when(team_turn, lambda _: self.learner.learn(state.learner, seqs, index, k_update), (state.learner, m))
        adv_state, adv_m = state.adversary, {"adv_loss": zero, "adv_dropped": zero}
        if self.learned_adversary:

            def adv_learn(_):
                return self.adversary.update(state.adversary, records, carry0, actor, index, env_steps, k_adv)

            adv_state, adv_m = _when(adv_turn, adv_learn, (state.adversary, adv_m))
        done = records.done
        stats = {} if self.adversary is None else self.adversary.rollout_stats(records)
        sums = {
            "loss": m["loss"],
            "q_tot": m["q_tot"],
            "grad_norm": m["grad_norm"],
            "dropped_updates": m["dropped"],
            "adv_loss": adv_m["adv_loss"],
            "adv_dropped_updates": adv_m["adv_dropped"],
            "reg_loss": m["reg"],
            "team_turns": jnp.asarray(team_turn, jnp.float32),
            "adv_turns": jnp.asarray(adv_turn, jnp.float32),
            "episodes": jnp.sum(done),
            "wins": jnp.sum(records.won & done),
            "crashes": jnp.sum(records.crashed & done),
            "return": jnp.sum(jnp.where(done, records.ep_return, 0.0)),
            "adv_stats": {name: jnp.stack([jnp.asarray(v, jnp.float32) for v in sw]) for name, sw in stats.items()},
        }
        new_state = state.replace(learner=learner_state, actor=actor, adversary=adv_state, key=key, env_steps=env_steps)
        return new_state, sums

    def iterations(self, state: TrainState, first_iteration: jax.Array, num_iterations: jax.Array):
        """Iterations first_iteration .. first_iteration + num_iterations - 1 of the run, then the key
        of the chunk's greedy evaluation split off. Both counts are traced and unbatched (in_axes None
        under vmap): one compiled program serves every chunk. Returns (state, sums, eval key)."""

        def body(i, carry):
            s, acc = carry
            s, sums = self.iteration(s, first_iteration + i)
            return s, jax.tree.map(jnp.add, acc, sums)

        zeros = {k: jnp.zeros(()) for k in _SUMS} | {"adv_stats": {name: jnp.zeros((2,)) for name in self.stat_names}}
        state, acc = jax.lax.fori_loop(0, num_iterations, body, (state, zeros))
        key, k_eval = jax.random.split(state.key)
        return state.replace(key=key), acc, k_eval

    def evaluation(self, state: TrainState, key: jax.Array) -> EpisodeStats:
        """The chunk's greedy evaluation: `eval_episodes` episodes of the team (clean when training
        it; under the adversary, in test mode, in attack mode). The final evaluation runs this same
        program again, so that a run compiles its evaluation once."""
        team = self.learner.team(state.learner)
        n = self.cfg.eval_episodes
        if self.train_team:
            return evaluate(self.env, self.learner, team, key, n)
        return evaluate(self.env, self.learner, team, key, n, self.adversary, state.adversary)

    def chunk_metrics(self, env_steps: jax.Array, acc: dict, ev: EpisodeStats) -> ChunkMetrics:
        """A chunk's logged row from its iterations' sums and its evaluation; losses average over
        the iterations in which their learner learned."""
        n = jnp.maximum(acc["team_turns"], 1)
        n_adv = jnp.maximum(acc["adv_turns"], 1)
        episodes = jnp.maximum(acc["episodes"], 1)
        return ChunkMetrics(
            env_steps=env_steps,
            epsilon=self.epsilon(env_steps),
            loss=acc["loss"] / n,
            q_tot=acc["q_tot"] / n,
            grad_norm=acc["grad_norm"] / n,
            dropped_updates=acc["dropped_updates"],
            adv_loss=acc["adv_loss"] / n_adv,
            adv_dropped_updates=acc["adv_dropped_updates"],
            reg_loss=acc["reg_loss"] / n,
            train_episodes=acc["episodes"],
            train_return=acc["return"] / episodes,
            train_win_rate=acc["wins"] / episodes,
            train_crash_rate=acc["crashes"] / episodes,
            eval_return=jnp.mean(ev.ret),
            eval_win_rate=jnp.mean(ev.won),
            eval_length=jnp.mean(ev.length),
            eval_crash_rate=jnp.mean(ev.crashed),
            adv_stats={name: sw[0] / jnp.maximum(sw[1], 1.0) for name, sw in acc["adv_stats"].items()},
        )

    def chunk(self, state: TrainState, first_iteration: jax.Array, num_iterations: jax.Array):
        """One chunk, pure: its iterations, then its greedy evaluation. Returns (state, ChunkMetrics).
        (`jarob.train` runs the three parts as separate programs, with the same results.)"""
        state, acc, k_eval = self.iterations(state, first_iteration, num_iterations)
        return state, self.chunk_metrics(state.env_steps, acc, self.evaluation(state, k_eval))

    def final_keys(self, state: TrainState, num_episodes: int) -> jax.Array:
        """The keys of the final evaluation's batches of `eval_episodes` episodes (enough batches to
        cover `num_episodes`): derived from, not advancing, the training key."""
        batches = -(-num_episodes // self.cfg.eval_episodes)
        return jax.random.split(jax.random.fold_in(state.key, 0x5EED), batches)

    def final_evaluation(self, state: TrainState, num_episodes: int) -> EpisodeStats:
        """Greedy evaluation of the trained team (attack mode: of the victim under the trained
        adversary) on `num_episodes` episodes: the chunk evaluation run once per key of
        `final_keys`, the first `num_episodes` episodes kept."""
        stats = jax.lax.map(lambda k: self.evaluation(state, k), self.final_keys(state, num_episodes))
        return jax.tree.map(lambda x: x.reshape(-1)[:num_episodes], stats)

    def chunk_schedule(self) -> list[tuple[int, int]]:
        """(first iteration, iterations) of every chunk of the run (the last may be shorter)."""
        total, per = self.cfg.total_iterations, self.cfg.iterations_per_chunk
        return [(i, min(per, total - i)) for i in range(0, total, per)]

    def train(self, key: jax.Array):
        """The whole run for one seed, pure: (final state, ChunkMetrics [chunks], EpisodeStats)."""
        state = self.init(key)
        schedule = jnp.asarray(self.chunk_schedule(), jnp.int32)
        state, metrics = jax.lax.scan(lambda s, fc: self.chunk(s, fc[0], fc[1]), state, schedule)
        return state, metrics, self.final_evaluation(state, self.cfg.final_eval_episodes)


def make_train(cfg: TrainConfig):
    """`train(key)` for one seed; `jax.jit(jax.vmap(make_train(cfg)))(seed_keys(...))` runs many."""
    return Trainer(cfg).train
