"""The protagonist's shared recurrent agent network (pymarl's RNNAgent)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class RNNAgent(nn.Module):
    """Dense -> ReLU -> GRU -> Dense: one step of per-agent utilities Q_i(tau_i, .).

    Parameters are shared by all agents; the agent id (one-hot) is part of the input.
    """

    hidden_dim: int
    num_actions: int

    @nn.compact
    def __call__(self, hidden: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = nn.relu(nn.Dense(self.hidden_dim, name="fc_in")(x))
        hidden, x = nn.GRUCell(features=self.hidden_dim, name="gru")(hidden, x)
        return hidden, nn.Dense(self.num_actions, name="fc_out")(x)


def agent_inputs(obs: jax.Array, last_action: jax.Array, num_actions: int) -> jax.Array:
    """Concatenate obs [..., N, O], one-hot agent ids and one-hot last actions (-1 = none)."""
    n = obs.shape[-2]
    ids = jnp.broadcast_to(jnp.eye(n, dtype=obs.dtype), obs.shape[:-1] + (n,))
    last = jax.nn.one_hot(last_action, num_actions, dtype=obs.dtype)
    return jnp.concatenate([obs, ids, last], axis=-1)


def unroll(agent: RNNAgent, params, h0: jax.Array, xs: jax.Array, firsts: jax.Array):
    """Run the agent over time (leading axis of xs [T, ..., D]), zeroing the hidden state where
    firsts [T, ...] marks the first step of an episode. Returns Q [T, ..., A] and the last hidden."""

    def step(h, inp):
        x, first = inp
        h = jnp.where(first[..., None], 0.0, h)
        h, q = agent.apply(params, h, x)
        return h, q

    h, qs = jax.lax.scan(step, h0, (xs, firsts))
    return qs, h
