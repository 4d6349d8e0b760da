"""Value-decomposition Q-learning (VDN, QMIX) over a shared recurrent agent.

Q_tot = mixer(Q_1(tau_1, a_1), ..., Q_N(tau_N, a_N); s) is regressed onto Q(lambda) targets
built with double Q-learning (online argmax among available actions, target-network value)
and a periodically copied target network. VDN and QMIX differ only in the mixer. An optional
adversarial regularizer of the utilities (PR, PR-REP, ERNIE; `jarob.learners.regularizers`)
is added to the TD loss with its scheduled weight.

Under a training adversary the team learns from what it saw (the papers). Two optional terms
use the clean view the sequences then also keep (DESIGN.md section 4, "The team's clean view"):
`clean_td` weighs a second TD loss on the same transitions as the environment emitted them
(off-policy: the actions were chosen on what the team saw), and `consistency` weighs
D(Q(seen), Q(clean)) = sum_i (dQ_tot/dQ_i)^2 sum_a (Q_i(seen, a) - Q_i(clean, a))^2 with the
clean utilities and the weights held constant (TRADES' split of a clean fit and an invariance
term, with the perturbations the adversary actually played).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jarob import buffer as replay
from jarob import sequence
from jarob.config import require, require_positive, require_unit
from jarob.envs import MarlEnv
from jarob.learners.base import LEARNERS, METRICS, TeamLearner
from jarob.learners.mixers import QMixer, VDNMixer, mixer_gradient
from jarob.learners.optim import clipped_adam, hard_target_update, keep_if_finite
from jarob.learners.regularizers import RegConfig, ernie_distance, ernie_regularizer, l2_distance, pr_regularizer, regularizer_weight
from jarob.learners.targets import lambda_returns
from jarob.networks import RNNAgent, step_agent, unroll_sequence
from jarob.ops import epsilon_greedy, linear_schedule, masked_argmax, take, weighted_mean
from jarob.sequence import Sequence


@dataclass(frozen=True)
class QLearningConfig:
    """Recurrent Q-learning of a team over a shared GRU agent (IQL; the base of VDN and QMIX)."""

    name: str
    hidden_dim: int  # GRU agent width
    lr: float
    lr_final: float
    grad_clip: float
    gamma: float
    td_lambda: float
    reward_scale: float
    eps_start: float
    eps_end: float
    eps_anneal_steps: int
    num_envs: int
    rollout_len: int
    updates_per_rollout: int
    batch_size: int
    buffer_size: int
    target_update_every: int
    team_ema: float  # Polyak rate of the evaluated team's parameters per gradient step (1 = online)

    def validate(self, run) -> None:
        """Ranges, and the settings that contradict each other or the run's."""
        require_positive(self, "alg.", ("hidden_dim", "lr", "lr_final", "grad_clip", "reward_scale", "eps_anneal_steps", "num_envs", "rollout_len", "updates_per_rollout", "batch_size", "buffer_size", "target_update_every"))
        require_unit(self, "alg.", ("gamma", "td_lambda", "eps_start", "eps_end"))
        require(0.0 < self.team_ema <= 1.0, f"alg.team_ema: must lie in (0, 1], got {self.team_ema}")
        require(self.eps_end <= self.eps_start, f"alg.eps_end: must not exceed alg.eps_start ({self.eps_start}), got {self.eps_end}")
        require(self.buffer_size % self.num_envs == 0, f"alg.buffer_size: must be a multiple of alg.num_envs ({self.num_envs}), got {self.buffer_size}")
        require(self.batch_size <= self.buffer_size, f"alg.batch_size: a batch draws sequences from the replay buffer; must not exceed alg.buffer_size ({self.buffer_size}), got {self.batch_size}")


