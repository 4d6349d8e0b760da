"""ATSA's SDor: factorized soft Q-learning of a stochastic director (FOP-style; ATSA eqs. 4-10, 14-15).

Per agent i, over the protagonist's available actions A_i:
    Q_i(tau_i, .)            individual soft Q (a GRU agent over the clean observations)
    V_i(tau_i)               individual soft value: by default (`value: network`) one more output
                             of the soft-Q agent, with weights of its own (eq. 7's V^i_{Phi^ia}),
                             fitted by eq. 9; `value: logsumexp` instead defines
                             V_i = alpha * logsumexp(Q_i / alpha), the soft value of Q_i's
                             Boltzmann policy (eq. 5), so that eq. 9 moves Q_i
    h_i(.|tau_i)             individual soft policy, a GRU agent of its own (a distrax Categorical
                             over the available actions)
and jointly
    Q_jt(s, a^) = sum_i lambda_i(s, a^) (Q_i(a^_i) - V_i) + V(s),  lambda >= 0       (eq. 7)
trained on the director's reward r^ = -r with
    eq. 8   TD:  (Q_jt(s, a^) - [r^ + gamma (Q_jt_tar(s', a^') - alpha log h_jt(a^'|s'))])^2,
                 a^' ~ h at the next step (Q(lambda) targets over the stored sequence when
                 td_lambda > 0; td_lambda = 0 is eq. 8 exactly),
    eq. 9   V:   (V_i - sg(E_{h_i}[Q_i - alpha_i log h_i]))^2 (V_i also enters Q_jt, so eq. 8's
                 gradient reaches it too),
    eq. 10  policy: E_{a ~ h_i}[alpha_i log h_i(a) - sg(Q_i(a))], the exact expectation over actions,
with alpha_i = alpha (`individual_alpha: shared`, FOP's choice) or alpha / lambda_i(s, a^)
(`weighted`: eq. 6 identifies lambda_i with alpha / alpha_i, so Q_i's scale is free and the
individual temperature follows it),
    eq. 14  SDor-STor: -log h_i(a_i) for the action a_i = pi_i(o~_i) the protagonist's greedy policy
            takes under STor's perturbation, added to the policy objective with weight kappa (eq. 15).
"""

from __future__ import annotations

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jarob.learners.optim import clipped_adam, hard_target_update, keep_if_finite
from jarob.learners.targets import lambda_returns
from jarob.networks import RNNAgent, agent_inputs, unroll_sequence
from jarob.ops import linear_schedule, mask_logits, take, weighted_mean


class WeightNetwork(nn.Module):
    """lambda(s, a^) >= 0 [..., N]: an MLP on the state and the one-hot joint target actions,
    made positive by a softplus (FOP's weights are non-negative)."""

    hidden: int
    num_agents: int

    @nn.compact
    def __call__(self, state: jax.Array, joint_onehot: jax.Array) -> jax.Array:
        x = jnp.concatenate([state, joint_onehot.reshape(joint_onehot.shape[:-2] + (-1,))], axis=-1)
        x = nn.relu(nn.Dense(self.hidden)(x))
        return nn.softplus(nn.Dense(self.num_agents)(x))


class StateValue(nn.Module):
    """The joint soft value V(s) [...]."""

    hidden: int

    @nn.compact
    def __call__(self, state: jax.Array) -> jax.Array:
        return nn.Dense(1)(nn.relu(nn.Dense(self.hidden)(state)))[..., 0]


def soft_value(q: jax.Array, avail: jax.Array, alpha) -> jax.Array:
    """V = alpha * logsumexp(Q / alpha) over the available actions (last axis; ATSA eq. 5)."""
    return alpha * jax.nn.logsumexp(mask_logits(q / alpha, avail), axis=-1)


def soft_policy(q: jax.Array, avail: jax.Array, alpha) -> jax.Array:
    """h* = exp((Q - V) / alpha): the optimal individual soft policy of eq. 5."""
    return jnp.where(avail, jnp.exp((q - soft_value(q, avail, alpha)[..., None]) / alpha), 0.0)


def policy(logits: jax.Array, avail: jax.Array) -> distrax.Categorical:
    """h(.|tau): the categorical soft policy over the available actions (probability 0 elsewhere)."""
    return distrax.Categorical(logits=mask_logits(logits, avail))


def log_policy(logits: jax.Array, avail: jax.Array) -> jax.Array:
    """log h(.|tau) over the available actions (finite, very negative elsewhere)."""
    return policy(logits, avail).logits


def policy_objective(log_h: jax.Array, q: jax.Array, avail: jax.Array, alpha) -> jax.Array:
    """ATSA eq. 10 with the exact expectation over the discrete actions:
    sum_a h(a) (alpha log h(a) - sg(Q(a))) [...]."""
    h = jnp.exp(log_h)
    return jnp.sum(jnp.where(avail, h * (alpha * log_h - jax.lax.stop_gradient(q)), 0.0), axis=-1)


