"""A team learner in ~30 lines: VDN with a state-value bias, Q_tot = sum_i Q_i + V(s) (the
"VDN-S" of pymarl2), from the value-decomposition learner with a mixer of its own.

A learner registers itself with the config dataclass it owns; `alg=vdn_s` then works wherever a
learner is named (with a configs/alg/vdn_s.yaml for the command line). Everything the trainer,
the rollout, the attacks and the evaluator need (the policy view, exploring and greedy acting,
`learn`, the saved team, `joint_value`) comes from `ValueDecomposition`; a family that does not
learn by value decomposition implements the protocol of `jarob/learners/base.py` instead.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jarob.learners import LEARNERS
from jarob.learners.value_decomposition import ValueDecomposition, ValueDecompositionConfig


class StateBiasedSum(nn.Module):
    """Q_tot = sum_i Q_i + V(s), V an MLP on the world state."""

    hidden: int

    @nn.compact
    def __call__(self, qs: jax.Array, state: jax.Array) -> jax.Array:
        v = nn.Dense(1)(nn.relu(nn.Dense(self.hidden)(state)))[..., 0]
        return jnp.sum(qs, axis=-1) + v


@LEARNERS.register("vdn_s", ValueDecompositionConfig)
class VDNStateBias(ValueDecomposition):
    def make_mixer(self, cfg):
        return StateBiasedSum(cfg.mixer_embed_dim)
