"""IQL: independent Q-learners (Tan 1993; the recurrent, parameter-shared form of pymarl).

Each agent regresses its own utility of the action it took onto its own double-Q Q(lambda)
target from the team reward, G_i = r + gamma [(1 - lam) Q_i^tar(tau_i', argmax_a Q_i(tau_i', a))
+ lam G_i'], with no mixer: the team has no joint value. Everything else (the shared GRU agent,
replay of whole sequences with their context, target network, epsilon-greedy acting, the
regularizers) is the value-decomposition learner's, whose mixer is here the identity.
"""

from __future__ import annotations

import flax.linen as nn
import jax

from jarob.learners.base import LEARNERS
from jarob.learners.value_decomposition import QLearningConfig, ValueDecomposition


class IndependentValues(nn.Module):
    """The identity 'mixer': each agent's chosen utility is its own value, [..., N] -> [..., N]."""

    @nn.compact
    def __call__(self, qs: jax.Array, state: jax.Array) -> jax.Array:
        del state
        return qs


@LEARNERS.register("iql", QLearningConfig)
class IQL(ValueDecomposition):
    """Independent Q-learning over the shared recurrent agent."""

    def make_mixer(self, cfg):
        return IndependentValues()

    def joint_value(self, team, chosen, state):
        return None  # independent learners have no joint value

    def architecture(self) -> tuple:
        return ("iql", self.cfg.hidden_dim)
