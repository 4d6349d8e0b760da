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

Acting: with exploration level 1 (always, while learning) each agent samples from pi; the
trained team is greedy (the most likely available action), as every team is at evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jarob.config import require, require_positive
from jarob.envs import MarlEnv
from jarob.learners.base import LEARNERS, TeamLearner
from jarob.learners.optim import clipped_adam
from jarob.learners.ppo import Critic, PPOSettings, clipped_surrogate, gae, normalize, ppo_epochs, value_loss
from jarob.networks import RNNAgent, step_agent, unroll_sequence
from jarob.ops import mask_logits, masked_argmax, take, weighted_mean
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


@struct.dataclass
class PPOTeamState:
    params: dict  # {"agent": the actor, "critic": V(s)}
    opt_state: optax.OptState
    updates: jax.Array  # [] int32, gradient steps taken


def log_policy(logits: jax.Array, avail: jax.Array) -> jax.Array:
    """log pi(.|tau) [..., A]: log softmax of the logits over the available actions."""
    return jax.nn.log_softmax(mask_logits(logits, avail), axis=-1)


def entropy(log_pi: jax.Array, avail: jax.Array) -> jax.Array:
    """-sum_a pi(a) log pi(a) [...] over the available actions."""
    return -jnp.sum(jnp.where(avail, jnp.exp(log_pi) * log_pi, 0.0), axis=-1)


@LEARNERS.register("mappo", MAPPOConfig)
class MAPPO(TeamLearner):
    """Pure functions of one MAPPO learner; holds only static configuration."""

    def __init__(self, cfg: MAPPOConfig, env: MarlEnv, total_iterations: int = 1, reg=None, eps=None, clean_td: float = 0.0, consistency: float = 0.0):
        """`total_iterations`: rollouts the run learns from (the learning rate decays over their
        epochs x minibatches steps). `reg`, `eps`, `clean_td`, `consistency` are the value
        learners' terms: MAPPOConfig.validate requires them off."""
        self.cfg = cfg
        self.num_agents, self.num_actions = env.num_agents, env.num_actions
        self.obs_dim, self.state_dim = env.obs_dim, env.state_dim
        self.agent = RNNAgent(cfg.hidden_dim, env.num_actions)
        self.critic = Critic(cfg.critic_hidden_dim)
        self.tx = clipped_adam(cfg, total_iterations * cfg.epochs * cfg.minibatches)

    # -- parameters and acting ----------------------------------------------------------
    def init(self, key: jax.Array, learning: bool = False) -> PPOTeamState:
        """Fresh actor and critic (on-policy: nothing else to keep, whether learning or not)."""
        k_agent, k_critic = jax.random.split(key)
        x = jnp.zeros((self.num_agents, self.obs_dim + self.num_agents + self.num_actions))
        params = {
            "agent": self.agent.init(k_agent, self.initial_hidden((self.num_agents,)), x),
            "critic": self.critic.init(k_critic, jnp.zeros((self.state_dim,))),
        }
        return PPOTeamState(params, self.tx.init(params), jnp.zeros((), jnp.int32))

    def initial_hidden(self, batch_shape: tuple[int, ...]) -> jax.Array:
        return jnp.zeros(batch_shape + (self.cfg.hidden_dim,))

    def team(self, state: PPOTeamState) -> dict:
        """The trained team: the actor's parameters."""
        return {"agent": state.params["agent"]}

    acting_team = team  # on-policy: the team acts with the parameters it learns

    def with_team(self, state: PPOTeamState, team: dict) -> PPOTeamState:
        return state.replace(params={**state.params, **team})

    def policy(self, team, hidden, obs, last_action, first):
        """The policy view: (new hidden, logits [..., N, A]) of the team's actor."""
        return step_agent(self.agent, team["agent"], hidden, obs, last_action, first)

    def exploration(self, env_steps: jax.Array) -> jax.Array:
        """1 while learning: every action is sampled from pi (a frozen victim acts at level 0)."""
        return jnp.ones(())

    def explore(self, key: jax.Array, scores: jax.Array, avail: jax.Array, exploration: jax.Array) -> jax.Array:
        """Per agent, with probability `exploration` a sample of pi = softmax(logits) over the
        available actions, else the greedy action: level 1 is on-policy sampling, 0 greedy."""
        k_coin, k_sample = jax.random.split(key)
        sampled = jax.random.categorical(k_sample, mask_logits(scores, avail), axis=-1)
        coin = jax.random.uniform(k_coin, scores.shape[:-1]) < exploration
        return jnp.where(coin, sampled, masked_argmax(scores, avail))

    def architecture(self) -> tuple:
        return ("mappo", self.cfg.hidden_dim)

    # -- learning -----------------------------------------------------------------------
    def log_probs(self, agent_params, seqs: Sequence):
        """(log pi(a_t|tau_t) of the stored actions [B, T, N], log pi [B, T, N, A], avail [B, T, N, A])
        along batch-major sequences, the actor unrolled from their stored context."""
        seq = seqs.time_major()
        logits = unroll_sequence(agent_params, seqs.hidden, seq, self.num_actions)[:-1]
        log_pi = log_policy(logits, seq.avail[:-1])
        batch_major = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731
        return batch_major(take(log_pi, seq.action)), batch_major(log_pi), batch_major(seq.avail[:-1])

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
        swap = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731
        advantage, target = gae(swap(seqs.reward) * c.reward_scale, swap(values[:, :-1]), swap(seqs.done), values[:, -1], c.gamma, c.gae_lambda)
        log_prob = jax.lax.stop_gradient(self.log_probs(params["agent"], seqs)[0])
        return {"seq": seqs, "log_prob": log_prob, "value": values[:, :-1], "advantage": swap(advantage), "target": swap(target)}

    def learn(self, state: PPOTeamState, seqs: Sequence, iteration: jax.Array, key: jax.Array):
        """PPO on one rollout's sequences [E, ...]: `epochs` x `minibatches` gradient steps; a step
        that would leave non-finite state is dropped. Returns (state, metrics)."""
        c = self.cfg
        data = self.rollout_targets(state.params, seqs)
        params, opt_state, m = ppo_epochs(self.loss, self.tx, state.params, state.opt_state, data, c.epochs, c.minibatches, key)
        new = PPOTeamState(params, opt_state, state.updates + c.epochs * c.minibatches)
        metrics = {"loss": jnp.mean(m["loss"]), "q_tot": jnp.mean(m["value"]), "grad_norm": jnp.mean(m["grad_norm"]), "reg": jnp.zeros(()), "dropped": jnp.sum(m["dropped"])}
        return new, metrics
