"""jarob.envs: the array API, auto-reset semantics, episode statistics and perturbation specs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fakes import CountingEnv

from jarob import envs
from jarob.ops import uniform_available

SMAX_SHAPES = {  # (agents, obs, actions), DESIGN.md section 7
    "smax_3m": (3, 75, 8),
    "smax_8m": (8, 205, 13),
    "smax_2s3z": (5, 127, 10),
    "smax_3s_vs_3z": (3, 75, 8),
    "smax_2m_vs_1z": (2, 36, 6),
}


@pytest.mark.parametrize("name", envs.ENV_NAMES)
def test_shapes_and_spec(name):
    if name == "highway_merge":
        pytest.importorskip("highway_env", reason="highway-env is not installed")
    env = envs.make(name)
    if envs.is_host_env(env):  # a host env: a numpy view, the same sizes declared
        view = env.reset(0)
        assert view["obs"].shape == (env.num_agents, env.obs_dim) and view["obs"].dtype == np.float32
        assert view["avail"].shape == (env.num_agents, env.num_actions) and view["state"].shape == (env.state_dim,)
        env.close()
        return
    _, ts = jax.jit(env.reset)(jax.random.PRNGKey(0))
    n, o, a = env.num_agents, env.obs_dim, env.num_actions
    assert ts.obs.shape == (n, o) and ts.obs.dtype == jnp.float32
    assert ts.avail.shape == (n, a) and ts.avail.dtype == jnp.bool_
    assert ts.state.shape == (env.state_dim,)
    assert bool(ts.first) and not bool(ts.done)
    spec = env.perturbation
    assert spec.mask.shape == spec.low.shape == spec.high.shape == (o,)
    if name in SMAX_SHAPES:
        assert (n, o, a) == SMAX_SHAPES[name]
        assert env.has_win
        # observations lie in the declared ranges
        assert np.all(np.asarray(ts.obs) >= spec.low - 1e-6) and np.all(np.asarray(ts.obs) <= spec.high + 1e-6)
    if name == "mpe_tag":
        assert (n, o, a) == (3, 16, 5)


def test_unknown_env_lists_known_ones():
    with pytest.raises(envs.UnknownEnvError, match="smax_3m"):
        envs.make("smax_99m")


def test_smax_unit_type_bits_are_never_perturbable():
    env = envs.make("smax_3m")
    mask = env.perturbation.mask
    # 5 other units x 13 features (7 continuous + 6 type bits), then own 10 (4 + 6 type bits)
    for u in range(5):
        block = mask[13 * u : 13 * (u + 1)]
        assert block[:7].all() and not block[7:].any()
    assert mask[65:69].all() and not mask[69:].any()


def _random_episode(env, key, steps):
    def body(carry, k):
        s, ts = carry
        k_a, k_s = jax.random.split(k)
        a = uniform_available(k_a, ts.avail)
        s, ts = env.step(k_s, s, a)
        return (s, ts), ts

    s, ts = env.reset(key)
    _, tss = jax.lax.scan(body, (s, ts), jax.random.split(key, steps))
    return tss


def test_smax_episode_statistics_and_autoreset():
    env = envs.make("smax_3m")
    tss = jax.jit(lambda k: _random_episode(env, k, 150))(jax.random.PRNGKey(3))
    done = np.asarray(tss.done)
    assert done.any()
    t_end = int(np.argmax(done))
    # the episode's return is the sum of its rewards; first follows done
    np.testing.assert_allclose(tss.ep_return[t_end], np.sum(tss.reward[: t_end + 1]), rtol=1e-5)
    assert int(tss.ep_length[t_end]) == t_end + 1
    np.testing.assert_array_equal(tss.first, tss.done)
    assert np.all(np.asarray(tss.ep_length)[done] <= env.max_steps)
    # SMAX returns lie in [0, 2]; a win pays the +1 bonus
    rets = np.asarray(tss.ep_return)[done]
    assert np.all((rets >= 0) & (rets <= 2 + 1e-5))
    won = np.asarray(tss.won)[done]
    assert np.all(rets[won] >= 1.0)


def test_fake_env_counts():
    env = CountingEnv(length=3)
    tss = _random_episode(env, jax.random.PRNGKey(0), 7)
    np.testing.assert_array_equal(tss.reward, [1, 2, 3, 1, 2, 3, 1])
    np.testing.assert_array_equal(tss.done, [0, 0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(np.asarray(tss.ep_return)[np.asarray(tss.done)], [6, 6])


def test_mpe_tag_prey_flees():
    env = envs.make("mpe_tag")
    s, _ = env.reset(jax.random.PRNGKey(0))
    inner = s.inner
    # put every predator to the prey's right: the prey must move left (action 1: -x)
    pos = inner.p_pos.at[3].set(jnp.array([0.0, 0.0]))
    pos = pos.at[:3].set(jnp.array([[0.3, 0.0], [0.3, 0.05], [0.3, -0.05]]))
    assert int(env.prey_action(inner.replace(p_pos=pos))) == 1
