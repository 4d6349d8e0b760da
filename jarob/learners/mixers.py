"""Value-decomposition mixers: Q_tot from per-agent chosen utilities and the world state."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class VDNMixer(nn.Module):
    """VDN: Q_tot = sum_i Q_i (the state is ignored)."""

    @nn.compact
    def __call__(self, qs: jax.Array, state: jax.Array) -> jax.Array:
        del state
        return jnp.sum(qs, axis=-1)


class QMixer(nn.Module):
    """QMIX's monotonic mixer (Rashid et al. 2018): dQ_tot/dQ_i >= 0 for every state.

    Hypernetworks map the state to non-negative weights (absolute values) of a two-layer
    mixing network with an ELU between the layers; biases are unconstrained.
    qs [..., N], state [..., S] -> Q_tot [...].
    """

    embed_dim: int = 32
    hypernet_hidden: int = 64

    @nn.compact
    def __call__(self, qs: jax.Array, state: jax.Array) -> jax.Array:
        n = qs.shape[-1]
        e = self.embed_dim

        def hyper(out: int, name: str) -> jax.Array:
            h = nn.relu(nn.Dense(self.hypernet_hidden, name=f"{name}_0")(state))
            return nn.Dense(out, name=f"{name}_1")(h)

        w1 = jnp.abs(hyper(n * e, "hyper_w1")).reshape(state.shape[:-1] + (n, e))
        b1 = nn.Dense(e, name="hyper_b1")(state)
        hidden = nn.elu(jnp.einsum("...n,...ne->...e", qs, w1) + b1)
        w2 = jnp.abs(hyper(e, "hyper_w2"))
        v = hyper(1, "hyper_v")[..., 0]
        return jnp.sum(hidden * w2, axis=-1) + v


def mixer_gradient(mixer: nn.Module, params, qs: jax.Array, state: jax.Array) -> jax.Array:
    """dQ_tot / dQ_i [..., N] at the utilities qs [..., N] and state [..., S]: 1 for VDN, >= 0
    for QMIX (its local exchange rate between an agent's utility and the team's value)."""
    return jax.grad(lambda q: jnp.sum(mixer.apply(params, q, state)))(qs)


MIXERS = {"vdn": VDNMixer, "qmix": QMixer}
