"""MAPPO: its loss against numbers computed by hand from the stepped policy, pi_old is exactly the
policy that acted, on-policy sampling against greedy acting, a short learning check, and an end-to-end
train, attack and evaluate run."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fakes import CountingEnv, ThresholdEnv, stepped_log_pi
from jarob.budgets import QUIET, TINY_LOOP, TINY_MAPPO
from jarob.config import ConfigError, load_config
from jarob.learners import LEARNERS, make
from jarob.learners.mappo import MAPPO
from jarob.learners.ppo import value_loss
from jarob.rollout import collect, init_actor

SMALL = ["alg=mappo", "alg.hidden_dim=8", "alg.critic_hidden_dim=8", "alg.num_envs=2", "alg.rollout_len=5", "alg.minibatches=1"]


def _rollout(env, overrides=(), key=0):
    cfg = load_config([*SMALL, *overrides]).alg
    learner = make(cfg, env, total_iterations=4)
    state = learner.init(jax.random.PRNGKey(key), learning=True)
    actor = init_actor(env, learner, jax.random.PRNGKey(key + 1), cfg.num_envs)
    actor, seqs, records, _ = collect(env, learner, learner.acting_team(state), actor, jax.random.PRNGKey(key + 2), learner.exploration(0), cfg.rollout_len)
    return cfg, learner, state, seqs, records


def test_registered():
    assert LEARNERS.get("mappo") is MAPPO


def test_value_loss_hand_computed():
    # V = 1 from V_old = 0.5 is clipped to 0.7: max(1, 1.69); V = 0 clipped to 0.3: max(0, 0.09).
    v, old, g = jnp.array([1.0, 0.0]), jnp.array([0.5, 0.5]), jnp.array([2.0, 0.0])
    assert float(value_loss(v, g, None, old, 0.2)) == pytest.approx(0.5 * (1.69 + 0.09) / 2, rel=1e-6)
    assert float(value_loss(v, g)) == pytest.approx(0.5 * (1.0 + 0.0) / 2, rel=1e-6)


def test_old_log_probs_are_the_acting_policy():
    """pi_old of the stored actions, from the sequence unroll, equals stepping the policy that acted."""
    env = CountingEnv(length=3)
    _, learner, state, seqs, _ = _rollout(env)
    data = learner.rollout_targets(state.params, seqs)
    log_pi = stepped_log_pi(learner, state.params, seqs)
    want = np.take_along_axis(log_pi, np.asarray(seqs.action)[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(data["log_prob"], want, rtol=1e-5, atol=1e-5)
    assert np.all(np.asarray(seqs.action) != 0)  # the unavailable action is never sampled


def test_loss_hand_computed():
    """MAPPO's loss at parameters moved away from the acting ones, recomputed in numpy from the
    stepped policy: clipped surrogate on minibatch-normalised advantages, clipped value loss,
    entropy over the available actions."""
    env = CountingEnv(length=3)
    cfg, learner, state, seqs, _ = _rollout(env, ["alg.clip=0.1", "alg.value_clip=0.05", "alg.entropy_coef=0.3", "alg.value_coef=0.7", "alg.gamma=0.9", "alg.gae_lambda=0.8"])
    data = learner.rollout_targets(state.params, seqs)
    moved = jax.tree.map(lambda x: x * 1.3 + 0.05, state.params)
    loss, m = learner.loss(moved, data)

    # GAE by hand from V(s) before the update, rewards x reward_scale (1 episode of 3 steps, 2 envs x 5 steps).
    v = np.asarray(learner.critic.apply(state.params["critic"], seqs.state), np.float64)  # [E, T+1]
    r, d = np.asarray(seqs.reward) * cfg.reward_scale, np.asarray(seqs.done, np.float64)
    adv = np.zeros_like(r)
    for e in range(r.shape[0]):
        a = 0.0
        for t in reversed(range(r.shape[1])):
            delta = r[e, t] + cfg.gamma * (1 - d[e, t]) * v[e, t + 1] - v[e, t]
            a = delta + cfg.gamma * cfg.gae_lambda * (1 - d[e, t]) * a
            adv[e, t] = a
    target = adv + v[:, :-1]
    np.testing.assert_allclose(data["advantage"], adv, rtol=1e-4, atol=1e-5)

    log_pi = stepped_log_pi(learner, moved, seqs)
    old = np.asarray(data["log_prob"], np.float64)
    new = np.take_along_axis(log_pi, np.asarray(seqs.action)[..., None], axis=-1)[..., 0]
    a_n = ((adv - adv.mean()) / (adv.std() + 1e-8))[..., None]
    ratio = np.exp(new - old)
    policy = -np.mean(np.minimum(ratio * a_n, np.clip(ratio, 0.9, 1.1) * a_n))
    v_new = np.asarray(learner.critic.apply(moved["critic"], seqs.state[:, :-1]), np.float64)
    v_old = v[:, :-1]
    v_loss = 0.5 * np.mean(np.maximum((v_new - target) ** 2, (v_old + np.clip(v_new - v_old, -0.05, 0.05) - target) ** 2))
    p = np.exp(log_pi)
    avail = np.asarray(seqs.avail[:, :-1])
    ent = np.mean(-np.sum(np.where(avail, p * np.where(avail, log_pi, 0.0), 0.0), axis=-1))
    want = policy + 0.7 * v_loss - 0.3 * ent
    assert float(m["policy_loss"]) == pytest.approx(policy, rel=1e-4, abs=1e-6)
    assert float(m["value_loss"]) == pytest.approx(v_loss, rel=1e-4)
    assert float(m["entropy"]) == pytest.approx(ent, rel=1e-4)
    assert float(loss) == pytest.approx(want, rel=1e-4)
    # At the acting parameters every ratio is 1: the surrogate is -mean(normalised A) = 0.
    assert float(learner.loss(state.params, data)[1]["policy_loss"]) == pytest.approx(0.0, abs=1e-5)


def test_explore_samples_pi_mixed_with_uniform():
    env = CountingEnv()
    learner = make(load_config(SMALL).alg, env)
    scores = jnp.array([[5.0, 0.0, jnp.log(3.0)], [0.0, 1.0, 1.0]])  # action 0 unavailable below
    avail = jnp.array([[False, True, True], [True, True, True]])
    keys = jax.random.split(jax.random.PRNGKey(0), 4000)

    def draws(level):
        return np.asarray(jax.vmap(lambda k: learner.explore(k, scores, avail, jnp.float32(level)))(keys))

    pi = draws(0.0)  # MAPPO's level: on-policy sampling
    assert np.all(pi[:, 0] != 0)
    assert np.mean(pi[:, 0] == 2) == pytest.approx(0.75, abs=0.03)  # softmax of (0, log 3) over the available
    assert np.mean(pi[:, 1] == 0) == pytest.approx(1 / (1 + 2 * np.e), abs=0.03)
    mixed = draws(0.4)  # 0.6 pi + 0.4 uniform
    assert np.all(mixed[:, 0] != 0)
    assert np.mean(mixed[:, 0] == 2) == pytest.approx(0.6 * 0.75 + 0.4 * 0.5, abs=0.03)
    assert float(learner.exploration(10**6)) == 0.0


def test_mappo_learns_the_threshold_game():
    """Won iff both agents take action 1 (a one-step game): a few PPO rollouts make it near certain."""
    env = ThresholdEnv()
    cfg = load_config(["alg=mappo", "alg.hidden_dim=16", "alg.critic_hidden_dim=16", "alg.num_envs=16", "alg.rollout_len=4", "alg.minibatches=2", "alg.lr=0.01", "alg.lr_final=0.01", "alg.clip=0.2", "alg.grad_clip=10"]).alg
    learner = make(cfg, env, total_iterations=30)
    state = learner.init(jax.random.PRNGKey(0), learning=True)
    actor = init_actor(env, learner, jax.random.PRNGKey(1), cfg.num_envs)

    @jax.jit
    def iteration(state, actor, key):
        k1, k2 = jax.random.split(key)
        actor, seqs, records, _ = collect(env, learner, learner.acting_team(state), actor, k1, learner.exploration(0), cfg.rollout_len)
        state, _ = learner.learn(state, seqs, 0, k2)
        return state, actor, jnp.sum(records.won & records.done) / jnp.maximum(jnp.sum(records.done), 1)

    wins = []
    for i in range(30):
        state, actor, won = iteration(state, actor, jax.random.PRNGKey(10 + i))
        wins.append(float(won))
    assert wins[0] < 0.5, wins  # the first rollout, before any update: both agents near 50/50, about a quarter won
    assert np.mean(wins[-5:]) > 0.9, wins


def test_adversary_files_leave_its_config_alone():
    """fgsm.yaml gives a value learner 4 gradient steps per rollout; MAPPO's config has no such key."""
    assert load_config(["alg=mappo", "adv=fgsm"]).alg == load_config(["alg=mappo"]).alg


