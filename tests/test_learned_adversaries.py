"""ATLA (a MAPPO observation adversary) and RAP (a population of PAAD directors): PPO's pieces
against hand-computed numbers, where ATLA's perturbations land, alternating training, that each
RAP member plays whole episodes and learns only from its own, and short end-to-end runs."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY

from jarob import adversaries, envs
from jarob.adversaries import TeamView
from jarob.budgets import QUIET, TINY_DIRECTOR, TINY_LOOP
from jarob.config import ConfigError, load_config
from jarob.learners.ppo import clipped_surrogate, gae, normalize

SMALL = ["alg.num_envs=4", "alg.rollout_len=8", "alg.hidden_dim=16", "alg.buffer_size=8", "alg.batch_size=4", "total_steps=256"]


def test_gae_hand_computed():
    # T = 3, one episode ending at t = 1, then a new one; gamma = 0.5, lambda = 0.5.
    r = jnp.array([1.0, 2.0, 3.0])
    v = jnp.array([0.5, 1.0, 2.0])
    d = jnp.array([False, True, False])
    adv, ret = gae(r, v, d, jnp.asarray(4.0), 0.5, 0.5)
    d2 = 3.0 + 0.5 * 4.0 - 2.0  # bootstraps on the last value
    d1 = 2.0 - 1.0  # terminal: no bootstrap
    d0 = 1.0 + 0.5 * 1.0 - 0.5
    a2, a1 = d2, d1  # the episode end cuts the trace at t = 1
    a0 = d0 + 0.25 * a1
    np.testing.assert_allclose(adv, [a0, a1, a2], rtol=1e-6)
    np.testing.assert_allclose(ret, [a0 + 0.5, a1 + 1.0, a2 + 2.0], rtol=1e-6)


def test_clipped_surrogate_hand_computed():
    # rho = e^0.5 = 1.65 with A = 1 is clipped at 1.2; rho = e^-0.5 = 0.61 with A = -2 is clipped at 0.8.
    lp, old = jnp.array([0.5, -0.5, 0.0]), jnp.zeros(3)
    a = jnp.array([1.0, -2.0, 3.0])
    expected = -np.mean([1.2 * 1.0, 0.8 * -2.0, 1.0 * 3.0])
    assert float(clipped_surrogate(lp, old, a, 0.2, jnp.ones(3))) == pytest.approx(expected, rel=1e-6)
    # Weight 0 leaves a sample out.
    assert float(clipped_surrogate(lp, old, a, 0.2, jnp.array([1.0, 1.0, 0.0]))) == pytest.approx(-(1.2 - 1.6) / 2, rel=1e-6)
    x = normalize(jnp.array([1.0, 3.0, 100.0]), jnp.array([1.0, 1.0, 0.0]))
    np.testing.assert_allclose(x[:2], [-1.0, 1.0], rtol=1e-5)


def _atla(overrides=()):
    env = envs.make("smax_3m")
    cfg = load_config(["adv=atla", *overrides]).adv
    return env, adversaries.make(cfg, env, 0.25, (4, 8, 10))


def test_atla_perturbation_stays_in_the_ball_and_test_mode_is_the_mean():
    env, adv = _atla()
    state = adv.init(jax.random.PRNGKey(0))
    # A larger std so that tanh saturates and the projection onto the valid range matters.
    state["params"]["actor"]["params"]["log_std"] = jnp.full((env.obs_dim,), 2.0)
    _, ts = env.reset(jax.random.PRNGKey(1))
    view = TeamView(lambda o: o[:, : env.num_actions], ts.avail, ts.state, jnp.asarray(True))
    spec = env.perturbation
    for k in range(4):
        seen, _, out = adv.act(state, {}, ts.obs, view, jax.random.PRNGKey(k), True)
        delta = np.asarray(seen - ts.obs)
        assert np.all(np.abs(delta) <= 0.25 + 1e-6)
        assert np.all(delta[:, ~spec.mask] == 0.0)  # non-perturbable features untouched
        assert np.all((np.asarray(seen) >= spec.low - 1e-6) & (np.asarray(seen) <= spec.high + 1e-6))
        assert np.abs(delta[:, spec.mask]).max() > 0.2
        # log f(u) counts the perturbable features only.
        dist = adv.policy(state["params"]["actor"], ts.obs)
        lp = np.sum(np.where(spec.mask, np.asarray(dist.log_prob(out["u"])), 0.0), axis=-1)
        np.testing.assert_allclose(out["log_prob"], lp, rtol=1e-5)
    tests = [np.asarray(adv.act(state, {}, ts.obs, view, jax.random.PRNGKey(k), False)[0]) for k in range(3)]
    assert all(np.array_equal(tests[0], t) for t in tests[1:])  # test mode: deterministic (the mean)
    mean = adv.policy(state["params"]["actor"], ts.obs).loc
    np.testing.assert_allclose(tests[0], adv.realise(ts.obs, mean, 0.25), rtol=1e-6)


def test_atla_ppo_step_makes_a_good_perturbation_more_likely():
    """PPO updates on a batch where one sampled joint u has a positive advantage and another a
    negative one raise the joint log-probability of the first and lower that of the second."""
    env, adv = _atla(["adv.ppo.lr=0.01", "adv.ppo.lr_final=0.01"])
    state = adv.init(jax.random.PRNGKey(0))
    obs = jax.random.uniform(jax.random.PRNGKey(1), (2, env.num_agents, env.obs_dim))
    dist = adv.policy(state["params"]["actor"], obs)
    u = dist.sample(seed=jax.random.PRNGKey(2))
    batch = {
        "obs": obs,
        "state": jnp.zeros((2, env.state_dim)),
        "u": u,
        "log_prob": adv.log_prob(dist, u),
        "advantage": jnp.array([1.0, -1.0]),
        "target": jnp.zeros(2),
        "weight": jnp.ones(2),
    }
    params = state["params"]
    for _ in range(5):
        grads = jax.grad(lambda p: adv.loss(p, batch)[0])(params)
        updates, state["opt"] = adv.tx.update(grads, state["opt"], params)
        params = jax.tree.map(jnp.add, params, updates)
    change = adv.log_prob(adv.policy(params["actor"], obs), u) - batch["log_prob"]
    assert float(jnp.sum(change[0])) > 0 and float(jnp.sum(change[1])) < 0


def test_alternating_training_learns_in_turns():
    """protocol.alternate = 1: iteration 0 trains the team only, iteration 1 the adversary only."""
    from jarob.trainer import Trainer

    tr = Trainer(load_config(["adv=atla", "protocol.alternate=1", "adv.ppo.minibatches=2", *SMALL]))
    step = jax.jit(tr.iteration)
    s0 = tr.init(jax.random.PRNGKey(0))
    s1, sums1 = step(s0, jnp.int32(0))
    s2, sums2 = step(s1, jnp.int32(1))

    def same(a, b):
        return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))

    assert not same(s0.learner.params, s1.learner.params) and same(s0.adversary["params"], s1.adversary["params"])
    assert same(s1.learner.params, s2.learner.params) and not same(s1.adversary["params"], s2.adversary["params"])
    assert (float(sums1["team_turns"]), float(sums1["adv_turns"]), float(sums2["team_turns"]), float(sums2["adv_turns"])) == (1, 0, 0, 1)
    assert float(sums1["adv_loss"]) == 0.0 and math.isfinite(float(sums2["adv_loss"]))
    assert float(sums2["adv_dropped_updates"]) == 0.0


def test_atla_drops_nonfinite_ppo_steps():
    """ATLA's PPO steps on a clean rollout are applied; on a rollout whose clean observations are
    NaN every step is dropped (`keep_if_finite`): the adversary's parameters and optimiser state
    stay exactly as they were and all epochs x minibatches steps are counted."""
    from jarob.rollout import collect
    from jarob.trainer import Trainer

    tr = Trainer(load_config(["adv=atla", "adv.ppo.minibatches=2", "adv.ppo.epochs=2", *SMALL]))
    s0 = tr.init(jax.random.PRNGKey(0))
    actor, _, records, carry0 = collect(tr.env, tr.learner, tr.learner.acting_team(s0.learner), s0.actor, jax.random.PRNGKey(1), 1.0, 8, tr.adversary, s0.adversary)
    update = jax.jit(tr.adversary.update)
    new, m = update(s0.adversary, records, carry0, actor, jnp.int32(0), jnp.int32(32), jax.random.PRNGKey(2))
    assert float(m["adv_dropped"]) == 0.0
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(new["params"]), jax.tree.leaves(s0.adversary["params"])))
    poisoned = records.replace(clean_obs=jnp.full_like(records.clean_obs, jnp.nan))
    new, m = update(s0.adversary, poisoned, carry0, actor, jnp.int32(0), jnp.int32(32), jax.random.PRNGKey(2))
    assert float(m["adv_dropped"]) == 4.0
    for key in ("params", "opt"):
        for a, b in zip(jax.tree.leaves(new[key]), jax.tree.leaves(s0.adversary[key])):
            np.testing.assert_array_equal(a, b)


def test_rap_members_play_whole_episodes_and_learn_only_from_their_own():
    from jarob.rollout import collect
    from jarob.trainer import Trainer

    cfg = load_config(["adv=rap", "protocol.attack_prob=1", "alg.num_envs=8", "alg.rollout_len=32", "alg.hidden_dim=16", "alg.buffer_size=8", "alg.batch_size=8", "total_steps=1024", *TINY_DIRECTOR])
    tr = Trainer(cfg)
    state = tr.init(jax.random.PRNGKey(0))
    adv = tr.adversary
    assert jax.tree.leaves(state.adversary["params"])[0].shape[0] == 3
    actor, _, records, carry0 = jax.jit(lambda s, k: collect(tr.env, tr.learner, tr.learner.acting_team(s.learner), s.actor, k, 1.0, 32, adv, s.adversary))(state, jax.random.PRNGKey(1))
    member, first = np.asarray(records.adv_out["member"]), np.asarray(records.first)  # [T, E]
    changes = member[1:] != member[:-1]
    assert not np.any(changes & ~first[1:])  # a member keeps its episode
    assert set(np.unique(member)) == {0, 1, 2}  # every member plays

    update = jax.jit(lambda st, rec: adv.update(st, rec, carry0, actor, jnp.int32(0), jnp.int32(256), jax.random.PRNGKey(2)))
    new, _ = update(state.adversary, records)
    assert adv.member.learnable_items_only  # replay draws only items holding some of its own steps
    for k in range(3):
        stored = np.asarray(new["buffer"].attacked[k, :8])  # [E, T]
        np.testing.assert_array_equal(stored, (member == k).T)
    # Member 0's update does not depend on the rewards of the steps the other members played.
    other = records.replace(reward=jnp.where(records.adv_out["member"] == 0, records.reward, records.reward + 5.0))
    changed, _ = update(state.adversary, other)
    p0, q0 = (jax.tree.map(lambda x: np.asarray(x[0]), s["params"]) for s in (new, changed))
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(p0), jax.tree.leaves(q0)))
    p1, q1 = (jax.tree.map(lambda x: np.asarray(x[1]), s["params"]) for s in (new, changed))
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(q1)))


def test_replay_draws_in_proportion_to_weights_inside_the_filled_slots():
    from jarob import buffer as replay

    data = {"x": jnp.arange(8)}
    # Slots 0-4 filled; slot 6 weighs most but is empty; slot 3 weighs 0.
    weights = jnp.array([1.0, 0.0, 3.0, 0.0, 1.0, 0.0, 9.0, 0.0])
    x = np.asarray(replay.sample(data, jax.random.PRNGKey(0), 20_000, jnp.int32(5), weights)["x"])
    assert set(np.unique(x)) == {0, 2, 4}
    np.testing.assert_allclose(np.bincount(x, minlength=5)[[0, 2, 4]] / x.size, [0.2, 0.6, 0.2], atol=0.02)
    # No filled slot weighs anything: uniform over the filled ones.
    x = np.asarray(replay.sample(data, jax.random.PRNGKey(1), 20_000, jnp.int32(3), jnp.zeros(8))["x"])
    np.testing.assert_allclose(np.bincount(x, minlength=3) / x.size, [1 / 3] * 3, atol=0.02)


def test_config_errors():
    for overrides, key in (
        (["adv=paad", "adv.population=3"], "adv.population"),
        (["adv=rap", "adv.population=0"], "adv.population"),
        (["adv=atla", "adv.ppo.minibatches=7"], "adv.ppo.minibatches"),
        (["adv=atla", "adv.ppo.gae_lambda=2"], "adv.ppo.gae_lambda"),
        (["adv=atla", "protocol.alternate=-1"], "protocol.alternate"),
        (["adv=atsa", "protocol.ramp_frac=1.5"], "protocol.ramp_frac"),
        (["adv=atla", "adv.ppo=null"], "adv.ppo"),
    ):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(overrides)


def test_atla_and_rap_train_attack_and_evaluate(tiny_run, tmp_path):
    from jarob.attack import main as attack
    from jarob.evaluate import main as evaluate
    from jarob.train import main as train

    rap_run = tmp_path / "rap"
    assert train(TINY + ["adv=rap", *TINY_DIRECTOR, f"run_dir={rap_run}"]) == 0
    assert json.loads((rap_run / "summary.json").read_text())["adv"] == "rap"

    atla_run = tmp_path / "atla"
    rest = [*TINY_LOOP, *QUIET]
    assert attack([f"victim={tiny_run}", "adv=atla", "adv.ppo.minibatches=2", f"run_dir={atla_run}", *rest]) == 0

    out = tmp_path / "eval"
    assert evaluate([f"runs=[{tiny_run},{rap_run}]", f"adversaries=[none,{atla_run},{rap_run}]", "episodes=4", f"out={out}", "progress=false"]) == 0
    cells = (out / "cells.csv").read_text().splitlines()
    assert len(cells) == 1 + 2 * 2 * 3
    assert any(",atla," in c for c in cells) and any(",rap," in c for c in cells)
