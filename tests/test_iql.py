"""IQL: independent Q-learners from their own module."""

import jax
import jax.numpy as jnp
import numpy as np

from fakes import CountingEnv
from jarob.config import load_config
from jarob.learners import LEARNERS, make
from jarob.learners.iql import IQL
from jarob.rollout import collect, init_actor


def test_registered():
    assert LEARNERS.get("iql") is IQL


def test_iql_targets_are_each_agents_own():
    """One-step IQL targets by hand: G_i[t] = scale r_t + gamma (1 - d_t) Q_i^tar(t+1, argmax Q_i(t+1))."""
    env = CountingEnv(length=3)
    cfg = load_config(["alg=iql", "alg.hidden_dim=8", "alg.td_lambda=0", "alg.num_envs=1", "alg.buffer_size=1", "alg.batch_size=1"]).alg
    learner = make(cfg, env)
    ls = learner.init(jax.random.PRNGKey(0))
    target = jax.tree.map(lambda x: x * 1.5, ls.params)  # a target network unlike the online one
    actor = init_actor(env, learner, jax.random.PRNGKey(1), 1)
    _, seqs, _, _ = collect(env, learner, learner.acting_team(ls), actor, jax.random.PRNGKey(2), jnp.float32(1.0), 5)
    seq = seqs.time_major()
    q = learner.unroll_q(ls.params["agent"], seq)
    got = np.asarray(learner.td_targets(q, target, seq))
    assert got.shape == (5, 1, env.num_agents)
    q, qt = np.asarray(q), np.asarray(learner.unroll_q(target["agent"], seq))
    avail = np.asarray(seq.avail)
    for t in range(5):
        for i in range(env.num_agents):
            a = np.argmax(np.where(avail[t + 1, 0, i], q[t + 1, 0, i], -np.inf))
            want = cfg.reward_scale * float(seq.reward[t, 0]) + cfg.gamma * (1 - float(seq.done[t, 0])) * qt[t + 1, 0, i, a]
            np.testing.assert_allclose(got[t, 0, i], want, rtol=1e-5)
    assert learner.joint_value(learner.team(ls), jnp.zeros(env.num_agents), jnp.zeros(env.state_dim)) is None
