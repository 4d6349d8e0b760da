"""DOP (Wang et al. 2021, "Off-policy multi-agent decomposed policy gradients"; TRAM's target):
stochastic softmax actors and a linearly decomposed critic,

    Q_tot(s, a) = sum_i k_i(s) Q_i(s, o_i, a_i) + b(s),    k_i(s) = |w_k(s)| >= 0,

each Q_i an MLP on the world state, the agent's observation and its one-hot id with one output
per action (DOP's critic), k and b from networks on s. On-policy here: after each rollout,
`epochs` passes over its sequences in `minibatches` minibatches, each a step of

    critic: mean (Q_tot(s_t, a_t) - G_t)^2, G_t the TD(lambda) target
            G_t = r_t + gamma (1 - d_t) [(1 - lam) V'(s_{t+1}) + lam G_{t+1}],
            V'(s) = sum_i k'_i(s) sum_a pi_i(a|tau_i) Q'_i(s, o_i, a) + b'(s) (target networks,
            the expectation under the current actors: the on-policy targets that replace DOP's
            off-policy tree backup, as the issue allows);
    actors: the decomposed policy gradient (DOP eq. 5)
            -mean sum_i k_i(s) (Q_i(a_i) - sum_a pi_i(a) Q_i(a)) log pi_i(a_i|tau_i),
            the critic's factors held constant, minus entropy_coef x entropy(pi).

Actor and critic have their own RMSprop learning rates (TRAM appendix: 5e-4 and 1e-4). While
learning the agents explore as pymarl's policy-gradient agents do, sampling (1 - e) pi + e uniform
with e annealed linearly (TRAM: 1 -> 0.05 over 500k steps); the trained team is greedy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jarob.config import require, require_positive, require_unit
from jarob.envs import MarlEnv
from jarob.learners.actor_critic import ActorCriticState, SoftmaxActorTeam, batch_major, entropy, log_policy
from jarob.learners.base import LEARNERS
from jarob.learners.ppo import minibatch_epochs
from jarob.learners.targets import lambda_returns
from jarob.ops import linear_schedule, take, weighted_mean
from jarob.sequence import Sequence


@dataclass(frozen=True)
class DOPConfig:
    """DOP's team: a recurrent softmax actor, the decomposed critic, on-policy TD(lambda)."""

    name: str
    hidden_dim: int  # GRU actor width
    critic_hidden_dim: int  # width of the per-agent critic's layers
    mixer_hidden_dim: int  # width of the networks that make k(s) and b(s)
    actor_lr: float
    critic_lr: float
    lr_final_frac: float  # both learning rates decay linearly to this fraction of their start
    rms_decay: float  # RMSprop's alpha
    grad_clip: float  # global-norm clip, of the actor's and the critic's gradients apart
    gamma: float
    td_lambda: float
    reward_scale: float  # rewards are multiplied by this in the critic's targets
    entropy_coef: float
    eps_start: float  # uniform exploration mixed into pi, linear in env steps
    eps_end: float
    eps_anneal_steps: int
    target_update_every: int  # gradient steps between hard copies of the critic's target
    epochs: int  # passes over each rollout
    minibatches: int  # per pass, each of num_envs / minibatches whole sequences
    num_envs: int
    rollout_len: int

    # the value learners' replay steps, which adv files (fgsm.yaml, ...) set: DOP has none
    foreign_keys: ClassVar[tuple[str, ...]] = ("updates_per_rollout",)

    def validate(self, run) -> None:
        require_positive(self, "alg.", ("hidden_dim", "critic_hidden_dim", "mixer_hidden_dim", "actor_lr", "critic_lr", "grad_clip", "reward_scale", "eps_anneal_steps", "target_update_every", "epochs", "minibatches", "num_envs", "rollout_len"))
        require_unit(self, "alg.", ("lr_final_frac", "rms_decay", "gamma", "td_lambda", "eps_start", "eps_end"))
        require(self.entropy_coef >= 0, f"alg.entropy_coef: must be >= 0, got {self.entropy_coef}")
        require(self.eps_end <= self.eps_start, f"alg.eps_end: must not exceed alg.eps_start ({self.eps_start}), got {self.eps_end}")
        require(self.num_envs % self.minibatches == 0, f"alg.minibatches: minibatches cut the rollout's alg.num_envs sequences; must divide {self.num_envs}, got {self.minibatches}")
        require(run.reg.name == "none", f"reg={run.reg.name}: the regularizers act on a value learner's utilities; alg=dop takes reg=none")
        for k in ("clean_td", "consistency"):
            require(getattr(run.protocol, k) == 0, f"protocol.{k}: a term of the value learners' TD loss; alg=dop needs 0, got {getattr(run.protocol, k)}")


