"""MAPPO (Yu et al. 2022): a shared recurrent softmax actor over each agent's available actions,
a centralized critic V(s) on the world state, trained on-policy with PPO.

After each rollout of `num_envs` x `rollout_len` steps: GAE advantages and lambda-return targets
from V (before the update, rewards x `reward_scale`, an episode end cuts both), then `epochs`
passes over the rollout's sequences in `minibatches` minibatches, each a step of

    L = PPO-clip(log pi(a|tau), log pi_old(a|tau), A normalised over the minibatch)
        + value_coef x the clipped value loss - entropy_coef x entropy(pi),

the actor unrolled over whole sequences from their stored GRU context (so pi_old, recomputed
from the stored sequences with the acting parameters, is exactly the policy that acted). The
advantage is the team's, shared by the agents; the actor sees its observation, its one-hot id
and its last action (the value learners' agent network, its outputs read as logits).

Acting: while learning each agent samples from pi; the trained team is greedy (the most likely
available action), as every team is at evaluation and as a frozen victim is under attack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp

from jarob.config import require, require_positive
from jarob.envs import MarlEnv
from jarob.learners.actor_critic import ActorCriticState, SoftmaxActorTeam, batch_major, entropy
from jarob.learners.base import LEARNERS
from jarob.learners.optim import clipped_adam
from jarob.learners.ppo import Critic, PPOSettings, clipped_surrogate, gae, minibatch_epochs, normalize, value_loss
from jarob.ops import weighted_mean
from jarob.sequence import Sequence


@dataclass(frozen=True)
class MAPPOConfig(PPOSettings):
    """MAPPO's team: the PPO settings plus its networks, its value clip and its rollout."""

    # the value learners' replay steps, which adv files (fgsm.yaml, ...) set: MAPPO has none
    foreign_keys: ClassVar[tuple[str, ...]] = ("updates_per_rollout",)

    name: str = "mappo"
    hidden_dim: int = 64  # GRU actor width
    critic_hidden_dim: int = 128  # width of the critic's two layers
    value_clip: float = 0.2  # PPO's value clip around the rollout's V; 0 = unclipped
    num_envs: int = 64  # parallel environments per seed
    rollout_len: int = 128  # steps per env per rollout: one sequence; minibatches cut whole sequences

    def validate(self, run) -> None:
        self.validate_ppo("alg.")
        require_positive(self, "alg.", ("hidden_dim", "critic_hidden_dim", "num_envs", "rollout_len"))
        require(self.value_clip >= 0, f"alg.value_clip: must be >= 0, got {self.value_clip}")
        require(self.num_envs % self.minibatches == 0, f"alg.minibatches: minibatches cut the rollout's alg.num_envs sequences; must divide {self.num_envs}, got {self.minibatches}")
        require(run.reg.name == "none", f"reg={run.reg.name}: the regularizers act on a value learner's utilities; alg=mappo takes reg=none")
        for k in ("clean_td", "consistency"):
            require(getattr(run.protocol, k) == 0, f"protocol.{k}: a term of the value learners' TD loss; alg=mappo needs 0, got {getattr(run.protocol, k)}")


@LEARNERS.register("mappo", MAPPOConfig)
class MAPPO(SoftmaxActorTeam):
    """Pure functions of one MAPPO learner; holds only static configuration."""

    def __init__(self, cfg: MAPPOConfig, env: MarlEnv, total_iterations: int = 1, reg=None, eps=None, clean_td: float = 0.0, consistency: float = 0.0):
        """`total_iterations`: rollouts the run learns from (the learning rate decays over their
        epochs x minibatches steps). `reg`, `eps`, `clean_td`, `consistency` are the value
        learners' terms: MAPPOConfig.validate requires them off."""
        super().__init__(cfg, env)
        self.critic = Critic(cfg.critic_hidden_dim)
        self.tx = clipped_adam(cfg, total_iterations * cfg.epochs * cfg.minibatches)

    def init(self, key: jax.Array, learning: bool = False) -> ActorCriticState:
        """Fresh actor and critic (on-policy: nothing else to keep, whether learning or not)."""
        k_agent, k_critic = jax.random.split(key)
        params = {"agent": self.init_actor(k_agent), "critic": self.critic.init(k_critic, jnp.zeros((self.state_dim,)))}
        return ActorCriticState(params, self.tx.init(params), jnp.zeros((), jnp.int32), policy_grad=jax.tree.map(jnp.zeros_like, params["agent"]))

    # -- learning -----------------------------------------------------------------------
    def loss(self, params, batch: dict):
        """MAPPO's loss on a minibatch of whole sequences (module docstring). Returns (loss, metrics)."""
        c = self.cfg
        log_prob, log_pi, avail = self.log_probs(params["agent"], batch["seq"])
        advantages = normalize(batch["advantage"], None)[..., None]  # [B, T, 1]: the team's, shared by its agents
        policy_loss = clipped_surrogate(log_prob, batch["log_prob"], advantages, c.clip, None)
        values = self.critic.apply(params["critic"], batch["seq"].state[:, :-1])
        v_loss = value_loss(values, batch["target"], None, batch["value"], c.value_clip)
        ent = weighted_mean(entropy(log_pi, avail))
        loss = policy_loss + c.value_coef * v_loss - c.entropy_coef * ent
        return loss, {"policy_loss": policy_loss, "value_loss": v_loss, "entropy": ent, "value": jnp.mean(values)}

    def rollout_targets(self, params, seqs: Sequence) -> dict:
        """What a rollout's minibatches learn from: the sequences, the acting policy's log-probs,
        V(s) before the update, GAE advantages and lambda-return targets (every leaf [E, ...])."""
        c = self.cfg
        values = self.critic.apply(params["critic"], seqs.state)  # [E, T+1]
        advantage, target = gae(batch_major(seqs.reward) * c.reward_scale, batch_major(values[:, :-1]), batch_major(seqs.done), values[:, -1], c.gamma, c.gae_lambda)
        log_prob = jax.lax.stop_gradient(self.log_probs(params["agent"], seqs)[0])
        return {"seq": seqs, "log_prob": log_prob, "value": values[:, :-1], "advantage": batch_major(advantage), "target": batch_major(target)}

    def learn(self, state: ActorCriticState, seqs: Sequence, iteration: jax.Array, key: jax.Array):
        """PPO on one rollout's sequences [E, ...]: `epochs` x `minibatches` gradient steps; a step
        that would leave non-finite state is dropped. Returns (state, metrics)."""
        c = self.cfg
        data = self.rollout_targets(state.params, seqs)
        params, opt_state, m = minibatch_epochs(self.loss, self.tx, state.params, state.opt_state, data, c.epochs, c.minibatches, key, keep_grads=True)
        new = ActorCriticState(params, opt_state, state.updates + c.epochs * c.minibatches, policy_grad=self.policy_gradient(m["grads"]["agent"]))
        metrics = {"loss": jnp.mean(m["loss"]), "q_tot": jnp.mean(m["value"]), "grad_norm": jnp.mean(m["grad_norm"]), "reg": jnp.zeros(()), "dropped": jnp.sum(m["dropped"])}
        return new, metrics