@dataclass(frozen=True)
class ValueDecompositionConfig(QLearningConfig):
    """VDN and QMIX: Q-learning of the team's joint value Q_tot = mixer(Q_1, ..., Q_N; s)."""

    mixer_embed_dim: int = 16  # QMIX mixing-network width
    hypernet_hidden: int = 32  # hidden width of QMIX's hypernetworks

    def validate(self, run) -> None:
        super().validate(run)
        require_positive(self, "alg.", ("mixer_embed_dim", "hypernet_hidden"))


@struct.dataclass
class LearnerState:
    params: dict  # {"agent": ..., "mixer": ...}
    target_params: dict
    opt_state: optax.OptState
    updates: jax.Array  # [] int32, gradient steps taken
    team: dict  # the agent parameters the trained team acts with greedily (see `team_ema`)
    buffer: Sequence | None = None  # the team's replay buffer, every leaf [capacity, ...] (None: not learning, or a director's learner)


@LEARNERS.register("vdn", ValueDecompositionConfig)
@LEARNERS.register("qmix", ValueDecompositionConfig)
class ValueDecomposition(TeamLearner):
    """Pure functions of one VDN/QMIX learner; holds only static configuration."""

    def __init__(self, cfg, env: MarlEnv, total_iterations: int = 1, reg: RegConfig | None = None, eps: float | None = None, clean_td: float = 0.0, consistency: float = 0.0):
        """`total_iterations`: rollouts the run learns from (`updates_per_rollout` gradient steps
        each). `reg`: the regularizer (None or name none: plain TD); its ball's radius is reg.eps,
        else `eps`, else the env's default budget. `clean_td`, `consistency`: the weights of the
        clean-view terms (module docstring); either > 0 needs sequences that keep the clean view."""
        self.cfg = cfg
        self.clean_td = clean_td
        self.consistency = consistency
        self.uses_clean_view = clean_td > 0 or consistency > 0
        self.total_updates = total_iterations * cfg.updates_per_rollout
        self.reg = reg if reg is not None and reg.name != "none" else None
        self.spec = env.perturbation
        self.reg_eps = None if self.reg is None else next(e for e in (self.reg.eps, eps, env.default_eps) if e is not None)
        # the regularizer's ascent step: reg.step_size, by default 2.5 eps / K
        self.reg_step_size = None if self.reg is None else (2.5 * self.reg_eps / self.reg.steps if self.reg.step_size is None else self.reg.step_size)
        self.num_agents = env.num_agents
        self.num_actions = env.num_actions
        self.obs_dim = env.obs_dim
        self.state_dim = env.state_dim
        self.agent = RNNAgent(cfg.hidden_dim, env.num_actions)
        self.mixer = self.make_mixer(cfg)
        self.tx = clipped_adam(cfg, self.total_updates)

    def make_mixer(self, cfg):
        """Q_tot's mixer: QMIX's monotonic hypernetwork mixer or VDN's sum."""
        if cfg.name == "qmix":
            return QMixer(cfg.mixer_embed_dim, cfg.hypernet_hidden)
        if cfg.name == "vdn":
            return VDNMixer()
        raise ValueError(f"unknown value-decomposition learner {cfg.name!r}")

    # -- parameters and acting ----------------------------------------------------------
    def init(self, key: jax.Array, learning: bool = False) -> LearnerState:
        """Fresh parameters; `learning` adds the team's (empty) replay buffer."""
        k_agent, k_mixer = jax.random.split(key)
        x = jnp.zeros((self.num_agents, self.obs_dim + self.num_agents + self.num_actions))
        params = {
            "agent": self.agent.init(k_agent, self.initial_hidden((self.num_agents,)), x),
            "mixer": self.mixer.init(k_mixer, jnp.zeros((self.num_agents,)), jnp.zeros((self.state_dim,))),
        }
        buf = replay.init(self.example_sequence(), self.cfg.buffer_size) if learning else None
        return LearnerState(params, params, self.tx.init(params), jnp.zeros((), jnp.int32), params["agent"], buf)

    def example_sequence(self) -> Sequence:
        """An all-zero stored sequence: a replay buffer's item."""
        n = self.num_agents
        return sequence.zeros(self.cfg.rollout_len, n, self.obs_dim, self.num_actions, self.state_dim, self.initial_hidden((n,)), self.uses_clean_view)

    def initial_hidden(self, batch_shape: tuple[int, ...]) -> jax.Array:
        return jnp.zeros(batch_shape + (self.cfg.hidden_dim,))

    def step_q(self, agent_params, hidden, obs, last_action, first):
        """One acting step for every agent: reset the hidden state at episode starts and return
        (new hidden [..., N, H], utilities Q [..., N, A]) for obs [..., N, O]."""
        return step_agent(self.agent, agent_params, hidden, obs, last_action, first)

    # -- the team-learner protocol (jarob.learners.base) ----------------------------------
    def team(self, state: LearnerState) -> dict:
        """The trained team: the agent parameters it acts with greedily and the mixer."""
        return {"agent": state.team, "mixer": state.params["mixer"]}

    def acting_team(self, state: LearnerState) -> dict:
        """The team as it acts while it learns: the online parameters."""
        return {"agent": state.params["agent"], "mixer": state.params["mixer"]}

    def with_team(self, state: LearnerState, team: dict) -> LearnerState:
        params = {**state.params, **team}
        return state.replace(params=params, team=team["agent"])

    @staticmethod
    def team_from_saved(saved):
        """team.msgpack files written before the mixer was saved hold the agent parameters alone."""
        return {"agent": saved} if "agent" not in saved else saved

    def policy(self, team, hidden, obs, last_action, first):
        """The policy view: (new hidden, utilities Q [..., N, A]) of the team's agents."""
        return self.step_q(team["agent"], hidden, obs, last_action, first)

    def exploration(self, env_steps: jax.Array) -> jax.Array:
        """epsilon, linear in env steps."""
        c = self.cfg
        return linear_schedule(env_steps, c.eps_start, c.eps_end, c.eps_anneal_steps)

    def explore(self, key: jax.Array, scores: jax.Array, avail: jax.Array, exploration: jax.Array) -> jax.Array:
        return epsilon_greedy(key, scores, avail, exploration)

    def joint_value(self, team, chosen: jax.Array, state: jax.Array):
        """Q_tot(chosen utilities [..., N]; s); None for a team saved without its mixer."""
        if "mixer" not in team:
            return None
        return self.mixer.apply(team["mixer"], chosen, state)

    def architecture(self) -> tuple:
        c = self.cfg
        return (c.name, c.hidden_dim, getattr(c, "mixer_embed_dim", None), getattr(c, "hypernet_hidden", None))

    def learn(self, state: LearnerState, seqs: Sequence, iteration: jax.Array, key: jax.Array):
        """Store one rollout's sequences [E, ...] in the replay ring at `iteration`'s slot, then
        `updates_per_rollout` gradient steps on uniformly drawn batches. Returns (state, metrics
        averaged over the steps; "dropped" summed)."""
        a = self.cfg
        slot, size = replay.ring_position(iteration, a.num_envs, a.buffer_size)
        buf = replay.write(state.buffer, seqs, slot)

        def step(learner_state, k):
            return self.update(learner_state, replay.sample(buf, k, a.batch_size, size), key=jax.random.fold_in(k, 1))

        new, m = jax.lax.scan(step, state.replace(buffer=None), jax.random.split(key, a.updates_per_rollout))
        zero = jnp.zeros(())
        metrics = {k: jnp.mean(m.get(k, zero)) for k in METRICS if k != "dropped"} | {"dropped": jnp.sum(m.get("dropped", zero))}
        return new.replace(buffer=buf), metrics

    # -- learning -----------------------------------------------------------------------
    def unroll_q(self, agent_params, seq: Sequence) -> jax.Array:
        """Utilities along stored sequences, time-major: seq leaves are [T(+1), B, ...] and the
        result is Q [T+1, B, N, A], starting from each sequence's stored hidden state."""
        return unroll_sequence(agent_params, seq.hidden, seq, self.num_actions)

    def td_targets(self, q_online: jax.Array, target_params, seq: Sequence) -> jax.Array:
        """Double-Q Q(lambda) targets [T, B]: the online utilities q_online [T+1, B, N, A] pick
        the next actions among the available ones, the target networks value them."""
        a_next = masked_argmax(jax.lax.stop_gradient(q_online[1:]), seq.avail[1:])
        q_target = self.unroll_q(target_params["agent"], seq)
        v_next = self.mixer.apply(target_params["mixer"], take(q_target[1:], a_next), seq.state[1:])
        # A mixer may value each agent on its own (v_next [T, B, N]): the team reward is each one's.
        per_value = lambda x: x.reshape(x.shape + (1,) * (v_next.ndim - x.ndim))  # noqa: E731
        rewards = per_value(seq.reward * self.cfg.reward_scale)
        return lambda_returns(rewards, per_value(seq.done), v_next, self.cfg.gamma, self.cfg.td_lambda)

    def regularizer(self, agent_params, context: jax.Array, seq: Sequence, key: jax.Array, agent_weight=None, **ernie) -> jax.Array:
        """R per transition [T, B] at each stored step's observation, the agent stepped from the
        hidden state `context` [T, B, N, H] the sequence reaches before that step; `agent_weight`
        [T, B, N] weighs ERNIE's per-agent distances (`mixer_l2`); `ernie` overrides
        `ernie_regularizer`'s keywords (diagnostics: `step_size`, `normaliser`, `unroll`)."""
        r, eps = self.reg, self.reg_eps
        obs, avail = seq.obs[:-1], seq.avail[:-1]

        def q_fn(o):
            return self.step_q(agent_params, context, o, seq.last_action[:-1], seq.first[:-1])[1]

        def project(clean, x):
            return self.spec.project(clean, x, eps)

        if r.name == "ernie":
            start = self.spec.random_point(key, obs, eps)
            kw = dict(steps=r.steps, step_size=self.reg_step_size, stackelberg=r.stackelberg, unroll=r.unroll, distance=ernie_distance(r.distance, r.temperature), agent_weight=agent_weight) | ernie
            return ernie_regularizer(q_fn, obs, avail, project, start, self.spec.mask, **kw)
        return pr_regularizer(q_fn, obs, avail, project, c=r.hinge_c, steps=r.steps, step_size=self.reg_step_size)

    def td_loss(self, params, target_params, seq: Sequence, q: jax.Array, weights=None):
        """(weighted mean squared TD error of Q_tot, the chosen utilities [T, B, N], Q_tot [T, B],
        the targets [T, B]) for the utilities q [T+1, B, N, A] of the time-major batch `seq`."""
        q_taken = take(q[:-1], seq.action)
        q_tot = self.mixer.apply(params["mixer"], q_taken, seq.state[:-1])
        targets = jax.lax.stop_gradient(self.td_targets(q, target_params, seq))
        return weighted_mean((q_tot - targets) ** 2, weights), q_taken, q_tot, targets

    def mixer_l2_weights(self, mixer_params, q_taken: jax.Array, state: jax.Array) -> jax.Array:
        """(dQ_tot/dQ_i)^2 [T, B, N] at the chosen utilities, held constant: the per-agent weights
        of the mixer-weighted l2 distance (ERNIE's `mixer_l2`, the clean-view consistency)."""
        return jax.lax.stop_gradient(mixer_gradient(self.mixer, mixer_params, q_taken, state)) ** 2

    def clean_view_terms(self, params, target_params, seq: Sequence, q_seen: jax.Array, weights=None):
        """(clean_td x the clean view's TD loss + consistency x mean D(Q(seen), Q(clean)), metrics)
        for a time-major batch that keeps the clean view; q_seen [T+1, B, N, A] the utilities on
        what the team saw. Without a clean TD loss the clean utilities are constants."""
        clean = seq.clean_view()
        agent = params["agent"] if self.clean_td > 0 else jax.lax.stop_gradient(params["agent"])
        q_clean = self.unroll_q(agent, clean)
        total, metrics = 0.0, {}
        if self.clean_td > 0:
            metrics["clean_td"] = self.td_loss(params, target_params, clean, q_clean, weights)[0]
            total = total + self.clean_td * metrics["clean_td"]
        if self.consistency > 0:
            q_ref = jax.lax.stop_gradient(q_clean[:-1])
            w = self.mixer_l2_weights(params["mixer"], take(q_ref, seq.action), seq.state[:-1])
            d = jnp.sum(w * l2_distance(q_seen[:-1], q_ref, seq.avail[:-1]), axis=-1)
            metrics["consistency"] = weighted_mean(d, weights)
            total = total + self.consistency * metrics["consistency"]
        return total, metrics

    def loss(self, params, target_params, seq: Sequence, weights=None, key=None, reg_weight=0.0):
        """Mean squared TD error of Q_tot over every stored transition (time-major batch) plus
        reg_weight times the regularizer's mean (when configured; `key` for its random start)
        plus the clean-view terms (when configured); `weights` [T, B] (optional) weighs the
        transitions (a director learns only from the steps it attacked)."""
        if self.reg is None:
            q = self.unroll_q(params["agent"], seq)
        else:
            q, context = unroll_sequence(params["agent"], seq.hidden, seq, self.num_actions, with_context=True)
        td, q_taken, q_tot, targets = self.td_loss(params, target_params, seq, q, weights)
        metrics = {"loss": td, "q_tot": jnp.mean(q_tot), "target": jnp.mean(targets)}
        total = td
        if self.uses_clean_view:
            extra, m = self.clean_view_terms(params, target_params, seq, q, weights)
            total = total + extra
            metrics |= m
            if "consistency" in m and self.reg is None:  # logged as the chunk's reg_loss
                metrics["reg"] = m["consistency"]
        if self.reg is None:
            return total, metrics
        agent_weight = None
        if self.reg.name == "ernie" and self.reg.distance == "mixer_l2":
            agent_weight = self.mixer_l2_weights(params["mixer"], q_taken, seq.state[:-1])
            metrics["mixer_grad"] = jnp.mean(jnp.sqrt(agent_weight))
        r = weighted_mean(self.regularizer(params["agent"], jax.lax.stop_gradient(context[:-1]), seq, key, agent_weight), weights)
        metrics["reg"] = r
        return total + reg_weight * r, metrics

    def update(self, state: LearnerState, batch: Sequence, weights=None, key=None):
        """One gradient step on a batch-major batch of sequences (`weights` [B, T] optional;
        `key` for a regularizer's random start); hard target copy every `target_update_every`
        steps. The regularizer's weight follows its schedule in updates / total_updates. A step
        that would make any of the state non-finite is dropped (`keep_if_finite`; metrics["dropped"]
        is 1 then): Stackelberg ERNIE's gradient through the ascent can overflow float32."""
        seq = batch.time_major()
        weights = None if weights is None else jnp.swapaxes(weights, 0, 1)
        reg_weight = 0.0 if self.reg is None else regularizer_weight(self.reg, state.updates / self.total_updates)
        grads, metrics = jax.grad(self.loss, has_aux=True)(state.params, state.target_params, seq, weights, key, reg_weight)
        updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        n = state.updates + 1
        target = hard_target_update(state.target_params, params, n, self.cfg.target_update_every)
        # The team that is evaluated (and attacked): a Polyak average of the agent's parameters,
        # team <- team + team_ema * (online - team); team_ema = 1 keeps the online parameters.
        team = optax.incremental_update(params["agent"], state.team, self.cfg.team_ema)
        metrics["grad_norm"] = optax.tree.norm(grads)
        new, metrics["dropped"] = keep_if_finite(state.replace(params=params, target_params=target, opt_state=opt_state, updates=n, team=team), state)
        return new, metrics
