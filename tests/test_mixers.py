"""Mixers: QMIX is monotonic in every agent's utility, VDN is the sum."""

import jax
import jax.numpy as jnp
import numpy as np

from jarob.learners.mixers import QMixer, VDNMixer


def test_qmix_monotonic_in_every_agent_utility():
    mixer = QMixer(embed_dim=8, hypernet_hidden=16)
    for seed in range(5):
        k_init, k_q, k_s = jax.random.split(jax.random.PRNGKey(seed), 3)
        params = mixer.init(k_init, jnp.zeros((3,)), jnp.zeros((7,)))
        qs = 5.0 * jax.random.normal(k_q, (64, 3))
        states = 3.0 * jax.random.normal(k_s, (64, 7))
        grads = jax.vmap(jax.grad(lambda q, s: mixer.apply(params, q, s)))(qs, states)
        assert np.all(np.asarray(grads) >= 0.0)
        # and increasing any one utility never lowers Q_tot
        base = mixer.apply(params, qs, states)
        for i in range(3):
            bumped = mixer.apply(params, qs.at[:, i].add(1.0), states)
            assert np.all(np.asarray(bumped) >= np.asarray(base) - 1e-5)


def test_qmix_depends_on_state():
    mixer = QMixer(embed_dim=8, hypernet_hidden=16)
    params = mixer.init(jax.random.PRNGKey(0), jnp.zeros((3,)), jnp.zeros((7,)))
    q = jnp.array([1.0, -2.0, 0.5])
    assert mixer.apply(params, q, jnp.zeros(7)) != mixer.apply(params, q, jnp.ones(7))


def test_vdn_is_the_sum():
    mixer = VDNMixer()
    params = mixer.init(jax.random.PRNGKey(0), jnp.zeros((3,)), jnp.zeros((2,)))
    q = jnp.array([[1.0, 2.0, -0.5], [0.0, 0.0, 4.0]])
    np.testing.assert_allclose(mixer.apply(params, q, jnp.zeros((2, 2))), [2.5, 4.0])


def test_mixer_gradient_vdn_ones_and_qmix_scale_freedom():
    """VDN: dQ_tot/dQ_i = 1. QMIX: the utilities scaled by c with the first mixing weights scaled
    by 1/c give the same Q_tot, and dQ_tot/dQ_i scales by 1/c, so (dQ_tot/dQ_i)^2 |dQ_i|^2 (ERNIE's
    mixer_l2 term) does not change while the plain |dQ_i|^2 shrinks by c^2."""
    from jarob.learners.mixers import mixer_gradient

    qs = jax.random.normal(jax.random.PRNGKey(1), (5, 3))
    states = jax.random.normal(jax.random.PRNGKey(2), (5, 7))
    vdn = VDNMixer()
    np.testing.assert_allclose(mixer_gradient(vdn, vdn.init(jax.random.PRNGKey(0), qs, states), qs, states), np.ones((5, 3)))

    mixer = QMixer(embed_dim=8, hypernet_hidden=16)
    params = mixer.init(jax.random.PRNGKey(0), jnp.zeros((3,)), jnp.zeros((7,)))
    c = 0.1
    scaled = jax.tree_util.tree_map_with_path(lambda path, x: x / c if "hyper_w1_1" in jax.tree_util.keystr(path) else x, params)
    np.testing.assert_allclose(mixer.apply(scaled, c * qs, states), mixer.apply(params, qs, states), rtol=1e-5, atol=1e-5)
    g, g_scaled = mixer_gradient(mixer, params, qs, states), mixer_gradient(mixer, scaled, c * qs, states)
    np.testing.assert_allclose(g_scaled, g / c, rtol=1e-4)
    dq = jax.random.normal(jax.random.PRNGKey(3), (5, 3))
    np.testing.assert_allclose(g_scaled**2 * (c * dq) ** 2, g**2 * dq**2, rtol=1e-4)
