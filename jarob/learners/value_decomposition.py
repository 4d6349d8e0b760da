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

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jarob.config import AlgConfig, RegConfig
from jarob.envs import MarlEnv
from jarob.learners.mixers import QMixer, VDNMixer, mixer_gradient
from jarob.learners.optim import clipped_adam, hard_target_update, keep_if_finite
from jarob.learners.regularizers import ernie_distance, ernie_regularizer, l2_distance, pr_regularizer, regularizer_weight
from jarob.learners.targets import lambda_returns
from jarob.networks import RNNAgent, agent_inputs, unroll_sequence
from jarob.ops import masked_argmax, take, weighted_mean
from jarob.sequence import Sequence


@struct.dataclass
class LearnerState:
    params: dict  # {"agent": ..., "mixer": ...}
    target_params: dict
    opt_state: optax.OptState
    updates: jax.Array  # [] int32, gradient steps taken
    team: dict  # the agent parameters the trained team acts with greedily (see `team_ema`)


class ValueDecomposition:
    """Pure functions of one VDN/QMIX learner; holds only static configuration."""

    def __init__(self, cfg: AlgConfig, env: MarlEnv, total_updates: int = 1, reg: RegConfig | None = None, eps: float | None = None, clean_td: float = 0.0, consistency: float = 0.0):
        """`reg`: the regularizer (None or name none: plain TD); its ball's radius is reg.eps,
        else `eps`, else the env's default budget. `clean_td`, `consistency`: the weights of the
        clean-view terms (module docstring); either > 0 needs sequences that keep the clean view."""
        self.cfg = cfg
        self.clean_td = clean_td
        self.consistency = consistency
        self.uses_clean_view = clean_td > 0 or consistency > 0
        self.total_updates = total_updates
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
        if cfg.name == "qmix":
            self.mixer = QMixer(cfg.mixer_embed_dim, cfg.hypernet_hidden)
        elif cfg.name == "vdn":
            self.mixer = VDNMixer()
        else:
            raise ValueError(f"unknown value-decomposition learner {cfg.name!r}")
        self.tx = clipped_adam(cfg, total_updates)

    # -- parameters and acting ----------------------------------------------------------
    def init(self, key: jax.Array) -> LearnerState:
        k_agent, k_mixer = jax.random.split(key)
        x = jnp.zeros((self.num_agents, self.obs_dim + self.num_agents + self.num_actions))
        params = {
            "agent": self.agent.init(k_agent, self.initial_hidden((self.num_agents,)), x),
            "mixer": self.mixer.init(k_mixer, jnp.zeros((self.num_agents,)), jnp.zeros((self.state_dim,))),
        }
        return LearnerState(params, params, self.tx.init(params), jnp.zeros((), jnp.int32), params["agent"])

    def initial_hidden(self, batch_shape: tuple[int, ...]) -> jax.Array:
        return jnp.zeros(batch_shape + (self.cfg.hidden_dim,))

    def step_q(self, agent_params, hidden, obs, last_action, first):
        """One acting step for every agent: reset the hidden state at episode starts and return
        (new hidden [..., N, H], utilities Q [..., N, A]) for obs [..., N, O]."""
        hidden = jnp.where(first[..., None, None], 0.0, hidden)
        x = agent_inputs(obs, last_action, self.num_actions)
        return self.agent.apply(agent_params, hidden, x)

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
        rewards = seq.reward * self.cfg.reward_scale
        return lambda_returns(rewards, seq.done, v_next, self.cfg.gamma, self.cfg.td_lambda)

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
        new, metrics["dropped"] = keep_if_finite(LearnerState(params, target, opt_state, n, team), state)
        return new, metrics
