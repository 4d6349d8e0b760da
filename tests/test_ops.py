"""Masked action selection never picks an unavailable action."""

import jax
import jax.numpy as jnp
import numpy as np

from jarob.ops import epsilon_greedy, masked_argmax, uniform_available


def _random_masks(key, shape):
    avail = jax.random.bernoulli(key, 0.4, shape)
    return avail.at[..., 2].set(True)  # at least one action available per row


def test_masked_argmax_never_picks_unavailable():
    k_q, k_m = jax.random.split(jax.random.PRNGKey(0))
    avail = _random_masks(k_m, (1000, 6))
    q = jax.random.normal(k_q, (1000, 6)) + jnp.where(avail, 0.0, 1e6)  # unavailable look best
    a = np.asarray(masked_argmax(q, avail))
    assert np.all(np.asarray(avail)[np.arange(1000), a])


def test_masked_argmax_picks_best_available():
    q = jnp.array([[5.0, 1.0, 3.0], [-1.0, -7.0, -2.0]])
    avail = jnp.array([[False, True, True], [False, True, True]])
    np.testing.assert_array_equal(masked_argmax(q, avail), [2, 2])


def test_epsilon_greedy_and_uniform_respect_masks():
    k_q, k_m, k_a, k_u = jax.random.split(jax.random.PRNGKey(1), 4)
    avail = _random_masks(k_m, (2000, 6))
    q = jax.random.normal(k_q, (2000, 6)) + jnp.where(avail, 0.0, 1e6)
    for eps in (0.0, 0.5, 1.0):
        a = np.asarray(epsilon_greedy(k_a, q, avail, jnp.float32(eps)))
        assert np.all(np.asarray(avail)[np.arange(2000), a])
    u = np.asarray(uniform_available(k_u, avail))
    assert np.all(np.asarray(avail)[np.arange(2000), u])
    # uniform really explores: every available action of a fully available row shows up
    full = jnp.ones((4000, 6), bool)
    counts = np.bincount(np.asarray(uniform_available(k_u, full)), minlength=6)
    assert np.all(counts > 500)


def test_weighted_mean_by_hand():
    from jarob.ops import weighted_mean

    x = jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    assert float(weighted_mean(x)) == 3.5
    assert float(weighted_mean(x, jnp.array([1.0, 0.0, 1.0]))) == (1 + 2 + 5 + 6) / 4
    assert float(weighted_mean(x, jnp.zeros(3))) == 0.0
