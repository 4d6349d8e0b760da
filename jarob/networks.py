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


def step_agent(agent: RNNAgent, params, hidden: jax.Array, obs: jax.Array, last_action: jax.Array, first: jax.Array):
    """One acting step of every agent: the hidden state reset where `first` [...] starts an
    episode, then (new hidden [..., N, H], outputs [..., N, A]) for obs [..., N, O]."""
    hidden = jnp.where(first[..., None, None], 0.0, hidden)
    return agent.apply(params, hidden, agent_inputs(obs, last_action, agent.num_actions))


def unroll(params, h0: jax.Array, xs: jax.Array, firsts: jax.Array):
    """Run an RNNAgent with parameters `params` over time (leading axis of xs [T, ..., D]),
    zeroing the hidden state where firsts [T, ...] marks the first step of an episode. Returns
    Q [T, ..., A] and the hidden states after every step [T, ..., H].

    Computes what stepping `RNNAgent.apply` would (up to float rounding), faster: the input layers
    act on all T steps at once, and the recurrence is `gru_scan`, whose backward pass is written
    by hand. It reads RNNAgent's parameters by their layer names (fc_in, gru, fc_out);
    tests/test_networks.py holds the two forms equal."""
    p = params["params"]
    g = p["gru"]
    x = nn.relu(xs @ p["fc_in"]["kernel"] + p["fc_in"]["bias"])
    gi = tuple(x @ g[k]["kernel"] + g[k]["bias"] for k in ("ir", "iz", "in"))
    w_h = tuple(g[k]["kernel"] for k in ("hr", "hz", "hn"))
    hs = gru_scan(gi, firsts, h0, w_h, g["hn"]["bias"])
    return hs @ p["fc_out"]["kernel"] + p["fc_out"]["bias"], hs


def unroll_sequence(params, h0: jax.Array, seq, num_actions: int, with_context: bool = False):
    """Utilities along stored sequences (jarob.sequence.Sequence), time-major: seq leaves are
    [T(+1), B, ...], h0 [B, N, H] the context before the first step; returns Q [T+1, B, N, A]
    and, `with_context`, also the hidden state each step starts from [T+1, B, N, H] (before the
    reset at an episode's first step)."""
    xs = agent_inputs(seq.obs, seq.last_action, num_actions)
    firsts = jnp.broadcast_to(seq.first[..., None], seq.last_action.shape)
    q, hs = unroll(params, h0, xs, firsts)
    if not with_context:
        return q
    return q, jnp.concatenate([h0[None], hs[:-1]], axis=0)


def _gru_step(h, gi, first, w_h, b_hn):
    """One flax GRUCell step from the input projections gi = (r, z, n) [..., H] (input biases
    included) after the episode reset; returns the new hidden state and what the backward pass
    needs."""
    h = jnp.where(first[..., None], 0.0, h)
    r = jax.nn.sigmoid(gi[0] + h @ w_h[0])
    z = jax.nn.sigmoid(gi[1] + h @ w_h[1])
    hn = h @ w_h[2] + b_hn
    n = jnp.tanh(gi[2] + r * hn)
    return (1.0 - z) * n + z * h, (h, r, z, n, hn)


@jax.custom_vjp
def gru_scan(gi, firsts: jax.Array, h0: jax.Array, w_h, b_hn: jax.Array) -> jax.Array:
    """The hidden states [T, ..., H] of flax's GRUCell run over precomputed input projections
    gi = (r, z, n) gates [T, ..., H] each, resetting to zero where firsts [T, ...]; w_h = the
    recurrent kernels (hr, hz, hn) [H, H], b_hn the bias of hn."""

    def step(h, inp):
        new, _ = _gru_step(h, inp[0], inp[1], w_h, b_hn)
        return new, new

    return jax.lax.scan(step, h0, (gi, firsts))[1]


def _gru_fwd(gi, firsts, h0, w_h, b_hn):
    def step(h, inp):
        new, res = _gru_step(h, inp[0], inp[1], w_h, b_hn)
        return new, (new, res)

    _, (hs, res) = jax.lax.scan(step, h0, (gi, firsts))
    return hs, (res, firsts, w_h)


def _gru_bwd(saved, d_hs):
    """Reverse scan carrying dL/dh: per step three [.., H] x [H, H] products; the weight
    gradients are single contractions over all steps afterwards."""
    (h_prev, r, z, n, hn), firsts, w_h = saved

    def step(dh_next, inp):
        dh_out, hp, r, z, n, hn, first = inp
        dh = dh_next + dh_out
        dn = dh * (1.0 - z) * (1.0 - n * n)
        dz = dh * (hp - n) * z * (1.0 - z)
        dr = dn * hn * r * (1.0 - r)
        dhn = dn * r
        dhp = dh * z + dr @ w_h[0].T + dz @ w_h[1].T + dhn @ w_h[2].T
        return jnp.where(first[..., None], 0.0, dhp), (dr, dz, dn, dhn)

    dh0, (dr, dz, dn, dhn) = jax.lax.scan(step, jnp.zeros_like(h_prev[0]), (d_hs, h_prev, r, z, n, hn, firsts), reverse=True)
    lead = "abcdefg"[: h_prev.ndim - 1]
    d_wh = tuple(jnp.einsum(f"{lead}h,{lead}k->hk", h_prev, d) for d in (dr, dz, dhn))
    d_bhn = jnp.sum(dhn, axis=tuple(range(dhn.ndim - 1)))
    return (dr, dz, dn), None, dh0, d_wh, d_bhn


gru_scan.defvjp(_gru_fwd, _gru_bwd)