class DecomposedCritic(nn.Module):
    """Per-agent utilities Q_i [..., N, A] from (s, o_i, id_i), and the mixing k(s) >= 0 [..., N], b(s) [...]."""

    hidden_dim: int
    mixer_hidden_dim: int
    num_actions: int

    @nn.compact
    def __call__(self, state: jax.Array, obs: jax.Array):
        n = obs.shape[-2]
        ids = jnp.broadcast_to(jnp.eye(n, dtype=obs.dtype), obs.shape[:-1] + (n,))
        x = jnp.concatenate([jnp.broadcast_to(state[..., None, :], obs.shape[:-1] + state.shape[-1:]), obs, ids], axis=-1)
        h = nn.relu(nn.Dense(self.hidden_dim, name="q_1")(x))
        h = nn.relu(nn.Dense(self.hidden_dim, name="q_2")(h))
        q = nn.Dense(self.num_actions, name="q_out")(h)
        k = jnp.abs(nn.Dense(n, name="k_out")(nn.relu(nn.Dense(self.mixer_hidden_dim, name="k_1")(state))))
        b = nn.Dense(1, name="b_out")(nn.relu(nn.Dense(self.mixer_hidden_dim, name="b_1")(state)))[..., 0]
        return q, k, b


def _rmsprop(lr: float, cfg: DOPConfig, total_updates: int) -> optax.GradientTransformation:
    schedule = optax.linear_schedule(lr, lr * cfg.lr_final_frac, max(1, total_updates))
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), optax.rmsprop(schedule, decay=cfg.rms_decay, eps=1e-5))


