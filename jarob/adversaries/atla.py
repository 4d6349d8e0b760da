"""ATLA: a learned observation adversary trained with MAPPO (qmix_state_adversarial_robustness.txt
IV.C, Algorithm 1; ATSA appendix H.2; DESIGN.md section 4).

Per agent i the adversary's policy is a Gaussian over a pre-tanh perturbation u_i, from an MLP on
the clean observation o_i and the agent id (parameters shared by the agents, as in MAPPO); the
team sees o~_i = proj(o_i + eps * tanh(u_i)) on perturbable features (the other features of u_i
do nothing and are left out of its log-probability). Its reward is -r, a centralized critic V(s)
on the world state gives GAE advantages, and PPO-clip updates actor and critic on every rollout
it learns from (the attacked episodes only). As an attacker (test mode) it plays u_i = the mean.
Alternating phases with the team are the trainer's business (`protocol.alternate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from jarob.adversaries.base import ADVERSARIES, ObservationAdversary, TeamView
from jarob.config import require, require_positive
from jarob.learners.optim import clipped_adam
from jarob.learners.ppo import Critic, PPOSettings, clipped_surrogate, gae, minibatch_epochs, normalize, value_loss
from jarob.ops import weighted_mean


@dataclass(frozen=True)
class PPOConfig(PPOSettings):
    """ATLA's MAPPO observation adversary: a Gaussian policy over each agent's perturbation
    (an MLP on the clean observation and the agent id), a centralized critic V(s), PPO-clip;
    its reward is -r * reward_scale."""

    hidden_dim: int = 64  # width of the two hidden layers of the actor and of the critic
    init_log_std: float = 0.0  # initial log standard deviation of the pre-tanh Gaussian (state independent)


@dataclass(frozen=True)
class ATLAConfig:
    name: str
    ppo: PPOConfig

    def validate(self, run) -> None:
        p = self.ppo
        p.validate_ppo("adv.ppo.")
        require_positive(p, "adv.ppo.", ("hidden_dim",))
        samples = run.alg.num_envs * run.alg.rollout_len
        require(samples % p.minibatches == 0, f"adv.ppo.minibatches: must divide alg.num_envs * alg.rollout_len ({samples}), got {p.minibatches}")
        require(run.protocol.attack_prob > 0.0, f"protocol.attack_prob: a learned adversary learns from the episodes it attacks; must be > 0, got {run.protocol.attack_prob}")


class PerturbationPolicy(nn.Module):
    """(mean, log std) [..., O] of the pre-tanh Gaussian over an agent's perturbation; the log std
    is a learned vector, independent of the input."""

    hidden_dim: int
    obs_dim: int
    init_log_std: float

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = nn.tanh(nn.Dense(self.hidden_dim)(x))
        h = nn.tanh(nn.Dense(self.hidden_dim)(h))
        mean = nn.Dense(self.obs_dim, kernel_init=nn.initializers.orthogonal(0.01))(h)
        log_std = self.param("log_std", nn.initializers.constant(self.init_log_std), (self.obs_dim,))
        return mean, jnp.broadcast_to(log_std, mean.shape)


@ADVERSARIES.register("atla", ATLAConfig)
class ATLA(ObservationAdversary):
    """adv_state: {"eps", "params" ({"actor", "critic"}), "steps"} and, when built for training
    (`layout` given), {"opt"}."""

    learned = True

    def __init__(self, cfg, env, eps: float, layout: tuple[int, int, int] | None = None):
        """`layout` = (num_envs, rollout_len, total_iterations) of the training run, if any."""
        super().__init__(cfg, env, eps)
        p = cfg.ppo
        self.num_agents, self.obs_dim, self.state_dim = env.num_agents, env.obs_dim, env.state_dim
        self.mask = jnp.asarray(self.spec.mask)
        self.actor = PerturbationPolicy(p.hidden_dim, env.obs_dim, p.init_log_std)
        self.critic = Critic(p.hidden_dim)
        self.layout = layout
        self.tx = clipped_adam(p, (layout[2] if layout else 1) * p.epochs * p.minibatches)

    # -- state --------------------------------------------------------------------------
    def init(self, key: jax.Array, eps=None) -> dict:
        state = super().init(key, eps)
        k_actor, k_critic = jax.random.split(key)
        params = {
            "actor": self.actor.init(k_actor, self._inputs(jnp.zeros((self.num_agents, self.obs_dim)))),
            "critic": self.critic.init(k_critic, jnp.zeros((self.state_dim,))),
        }
        state.update(params=params, steps=jnp.zeros((), jnp.int32))
        if self.layout is not None:
            state.update(opt=self.tx.init(params))
        return state

    # -- the policy ---------------------------------------------------------------------
    def _inputs(self, obs: jax.Array) -> jax.Array:
        """[..., N, O + N]: each agent's clean observation and its one-hot id."""
        ids = jnp.broadcast_to(jnp.eye(self.num_agents, dtype=obs.dtype), obs.shape[:-1] + (self.num_agents,))
        return jnp.concatenate([obs, ids], axis=-1)

    def policy(self, actor_params, obs: jax.Array) -> distrax.Normal:
        """The Gaussian over u [..., N, O] given the clean observations [..., N, O]."""
        mean, log_std = self.actor.apply(actor_params, self._inputs(obs))
        return distrax.Normal(mean, jnp.exp(log_std))

    def log_prob(self, dist: distrax.Normal, u: jax.Array) -> jax.Array:
        """log f(u_i | o_i) [..., N], over the perturbable features only."""
        return jnp.sum(jnp.where(self.mask, dist.log_prob(u), 0.0), axis=-1)

    def entropy(self, dist: distrax.Normal) -> jax.Array:
        """Entropy of u_i's Gaussian [..., N], over the perturbable features only."""
        return jnp.sum(jnp.where(self.mask, dist.entropy(), 0.0), axis=-1)

    def realise(self, obs: jax.Array, u: jax.Array, eps: jax.Array) -> jax.Array:
        """o~ = proj(o + eps * tanh(u)) onto B_eps(o) ∩ the valid range, perturbable features only."""
        return self.spec.project(obs, obs + eps * jnp.tanh(u), eps)

    # -- acting -------------------------------------------------------------------------
    def act(self, adv_state, carry, obs: jax.Array, view: TeamView, key: jax.Array, train: bool = False):
        """u ~ f(.|o) in training (the mean in test mode); records u and its log-probability."""
        dist = self.policy(adv_state["params"]["actor"], obs)
        u = dist.sample(seed=key) if train else dist.loc
        return self.realise(obs, u, adv_state["eps"]), carry, {"u": u, "log_prob": self.log_prob(dist, u)}

    # -- learning -----------------------------------------------------------------------
    def loss(self, params, batch: dict):
        """PPO-clip on the attacked samples of a minibatch: clipped surrogate (advantages
        normalised over the minibatch, shared by the agents) + value_coef * squared value error -
        entropy_coef * entropy. Returns (loss, metrics)."""
        p = self.cfg.ppo
        w = batch["weight"]
        dist = self.policy(params["actor"], batch["obs"])
        advantages = normalize(batch["advantage"], w)[:, None]
        policy_loss = clipped_surrogate(self.log_prob(dist, batch["u"]), batch["log_prob"], advantages, p.clip, w)
        v_loss = value_loss(self.critic.apply(params["critic"], batch["state"]), batch["target"], w)
        entropy = weighted_mean(self.entropy(dist), w)
        loss = policy_loss + p.value_coef * v_loss - p.entropy_coef * entropy
        return loss, {"policy_loss": policy_loss, "value_loss": v_loss, "entropy": entropy}

    def update(self, adv_state: dict, records, carry0: dict, actor_end, index: jax.Array, env_steps: jax.Array, key: jax.Array):
        """GAE on the rollout (reward -r * reward_scale, V(s) from the critic before the update),
        then `epochs` passes of `minibatches` PPO steps over its env steps, learning from the
        attacked ones only; a step that would leave non-finite state is dropped (`keep_if_finite`).
        Returns (adv_state, metrics)."""
        p = self.cfg.ppo
        params = adv_state["params"]
        values = self.critic.apply(params["critic"], records.state)  # [T, E]
        last_value = self.critic.apply(params["critic"], actor_end.ts.state)  # [E]
        advantage, target = gae(-records.reward * p.reward_scale, values, records.done, last_value, p.gamma, p.gae_lambda)
        data = {
            "obs": records.clean_obs,
            "state": records.state,
            "u": records.adv_out["u"],
            "log_prob": records.adv_out["log_prob"],
            "advantage": advantage,
            "target": target,
            "weight": records.attacked.astype(jnp.float32),
        }
        n = advantage.size
        data = jax.tree.map(lambda x: x.reshape((n,) + x.shape[2:]), data)
        params, opt, m = minibatch_epochs(self.loss, self.tx, params, adv_state["opt"], data, p.epochs, p.minibatches, key)
        new = {**adv_state, "params": params, "opt": opt, "steps": env_steps}
        return new, {"adv_loss": jnp.mean(m["loss"]), "adv_dropped": jnp.sum(m["dropped"])}