def test_config_errors():
    for overrides, key in (
        (["alg=mappo", "alg.minibatches=3"], "alg.minibatches"),
        (["alg=mappo", "alg.value_clip=-1"], "alg.value_clip"),
        (["alg=mappo", "alg.gae_lambda=2"], "alg.gae_lambda"),
        (["alg=mappo", "reg=ernie"], "reg=ernie"),
        (["alg=mappo", "adv=fgsm", "protocol.clean_td=1"], "protocol.clean_td"),
        (["alg=mappo", "alg.updates_per_rollout=2"], "alg.updates_per_rollout: unknown key"),
        (["alg=mappo", "+alg.updates_per_rollout=2"], "alg.updates_per_rollout: not a setting of alg=mappo"),
    ):
        with pytest.raises(ConfigError, match=key):
            load_config(overrides)


def test_mappo_trains_resumes_attacks_and_evaluates(tmp_path):
    from jarob.attack import main as attack
    from jarob.evaluate import main as evaluate
    from jarob.train import main as train

    run = tmp_path / "mappo"
    assert train(["env=smax_3m", *TINY_MAPPO, *QUIET, f"run_dir={run}"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["alg"] == "mappo" and len(summary["final"]["win_rate"]) == 2
    assert attack([f"victim={run}", "adv=paad", *TINY_LOOP, "adv.director.hidden_dim=16", "adv.director.batch_size=4", "adv.director.buffer_size=32", *QUIET, f"run_dir={tmp_path / 'paad'}"]) == 0
    out = tmp_path / "eval"
    assert evaluate([f"runs=[{run}]", "adversaries=[none,fgsm]", "episodes=8", f"out={out}", "progress=false"]) == 0
    table = json.loads((out / "table.json").read_text())["tables"]["win_rate"]["rows"]
    assert set(next(iter(table.values()))) >= {"none", "fgsm"}