@LEARNERS.register("dop", DOPConfig)
class DOP(SoftmaxActorTeam):
    """Pure functions of one DOP learner; holds only static configuration."""

    has_action_advantages = True

    def __init__(self, cfg: DOPConfig, env: MarlEnv, total_iterations: int = 1, reg=None, eps=None, clean_td: float = 0.0, consistency: float = 0.0):
        """`total_iterations`: rollouts the run learns from. `reg`, `eps`, `clean_td`,
        `consistency` are the value learners' terms: DOPConfig.validate requires them off."""
        super().__init__(cfg, env)
        self.critic = DecomposedCritic(cfg.critic_hidden_dim, cfg.mixer_hidden_dim, env.num_actions)
        total = total_iterations * cfg.epochs * cfg.minibatches
        self.tx = optax.multi_transform({"actor": _rmsprop(cfg.actor_lr, cfg, total), "critic": _rmsprop(cfg.critic_lr, cfg, total)}, {"agent": "actor", "critic": "critic"})

    def init(self, key: jax.Array, learning: bool = False) -> ActorCriticState:
        k_agent, k_critic = jax.random.split(key)
        critic = self.critic.init(k_critic, jnp.zeros((self.state_dim,)), jnp.zeros((self.num_agents, self.obs_dim)))
        params = {"agent": self.init_actor(k_agent), "critic": critic}
        return ActorCriticState(params, self.tx.init(params), jnp.zeros((), jnp.int32), {"critic": critic}, jax.tree.map(jnp.zeros_like, params["agent"]))

    def exploration(self, env_steps: jax.Array) -> jax.Array:
        c = self.cfg
        return linear_schedule(env_steps, c.eps_start, c.eps_end, c.eps_anneal_steps)

    def joint_value(self, team, chosen, state):
        return None  # the saved team is its actors; the critic stays with the learner

    def action_advantages(self, team, obs: jax.Array, state: jax.Array, scores: jax.Array, avail: jax.Array):
        """k_i(s) (Q_i(s, o_i, a) - sum_b pi_i(b) Q_i(s, o_i, b)) [N, A]: the weighted advantage of
        every action in DOP's policy gradient (eq. 5), from the acting team's critic."""
        q, k, _ = self.critic.apply(team["critic"], state, obs)
        pi = jnp.exp(log_policy(scores, avail))
        return k[..., None] * (q - jnp.sum(pi * q, axis=-1, keepdims=True))

    # -- learning -----------------------------------------------------------------------
    def expected_value(self, critic_params, seqs: Sequence, log_pi: jax.Array) -> jax.Array:
        """V(s_t) = sum_i k_i(s_t) sum_a pi_i(a|tau_i) Q_i(s_t, o_i, a) + b(s_t) [B, T+1] at every
        view of batch-major sequences, log_pi [B, T+1, N, A] the actors' there."""
        q, k, b = self.critic.apply(critic_params, seqs.state, seqs.obs)
        return jnp.sum(k * jnp.sum(jnp.exp(log_pi) * q, axis=-1), axis=-1) + b

    def rollout_targets(self, state: ActorCriticState, seqs: Sequence) -> dict:
        """The rollout's TD(lambda) targets G [E, T] from the target critic (module docstring),
        with the sequences they belong to."""
        c = self.cfg
        _, log_pi, _ = self.log_probs(state.params["agent"], seqs, with_next=True)
        v_next = self.expected_value(state.target_params["critic"], seqs, log_pi)[:, 1:]
        g = lambda_returns(batch_major(seqs.reward) * c.reward_scale, batch_major(seqs.done), batch_major(v_next), c.gamma, c.td_lambda)
        return {"seq": seqs, "target": jax.lax.stop_gradient(batch_major(g))}

    def loss(self, params, batch: dict):
        """The critic's TD loss plus the actors' decomposed policy-gradient loss (module
        docstring) on a minibatch of whole sequences. Returns (loss, metrics)."""
        c = self.cfg
        seqs = batch["seq"]
        log_prob, log_pi, avail = self.log_probs(params["agent"], seqs)  # [B, T, N], [B, T, N, A]
        q, k, b = self.critic.apply(params["critic"], seqs.state[:, :-1], seqs.obs[:, :-1])
        q_taken = take(q, seqs.action)
        q_tot = jnp.sum(k * q_taken, axis=-1) + b
        td = jnp.mean(jnp.square(q_tot - batch["target"]))
        baseline = jnp.sum(jnp.exp(log_pi) * q, axis=-1)
        advantage = jax.lax.stop_gradient(k * (q_taken - baseline))  # k_i(s) A_i, DOP eq. 5
        actor = -jnp.mean(jnp.sum(advantage * log_prob, axis=-1))
        ent = weighted_mean(entropy(log_pi, avail))
        loss = td + actor - c.entropy_coef * ent
        return loss, {"td": td, "actor_loss": actor, "entropy": ent, "q_tot": jnp.mean(q_tot)}

    def learn(self, state: ActorCriticState, seqs: Sequence, iteration: jax.Array, key: jax.Array):
        """On-policy DOP on one rollout's sequences [E, ...]: `epochs` x `minibatches` steps of
        actor and critic, then the critic's target copied every `target_update_every` steps
        (counted in whole rollouts). Returns (state, metrics)."""
        c = self.cfg
        data = self.rollout_targets(state, seqs)
        params, opt_state, m = minibatch_epochs(self.loss, self.tx, state.params, state.opt_state, data, c.epochs, c.minibatches, key, keep_grads=True)
        steps = c.epochs * c.minibatches
        updates = state.updates + steps
        # A copy when this rollout's steps crossed a multiple of target_update_every.
        crossed = updates // c.target_update_every > state.updates // c.target_update_every
        target = jax.tree.map(lambda t, p: jnp.where(crossed, p, t), state.target_params, {"critic": params["critic"]})
        new = ActorCriticState(params, opt_state, updates, target, self.policy_gradient(m["grads"]["agent"]))
        metrics = {"loss": jnp.mean(m["td"]), "q_tot": jnp.mean(m["q_tot"]), "grad_norm": jnp.mean(m["grad_norm"]), "reg": jnp.zeros(()), "dropped": jnp.sum(m["dropped"])}
        return new, metrics
