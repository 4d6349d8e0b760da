"""The fast sequence form of the recurrent agent equals flax's GRUCell stepped one step at a time,
in its values and in its hand-written gradients."""

import jax
import jax.numpy as jnp
import numpy as np

from jarob.networks import RNNAgent, unroll


def reference_unroll(agent, params, h0, xs, firsts):
    def step(h, inp):
        x, first = inp
        return agent.apply(params, jnp.where(first[..., None], 0.0, h), x)

    h, qs = jax.lax.scan(step, h0, (xs, firsts))
    return qs, h


def test_unroll_equals_stepping_the_cell_values_and_gradients():
    t, b, n, d, hdim, a = 7, 3, 2, 5, 8, 4
    agent = RNNAgent(hdim, a)
    k = jax.random.split(jax.random.PRNGKey(0), 5)
    params = agent.init(k[0], jnp.zeros((n, hdim)), jnp.zeros((n, d)))
    h0 = jax.random.normal(k[1], (b, n, hdim))
    xs = jax.random.normal(k[2], (t, b, n, d))
    firsts = jax.random.bernoulli(k[3], 0.3, (t, b, n))
    weights = jax.random.normal(k[4], (t, b, n, a))

    q, hs = unroll(params, h0, xs, firsts)
    h = hs[-1]
    q_ref, h_ref = reference_unroll(agent, params, h0, xs, firsts)
    np.testing.assert_allclose(q, q_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h, h_ref, rtol=1e-5, atol=1e-6)

    def objective(fn):  # uses every output, and the final hidden state, non-uniformly
        def f(p, h0, xs):
            q, h = fn(agent, p, h0, xs, firsts)
            return jnp.sum(weights * q) + jnp.sum(jnp.sin(h))

        return jax.grad(f, argnums=(0, 1, 2))

    def fast(_, *args):
        q, hs = unroll(*args)
        return q, hs[-1]

    grads = objective(fast)(params, h0, xs)
    grads_ref = objective(reference_unroll)(params, h0, xs)
    for g, g_ref in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_ref)):
        np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-5)