def sdor_stor_loss(log_h: jax.Array, realised: jax.Array) -> jax.Array:
    """ATSA eq. 14 for a deterministic protagonist: the cross-entropy -log h(a) of the action
    a = pi(o~) its policy takes under STor's perturbation (pi is one-hot there): the greedy action,
    not an exploratory one (`stor_action: taken` uses the epsilon-greedy action it played)."""
    return -take(log_h, realised)


@struct.dataclass
class SoftState:
    params: dict  # {"q", "pi", "weight", "value"}
    target_params: dict
    opt_state: optax.OptState
    updates: jax.Array


class SoftFactorizedQ:
    """Pure functions of SDor; holds only static configuration (a DirectorConfig)."""

    def __init__(self, cfg, env, total_updates: int = 1):
        self.cfg = cfg
        self.num_agents = env.num_agents
        self.num_actions = env.num_actions
        self.obs_dim = env.obs_dim
        self.state_dim = env.state_dim
        # value == "network": the soft-Q agent has one more output, V_i(tau_i) (eq. 7's V^i with
        # output weights of its own, fitted by eq. 9); "logsumexp": V_i = alpha logsumexp(Q_i / alpha).
        self.value_net = cfg.value == "network"
        self.q_net = RNNAgent(cfg.hidden_dim, env.num_actions + int(self.value_net))
        self.pi_net = RNNAgent(cfg.hidden_dim, env.num_actions)
        self.weight = WeightNetwork(cfg.mixer_embed_dim, env.num_agents)
        self.value = StateValue(cfg.mixer_embed_dim)
        self.tx = clipped_adam(cfg, total_updates)

    def alpha(self, env_steps: jax.Array) -> jax.Array:
        """Entropy temperature, linear in env steps from alpha_start to alpha_end."""
        c = self.cfg
        return linear_schedule(env_steps, c.alpha_start, c.alpha_end, c.alpha_anneal_steps)

    def init(self, key: jax.Array) -> SoftState:
        kq, kp, kw, kv = jax.random.split(key, 4)
        n, a = self.num_agents, self.num_actions
        x = jnp.zeros((n, self.obs_dim + n + a))
        h = jnp.zeros((n, self.cfg.hidden_dim))
        s = jnp.zeros((self.state_dim,))
        params = {
            "q": self.q_net.init(kq, h, x),
            "pi": self.pi_net.init(kp, h, x),
            "weight": self.weight.init(kw, s, jnp.zeros((n, a))),
            "value": self.value.init(kv, s),
        }
        return SoftState(params, params, self.tx.init(params), jnp.zeros((), jnp.int32))

    def initial_hidden(self, batch_shape: tuple[int, ...]) -> dict:
        z = jnp.zeros(batch_shape + (self.cfg.hidden_dim,))
        return {"q": z, "pi": z}

    def _step(self, params, hidden: dict, obs, last, first):
        x = agent_inputs(obs, last, self.num_actions)
        reset = lambda h: jnp.where(first[..., None, None], 0.0, h)  # noqa: E731
        hq, _ = self.q_net.apply(params["q"], reset(hidden["q"]), x)
        hp, logits = self.pi_net.apply(params["pi"], reset(hidden["pi"]), x)
        return logits, {"q": hq, "pi": hp}

    def step(self, params, hidden: dict, obs, last, first, avail):
        """One step of every agent's soft policy: (log h_i(.|tau_i) [..., N, A] over the available
        actions, the new hidden state). The soft-Q network is stepped too, so that stored
        sequences carry its context."""
        logits, hidden = self._step(params, hidden, obs, last, first)
        return log_policy(logits, avail), hidden

    def direct(self, params, hidden: dict, obs, last, first, avail, key, train: bool, env_steps):
        """One step of every agent: a^_i ~ h_i(.|tau_i) (sampled in training and as an attacker)."""
        logits, hidden = self._step(params, hidden, obs, last, first)
        return policy(logits, avail).sample(seed=key), hidden

    def _q_and_v(self, params, seq, alpha):
        out = unroll_sequence(params, seq.hidden["q"], seq, self.num_actions)
        if self.value_net:
            return out[..., :-1], out[..., -1]
        return out, soft_value(out, seq.avail, alpha)

    def mixing_weights(self, params, state, actions) -> jax.Array:
        """lambda(s, a^) [..., N] for the joint target actions a^ [..., N]."""
        return self.weight.apply(params["weight"], state, jax.nn.one_hot(actions, self.num_actions))

    def joint_q(self, params, q_taken, v, state, actions, lam=None) -> jax.Array:
        """Q_jt = sum_i lambda_i(s, a^) (Q_i(a^_i) - V_i) + V(s)  (ATSA eq. 7)."""
        lam = self.mixing_weights(params, state, actions) if lam is None else lam
        return jnp.sum(lam * (q_taken - v), axis=-1) + self.value.apply(params["value"], state)

    def individual_alpha(self, alpha, lam: jax.Array) -> jax.Array:
        """alpha_i [..., N] of eqs. 9-10: alpha itself (`shared`), or alpha / lambda_i, the
        individual temperature eq. 6 identifies with the mixing weight (`weighted`; lambda held
        constant there and floored at 1e-3)."""
        if self.cfg.individual_alpha == "weighted":
            return alpha / jnp.maximum(jax.lax.stop_gradient(lam), 1e-3)
        return jnp.broadcast_to(alpha, lam.shape)

    def loss(self, params, target_params, seq, realised, alpha, key, weights=None):
        """Eqs. 8 + 9 + 10 + kappa * 14 on a time-major batch; `realised` [T, B, N] holds the
        protagonist's actions, `weights` [T, B] (optional) weighs the transitions (SDor learns
        only from the steps it attacked). Gradients reach each network only through its own
        terms."""
        c = self.cfg
        q, v = self._q_and_v(params["q"], seq, alpha)  # [T+1, B, N, A], [T+1, B, N]
        h_all = policy(unroll_sequence(params["pi"], seq.hidden["pi"], seq, self.num_actions), seq.avail)
        log_h = h_all.logits
        lam = self.mixing_weights(params, seq.state[:-1], seq.action)  # [T, B, N]
        q_jt = self.joint_q(params, take(q[:-1], seq.action), v[:-1], seq.state[:-1], seq.action, lam)

        # eq. 8: soft TD target with a^' ~ h at the next step, valued by the target networks.
        q_tar, v_tar = self._q_and_v(target_params["q"], seq, alpha)
        h_next = distrax.Categorical(logits=jax.lax.stop_gradient(log_h[1:]))
        a_next = h_next.sample(seed=key)
        log_h_next = jnp.sum(h_next.log_prob(a_next), axis=-1)
        next_value = self.joint_q(target_params, take(q_tar[1:], a_next), v_tar[1:], seq.state[1:], a_next) - alpha * log_h_next
        # soft Q(lambda): the continued return G_{t+1} also pays -alpha log h(a_{t+1}) of the
        # stored next targets (eq. 8's entropy term at every step, not only where it bootstraps).
        log_h_stored = jnp.sum(take(jax.lax.stop_gradient(log_h[1:-1]), seq.action[1:]), axis=-1)  # [T-1, B]
        stored_bonus = jnp.concatenate([-alpha * log_h_stored, jnp.zeros_like(log_h_stored[:1])], axis=0)
        targets = lambda_returns(seq.reward * c.reward_scale, seq.done, next_value, c.gamma, c.td_lambda, stored_bonus)
        td = weighted_mean((q_jt - jax.lax.stop_gradient(targets)) ** 2, weights)

        # eq. 9: the individual soft value against the policy's expected soft Q.
        alpha_i = self.individual_alpha(alpha, lam)[..., None]  # [T, B, N, 1]
        log_h_now, q_now, avail_now = log_h[:-1], q[:-1], seq.avail[:-1]
        h = jnp.exp(jax.lax.stop_gradient(log_h_now))
        pi_value = jnp.sum(jnp.where(avail_now, h * (q_now - alpha_i * jax.lax.stop_gradient(log_h_now)), 0.0), axis=-1)
        v_loss = weighted_mean((v[:-1] - jax.lax.stop_gradient(pi_value)) ** 2, weights)

        # eqs. 10, 14, 15: the individual soft policies.
        pol = weighted_mean(policy_objective(log_h_now, q_now, avail_now, alpha_i), weights)
        sdor_stor = weighted_mean(sdor_stor_loss(log_h_now, realised), weights)
        loss = td + v_loss + pol + c.kappa * sdor_stor
        entropy = jnp.mean(h_all.entropy())
        return loss, {"loss": td, "v_loss": v_loss, "policy": pol, "sdor_stor": sdor_stor, "entropy": entropy, "q_jt": jnp.mean(q_jt)}

    def update(self, state: SoftState, batch, env_steps: jax.Array, key: jax.Array):
        """One gradient step on a batch-major batch of `DirectorItem`s; hard target copy every
        `target_update_every` steps. A step that would leave non-finite state is dropped
        (`keep_if_finite`; metrics["dropped"] is 1 then)."""
        seq = batch.seq.time_major()
        realised = jnp.swapaxes(batch.team_action, 0, 1)
        weights = jnp.swapaxes(batch.attacked, 0, 1)
        alpha = self.alpha(env_steps)
        grads, metrics = jax.grad(self.loss, has_aux=True)(state.params, state.target_params, seq, realised, alpha, key, weights)
        updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        n = state.updates + 1
        target = hard_target_update(state.target_params, params, n, self.cfg.target_update_every)
        metrics["alpha"] = alpha
        new, metrics["dropped"] = keep_if_finite(SoftState(params, target, opt_state, n), state)
        return new, metrics
