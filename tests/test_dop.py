"""DOP: the decomposed critic's TD(lambda) targets and the actors' decomposed policy gradient
against numpy from the stepped policy, k(s) >= 0, the target copy, a learning check, and an
end-to-end train, resume-safe checkpoint and evaluate run."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fakes import CountingEnv, ThresholdEnv, stepped_log_pi
from jarob.budgets import QUIET, TINY_DOP
from jarob.config import ConfigError, load_config
from jarob.learners import LEARNERS, make
from jarob.learners.dop import DOP
from jarob.rollout import collect, init_actor

SMALL = ["alg=dop", "alg.hidden_dim=8", "alg.critic_hidden_dim=8", "alg.mixer_hidden_dim=8", "alg.num_envs=2", "alg.rollout_len=5", "alg.minibatches=1", "alg.epochs=1"]


def _rollout(env, overrides=()):
    cfg = load_config([*SMALL, *overrides]).alg
    learner = make(cfg, env, total_iterations=4)
    state = learner.init(jax.random.PRNGKey(0), learning=True)
    actor = init_actor(env, learner, jax.random.PRNGKey(1), cfg.num_envs)
    _, seqs, _, _ = collect(env, learner, learner.acting_team(state), actor, jax.random.PRNGKey(2), jnp.float32(0.3), cfg.rollout_len)
    return cfg, learner, state, seqs


def test_registered():
    assert LEARNERS.get("dop") is DOP


def test_targets_and_loss_hand_computed():
    env = CountingEnv(length=3)
    cfg, learner, state, seqs = _rollout(env, ["alg.gamma=0.9", "alg.td_lambda=0.7", "alg.entropy_coef=0.2", "alg.reward_scale=2"])
    # A target critic unlike the online one.
    state = state.replace(target_params=jax.tree.map(lambda x: 0.7 * x - 0.02, state.target_params))
    data = learner.rollout_targets(state, seqs)

    log_pi = stepped_log_pi(learner, state.params, seqs)  # [E, T, N, A]
    # The actors' log pi at the view after the last step, stepped on from the end of each sequence.
    q_tar, k_tar, b_tar = (np.asarray(x, np.float64) for x in learner.critic.apply(state.target_params["critic"], seqs.state, seqs.obs))
    assert np.all(k_tar >= 0)
    _, log_pi_all, _ = learner.log_probs(state.params["agent"], seqs, with_next=True)
    avail_t = np.asarray(seqs.avail[:, :-1])
    np.testing.assert_allclose(np.where(avail_t, np.asarray(log_pi_all)[:, :-1], 0), np.where(avail_t, log_pi, 0), rtol=1e-4, atol=1e-5)
    pi_all = np.exp(np.asarray(log_pi_all, np.float64))
    v = np.sum(k_tar * np.sum(pi_all * q_tar, -1), -1) + b_tar  # [E, T+1]
    r, d = np.asarray(seqs.reward) * 2.0, np.asarray(seqs.done, np.float64)
    g = np.zeros_like(r)
    for e in range(r.shape[0]):
        t_last = r.shape[1] - 1
        g[e, t_last] = r[e, t_last] + 0.9 * (1 - d[e, t_last]) * v[e, t_last + 1]
        for t in reversed(range(t_last)):
            g[e, t] = r[e, t] + 0.9 * (1 - d[e, t]) * (0.3 * v[e, t + 1] + 0.7 * g[e, t + 1])
    np.testing.assert_allclose(data["target"], g, rtol=1e-4, atol=1e-4)

    moved = jax.tree.map(lambda x: 1.2 * x + 0.03, state.params)
    loss, m = learner.loss(moved, data)
    log_pi = stepped_log_pi(learner, moved, seqs)
    q, k, b = (np.asarray(x, np.float64) for x in learner.critic.apply(moved["critic"], seqs.state[:, :-1], seqs.obs[:, :-1]))
    a = np.asarray(seqs.action)
    q_taken = np.take_along_axis(q, a[..., None], -1)[..., 0]
    td = np.mean((np.sum(k * q_taken, -1) + b - g) ** 2)
    pi = np.exp(log_pi)
    adv = k * (q_taken - np.sum(pi * q, -1))
    actor = -np.mean(np.sum(adv * np.take_along_axis(log_pi, a[..., None], -1)[..., 0], -1))
    avail = np.asarray(seqs.avail[:, :-1])
    ent = np.mean(-np.sum(np.where(avail, pi * np.where(avail, log_pi, 0.0), 0.0), -1))
    assert float(m["td"]) == pytest.approx(td, rel=1e-4)
    assert float(m["actor_loss"]) == pytest.approx(actor, rel=1e-4, abs=1e-6)
    assert float(loss) == pytest.approx(td + actor - 0.2 * ent, rel=1e-4)
    # The actors' term moves only the actor, the TD term only the critic.
    grads = jax.grad(lambda p: learner.loss(p, data)[1]["actor_loss"])(moved)
    assert all(float(jnp.abs(x).max()) == 0 for x in jax.tree.leaves(grads["critic"]))


def test_target_copied_every_target_update_every_steps():
    env = CountingEnv(length=3)
    cfg, learner, state, seqs = _rollout(env, ["alg.target_update_every=2"])  # one step per learn
    s1, _ = learner.learn(state, seqs, 0, jax.random.PRNGKey(3))
    same = lambda a, b: all(bool(jnp.array_equal(x, y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))  # noqa: E731
    assert same(s1.target_params, state.target_params) and not same(s1.params["critic"], state.params["critic"])
    s2, _ = learner.learn(s1, seqs, 1, jax.random.PRNGKey(4))
    assert same(s2.target_params["critic"], s2.params["critic"])


def test_dop_learns_the_threshold_game():
    env = ThresholdEnv()
    cfg = load_config(["alg=dop", "alg.hidden_dim=16", "alg.critic_hidden_dim=16", "alg.mixer_hidden_dim=8", "alg.num_envs=16", "alg.rollout_len=4", "alg.minibatches=2", "alg.actor_lr=0.01", "alg.critic_lr=0.01", "alg.eps_start=0.2", "alg.eps_end=0.0", "alg.eps_anneal_steps=1000", "alg.target_update_every=4"]).alg
    learner = make(cfg, env, total_iterations=40)
    state = learner.init(jax.random.PRNGKey(0), learning=True)
    actor = init_actor(env, learner, jax.random.PRNGKey(1), cfg.num_envs)

    @jax.jit
    def iteration(state, actor, key, steps):
        k1, k2 = jax.random.split(key)
        actor, seqs, records, _ = collect(env, learner, learner.acting_team(state), actor, k1, learner.exploration(steps), cfg.rollout_len)
        state, _ = learner.learn(state, seqs, 0, k2)
        return state, actor, jnp.sum(records.won & records.done) / jnp.maximum(jnp.sum(records.done), 1)

    wins = []
    for i in range(40):
        state, actor, won = iteration(state, actor, jax.random.PRNGKey(10 + i), i * 64)
        wins.append(float(won))
    assert wins[0] < 0.5, wins
    assert np.mean(wins[-5:]) > 0.9, wins


def test_config_errors():
    for overrides, key in (
        (["alg=dop", "alg.minibatches=3"], "alg.minibatches"),
        (["alg=dop", "alg.eps_end=0.5", "alg.eps_start=0.1"], "alg.eps_end"),
        (["alg=dop", "alg.td_lambda=2"], "alg.td_lambda"),
        (["alg=dop", "reg=pr"], "reg=pr"),
    ):
        with pytest.raises(ConfigError, match=key):
            load_config(overrides)
    assert load_config(["alg=dop", "adv=fgsm"]).alg == load_config(["alg=dop"]).alg


def test_dop_trains_and_evaluates(tmp_path):
    from jarob.evaluate import main as evaluate
    from jarob.train import main as train

    run = tmp_path / "dop"
    assert train(["env=smax_3m", *TINY_DOP, *QUIET, f"run_dir={run}"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["alg"] == "dop" and len(summary["final"]["win_rate"]) == 2
    out = tmp_path / "eval"
    assert evaluate([f"runs=[{run}]", "adversaries=[none,fgsm]", "episodes=8", f"out={out}", "progress=false"]) == 0
