"""TD targets: hand-computed Q(lambda) values and the terminal mask on a real 3-step episode."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fakes import CountingEnv

from jarob.config import load_config
from jarob.learners.targets import lambda_returns
from jarob.learners.value_decomposition import ValueDecomposition
from jarob.rollout import collect, init_actor


def test_one_step_targets_mask_on_current_terminal_flag():
    # 3-step episode ending at t=2, then a new episode starts at t=3.
    r = jnp.array([1.0, 2.0, 3.0, 4.0])
    done = jnp.array([False, False, True, False])
    v_next = jnp.array([10.0, 20.0, 30.0, 40.0])
    g = lambda_returns(r, done, v_next, gamma=0.5, lam=0.0)
    # t=2 ends its episode: no bootstrap from the next episode's value (30).
    np.testing.assert_allclose(g, [1 + 5, 2 + 10, 3, 4 + 20])


def test_lambda_returns_by_hand():
    r = jnp.array([1.0, 2.0, 3.0])
    done = jnp.array([False, False, False])
    v = jnp.array([10.0, 20.0, 30.0])
    gamma, lam = 0.5, 0.5
    g2 = 3 + 0.5 * 30  # 18
    g1 = 2 + 0.5 * (0.5 * 20 + 0.5 * g2)  # 2 + 0.5 * 19 = 11.5
    g0 = 1 + 0.5 * (0.5 * 10 + 0.5 * g1)  # 1 + 0.5 * 10.75 = 6.375
    np.testing.assert_allclose(lambda_returns(r, done, v, gamma, lam), [g0, g1, g2])


def test_soft_lambda_returns_pay_the_stored_next_actions_bonus_by_hand():
    # soft Q(lambda): b_{t+1} = -alpha log pi(a_{t+1}) joins the continued return only.
    r = jnp.array([1.0, 2.0, 3.0])
    done = jnp.array([False, False, False])
    v = jnp.array([10.0, 20.0, 30.0])
    b = jnp.array([0.4, 0.8, 99.0])  # the last entry has no next step inside the sequence
    gamma, lam = 0.5, 0.5
    g2 = 3 + 0.5 * 30  # 18
    g1 = 2 + 0.5 * (0.5 * 20 + 0.5 * (g2 + 0.8))  # 2 + 0.5 * 19.4 = 11.7
    g0 = 1 + 0.5 * (0.5 * 10 + 0.5 * (g1 + 0.4))  # 1 + 0.5 * 11.05 = 6.525
    np.testing.assert_allclose(lambda_returns(r, done, v, gamma, lam, b), [g0, g1, g2], rtol=1e-6)
    # lam = 1 inside an episode: r_0 + gamma (b_1 + r_1) + gamma^2 (b_2 + r_2) + gamma^3 V, the
    # Monte Carlo soft return; a terminal step cuts the bonus of the next episode's first action.
    mc = lambda_returns(r, done, v, gamma, 1.0, b)
    np.testing.assert_allclose(mc[0], 1 + 0.5 * (0.4 + 2) + 0.25 * (0.8 + 3) + 0.125 * 30, rtol=1e-6)
    cut = lambda_returns(r, jnp.array([True, False, False]), v, gamma, 1.0, b)
    np.testing.assert_allclose(cut[0], 1.0)


def test_lambda_returns_do_not_cross_episode_end():
    r = jnp.array([1.0, 2.0, 3.0])
    done = jnp.array([False, True, False])
    v = jnp.array([10.0, 20.0, 30.0])
    g = lambda_returns(r, done, v, gamma=0.9, lam=1.0)
    # lam = 1: Monte Carlo inside the episode; t=1 is terminal so G_1 = r_1 exactly.
    np.testing.assert_allclose(g, [1 + 0.9 * 2, 2, 3 + 0.9 * 30], rtol=1e-6)


@pytest.mark.parametrize("alg", ["qmix", "vdn"])
def test_collected_three_step_episode_targets(alg):
    """Collect 5 steps of a 3-step episode env, then check the stored sequence's alignment and
    that the learner's target at the terminal step is exactly the scaled terminal reward."""
    env = CountingEnv(length=3)
    cfg = load_config([f"alg={alg}", "alg.td_lambda=0.0", "alg.hidden_dim=8"]).alg
    learner = ValueDecomposition(cfg, env)
    ls = learner.init(jax.random.PRNGKey(0))
    actor = init_actor(env, learner, jax.random.PRNGKey(1), 1)
    _, seqs, _, _ = collect(env, learner, learner.acting_team(ls), actor, jax.random.PRNGKey(2), jnp.float32(1.0), 5)
    seq = jax.tree.map(lambda x: x[0], seqs)
    np.testing.assert_array_equal(seq.reward, [1, 2, 3, 1, 2])
    np.testing.assert_array_equal(seq.done, [False, False, True, False, False])
    np.testing.assert_array_equal(seq.first, [True, False, False, True, False, False])
    np.testing.assert_array_equal(seq.last_action[0], [-1, -1])
    np.testing.assert_array_equal(seq.last_action[3], [-1, -1])  # reset at the new episode
    np.testing.assert_array_equal(seq.last_action[1], seq.action[0])
    assert not np.any(np.asarray(seq.action) == 0)  # action 0 is never available
    # obs[3] is the next episode's first observation, not the terminal one
    np.testing.assert_array_equal(seq.obs[3, 0], np.eye(4)[0])

    batch = jax.tree.map(lambda x: x[None], seq).time_major()
    q = learner.unroll_q(ls.params["agent"], batch)
    targets = learner.td_targets(q, ls.target_params, batch)[:, 0]
    scale = cfg.reward_scale
    assert targets[2] == pytest.approx(3 * scale)  # terminal: no bootstrap into episode 2
    assert targets[1] != pytest.approx(2 * scale)  # non-terminal: bootstraps
