"""What the policy-gradient teams (MAPPO, DOP) share: a recurrent softmax actor over each agent's
available actions (the value learners' agent network, its outputs read as logits; parameters
shared by the agents, its input the observation, the one-hot id and the last action), on-policy
sampling while learning (optionally mixed with uniform exploration), greedy acting once trained, and the log-probabilities of stored sequences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jarob.envs import MarlEnv
from jarob.learners.base import TeamLearner
from jarob.networks import RNNAgent, step_agent, unroll_sequence
from jarob.ops import mask_logits, take, uniform_available
from jarob.sequence import Sequence


@struct.dataclass
class ActorCriticState:
    params: dict  # {"agent": the actor, "critic": ...}
    opt_state: optax.OptState
    updates: jax.Array  # [] int32, gradient steps taken
    target_params: dict | None = None  # a critic's target network (None where the family has none)
    policy_grad: dict | None = None  # the ascent direction of J the last update followed, for the actor (TRAM's J-based attack)


def log_policy(logits: jax.Array, avail: jax.Array) -> jax.Array:
    """log pi(.|tau) [..., A]: log softmax of the logits over the available actions."""
    return jax.nn.log_softmax(mask_logits(logits, avail), axis=-1)


def entropy(log_pi: jax.Array, avail: jax.Array) -> jax.Array:
    """-sum_a pi(a) log pi(a) [...] over the available actions."""
    return -jnp.sum(jnp.where(avail, jnp.exp(log_pi) * log_pi, 0.0), axis=-1)


def batch_major(x: jax.Array) -> jax.Array:
    return jnp.swapaxes(x, 0, 1)


class SoftmaxActorTeam(TeamLearner):
    """A team acting with a shared recurrent softmax actor; subclasses add a critic and `learn`."""

    samples_softmax = True  # it samples its actions from softmax(logits): a training-time attack's target (TRAM)
    has_action_advantages = False  # its critic gives per-action advantages (`action_advantages`)

    def __init__(self, cfg, env: MarlEnv):
        self.cfg = cfg
        self.num_agents, self.num_actions = env.num_agents, env.num_actions
        self.obs_dim, self.state_dim = env.obs_dim, env.state_dim
        self.agent = RNNAgent(cfg.hidden_dim, env.num_actions)

    def init_actor(self, key: jax.Array) -> dict:
        x = jnp.zeros((self.num_agents, self.obs_dim + self.num_agents + self.num_actions))
        return self.agent.init(key, self.initial_hidden((self.num_agents,)), x)

    def initial_hidden(self, batch_shape: tuple[int, ...]) -> jax.Array:
        return jnp.zeros(batch_shape + (self.cfg.hidden_dim,))

    def team(self, state: ActorCriticState) -> dict:
        """The trained team: the actor's parameters."""
        return {"agent": state.params["agent"]}

    def acting_team(self, state: ActorCriticState) -> dict:
        """The team as it acts while it learns (on-policy: the parameters it learns), with its
        critic and its last policy gradient, which a training-time adversary may read."""
        return {**state.params, "policy_grad": state.policy_grad}

    def with_team(self, state: ActorCriticState, team: dict) -> ActorCriticState:
        return state.replace(params={**state.params, "agent": team["agent"]})

    @staticmethod
    def policy_gradient(agent_grads) -> dict:
        """The ascent direction of J from the mean gradient of the actor's loss (its negative)."""
        return jax.tree.map(jnp.negative, agent_grads)

    def policy(self, team, hidden, obs, last_action, first):
        """The policy view: (new hidden, logits [..., N, A]) of the team's actor."""
        return step_agent(self.agent, team["agent"], hidden, obs, last_action, first)

    def exploration(self, env_steps: jax.Array) -> jax.Array:
        """The weight of uniform exploration mixed into pi while learning (0: on-policy sampling)."""
        return jnp.zeros(())

    def explore(self, key: jax.Array, scores: jax.Array, avail: jax.Array, exploration: jax.Array) -> jax.Array:
        """Per agent, a sample of (1 - e) pi + e uniform over the available actions, pi =
        softmax(logits), e = `exploration` (pymarl's exploration of policy-gradient agents)."""
        k_coin, k_sample, k_uniform = jax.random.split(key, 3)
        sampled = jax.random.categorical(k_sample, mask_logits(scores, avail), axis=-1)
        coin = jax.random.uniform(k_coin, scores.shape[:-1]) < exploration
        return jnp.where(coin, uniform_available(k_uniform, avail), sampled)

    def architecture(self) -> tuple:
        return (self.cfg.name, self.cfg.hidden_dim)

    def log_probs(self, agent_params, seqs: Sequence, with_next: bool = False):
        """(log pi(a_t|tau_t) of the stored actions [B, T, N], log pi [B, T, N, A], avail [B, T, N, A])
        along batch-major sequences, the actor unrolled from their stored context; `with_next`
        keeps log pi and avail at the view after the last step too ([B, T+1, ...])."""
        seq = seqs.time_major()
        log_pi = log_policy(unroll_sequence(agent_params, seqs.hidden, seq, self.num_actions), seq.avail)
        taken = take(log_pi[:-1], seq.action)
        end = None if with_next else -1
        return batch_major(taken), batch_major(log_pi[:end]), batch_major(seq.avail[:end])
