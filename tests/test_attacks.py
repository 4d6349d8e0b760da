"""Observation attacks: projection invariants, FGSM against hand-computed values, targeted PGD,
and training against an attack stores what the team saw."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jarob import adversaries, envs
from jarob.adversaries import TeamView, team_log_policy
from jarob.adversaries.gradient import pgd_attack
from jarob.config import adv_config, load_config
from jarob.envs import PerturbationSpec

# A tiny linear policy: 1 agent, 2 features, 2 actions, Q = o @ W.
W = jnp.array([[1.0, -1.0], [2.0, 0.5]])
OBS = jnp.array([[0.1, 0.2]])  # Q = [0.5, 0.0]: the greedy action is 0
AVAIL = jnp.ones((1, 2), bool)


def _spec(mask=(True, True), low=(-1.0, -1.0), high=(1.0, 1.0)):
    return PerturbationSpec(np.array(mask), np.array(low, np.float32), np.array(high, np.float32))


def _q(o):
    return o @ W


def test_fgsm_sign_step_hand_computed():
    # d/do [-log softmax(oW)_0] = W (p - e_0) = p_1 (W[:, 1] - W[:, 0]) = p_1 [-2, -1.5]: the
    # sign is [-1, -1], so FGSM moves both features down by eps.
    spec = _spec()
    out = pgd_attack(_q, AVAIL, OBS, lambda c, x: spec.project(c, x, 0.25), steps=1, step_size=0.25)
    np.testing.assert_allclose(out, [[-0.15, -0.05]], atol=1e-6)
    # The valid range clips (feature 0 >= 0) and an unperturbable feature stays clean.
    spec = _spec(mask=(True, False), low=(0.0, -1.0))
    out = pgd_attack(_q, AVAIL, OBS, lambda c, x: spec.project(c, x, 0.25), steps=1, step_size=0.25)
    np.testing.assert_allclose(out, [[0.0, 0.2]], atol=1e-6)


def test_fgsm_lowers_the_greedy_actions_probability():
    spec = _spec()
    out = pgd_attack(_q, AVAIL, OBS, lambda c, x: spec.project(c, x, 0.1), steps=1, step_size=0.1)
    p = lambda o: jnp.exp(team_log_policy(_q(o), AVAIL, 1.0))[0, 0]  # noqa: E731
    assert p(out) < p(OBS)


def test_targeted_pgd_moves_the_policy_toward_the_target():
    spec = _spec()
    target = jnp.array([1])
    probs = []
    for steps in (1, 2, 4, 8):
        out = pgd_attack(_q, AVAIL, OBS, lambda c, x: spec.project(c, x, 0.4), steps=steps, step_size=0.05, target=target)
        probs.append(float(jnp.exp(team_log_policy(_q(out), AVAIL, 1.0))[0, 1]))
    p0 = float(jnp.exp(team_log_policy(_q(OBS), AVAIL, 1.0))[0, 1])
    assert p0 < probs[0] < probs[1] < probs[2] < probs[3]
    # With the whole budget the target becomes the greedy action: Q_1 - Q_0 = -2 o_0 - 1.5 o_1 > 0 at o = o - 0.4.
    out = pgd_attack(_q, AVAIL, OBS, lambda c, x: spec.project(c, x, 0.4), steps=20, step_size=0.05, target=target)
    assert int(jnp.argmax(_q(out)[0])) == 1
    np.testing.assert_allclose(out, OBS - 0.4, atol=1e-6)


def test_targeted_pgd_adversary_pushes_toward_the_worst_action():
    import dataclasses

    from fakes import LinearTeam, ThresholdEnv

    env = ThresholdEnv()
    cfg = dataclasses.replace(adv_config("pgd"), targeted=True, steps=5)
    adv = adversaries.make(cfg, env, 0.25)
    params = {"w": jnp.array([[0.0, 10.0], [0.0, 0.0]]), "b": jnp.array([0.0, -4.0])}
    _, ts = env.reset(jax.random.PRNGKey(0))
    q_fn = lambda o: LinearTeam().step_q(params, None, o, None, None)[1]  # noqa: E731
    out = adv.perturb(adv.init(jax.random.PRNGKey(0)), ts.obs, TeamView(q_fn, ts.avail, ts.state), jax.random.PRNGKey(1))
    # The worst action is 0 (Q_0 = 0 < Q_1 = 1): every step lowers o_0 by eps / 5, down to 0.25.
    np.testing.assert_allclose(out, [[0.25, 1.0], [0.25, 1.0]], atol=1e-6)


def test_masked_actions_are_never_the_attack_label():
    # Action 0 is the best but unavailable: untargeted FGSM attacks the available greedy action 1.
    avail = jnp.array([[False, True]])
    spec = _spec()
    out = pgd_attack(_q, avail, OBS, lambda c, x: spec.project(c, x, 0.25), steps=1, step_size=0.25)
    np.testing.assert_allclose(out, OBS, atol=1e-6)  # one available action: no gradient, no move


@pytest.mark.parametrize("name", ["rn", "fgsm", "pgd"])
def test_attacks_stay_in_the_ball_the_range_and_off_fixed_features(name):
    env = envs.make("smax_3m")
    cfg = adv_config(name)
    if name == "pgd":
        cfg = cfg.__class__(**{**cfg.__dict__, "random_start": True, "steps": 3})
    adv = adversaries.make(cfg, env, 0.25)
    spec = env.perturbation
    key = jax.random.PRNGKey(0)
    _, ts = env.reset(key)
    # A random linear team on the real observation layout, plus observations on the range edges.
    w = jax.random.normal(key, (env.obs_dim, env.num_actions))
    obs = jnp.concatenate([ts.obs[:1], jnp.broadcast_to(jnp.asarray(spec.low), (1, env.obs_dim)), jnp.broadcast_to(jnp.asarray(spec.high), (1, env.obs_dim))])
    view = TeamView(lambda o: o @ w, jnp.ones((3, env.num_actions), bool), ts.state)
    state = adv.init(key)
    for k in jax.random.split(key, 5):
        out = np.asarray(adv.perturb(state, obs, view, k, False))
        clean = np.asarray(obs)
        assert np.all(np.abs(out - clean) <= 0.25 + 1e-6)
        assert np.all(out >= spec.low - 1e-6) and np.all(out <= spec.high + 1e-6)
        np.testing.assert_array_equal(out[:, ~spec.mask], clean[:, ~spec.mask])
        assert np.any(out != clean)


def test_pgd_restarts_keep_each_agents_strongest_run():
    """restarts=R: every agent's objective at the result is the largest of the R runs' (the first
    the plain PGD run from the clean observation), inside the eps-ball."""
    from jarob.adversaries.gradient import agent_objective, attack_label

    env = envs.make("smax_3m")
    key = jax.random.PRNGKey(3)
    _, ts = env.reset(key)
    w = jax.random.normal(key, (env.obs_dim, env.num_actions))
    view = TeamView(lambda o: jnp.tanh(o @ w) * 3.0, ts.avail, ts.state)  # saturating: runs can stall apart
    plain = adversaries.make(adv_config("pgd", {"steps": 2}), env, 0.25)
    many = adversaries.make(adv_config("pgd", {"steps": 2, "restarts": 6}), env, 0.25)
    state = plain.init(key)
    one = plain.perturb(state, ts.obs, view, key)
    best = many.perturb(state, ts.obs, view, key)
    label, sign = attack_label(view.q_fn, view.avail, ts.obs)
    score = lambda x: np.asarray(agent_objective(view.q_fn, view.avail, x, label, sign, 1.0))  # noqa: E731
    assert np.all(score(best) >= score(one) - 1e-6)
    assert np.all(np.abs(np.asarray(best - ts.obs)) <= 0.25 + 1e-6)
    with pytest.raises(Exception, match="adv.restarts"):
        adv_config("pgd", {"restarts": 0})


def test_eps_lives_in_the_adversary_state():
    env = envs.make("smax_3m")
    adv = adversaries.make(adv_config("rn"), env)
    assert float(adv.init(jax.random.PRNGKey(0))["eps"]) == pytest.approx(env.default_eps)
    zero = adv.init(jax.random.PRNGKey(0), 0.0)
    _, ts = env.reset(jax.random.PRNGKey(1))
    view = TeamView(lambda o: o[:, : env.num_actions], ts.avail, ts.state)
    np.testing.assert_array_equal(adv.perturb(zero, ts.obs, view, jax.random.PRNGKey(2)), ts.obs)


def test_training_against_fgsm_stores_what_the_team_saw():
    from jarob.rollout import collect
    from jarob.trainer import Trainer

    cfg = load_config(["adv=fgsm", "protocol.attack_prob=1.0", "alg.num_envs=2", "alg.rollout_len=4", "alg.hidden_dim=16"])
    tr = Trainer(cfg)
    state = tr.init(jax.random.PRNGKey(0))
    _, seqs, records, _ = collect(tr.env, tr.learner, tr.learner.acting_team(state.learner), state.actor, jax.random.PRNGKey(1), jnp.float32(0.0), 4, tr.adversary, state.adversary)
    seen, clean = np.asarray(records.obs), np.asarray(records.clean_obs)
    assert np.any(seen != clean)
    assert np.all(np.abs(seen - clean) <= (cfg.env.eps or tr.env.default_eps) + 1e-6)
    np.testing.assert_array_equal(np.asarray(seqs.obs)[:, :4], np.swapaxes(seen, 0, 1))


def test_attack_prob_attacks_whole_episodes():
    from fakes import CountingEnv

    from jarob.learners.value_decomposition import ValueDecomposition
    from jarob.rollout import collect, init_actor

    env = CountingEnv(length=3)
    cfg = load_config(["alg.hidden_dim=8"])
    learner = ValueDecomposition(cfg.alg, env)
    params = learner.acting_team(learner.init(jax.random.PRNGKey(0)))
    adv = adversaries.make(adv_config("rn"), env, 0.3)
    actor = init_actor(env, learner, jax.random.PRNGKey(1), 16)
    _, _, rec, _ = collect(env, learner, params, actor, jax.random.PRNGKey(2), jnp.float32(0.0), 12, adv, adv.init(jax.random.PRNGKey(3)), attack_prob=0.5)
    moved = np.any(np.asarray(rec.obs) != np.asarray(rec.clean_obs), axis=(-1, -2))  # [T, E]
    episodes = moved.reshape(4, 3, 16)  # 4 episodes of 3 steps in each env
    assert np.all(episodes.all(axis=1) | ~episodes.any(axis=1))  # all steps of an episode or none
    share = episodes[:, 0].mean()
    assert 0.2 < share < 0.8


def test_budget_ramp_scales_only_the_acting_budget():
    """protocol.ramp_frac = 0.5 of 1,024 env steps: the rollout acts at eps x min(1, t / 512), while the
    stored state keeps the full budget. At t = 0 the team sees, and stores, the clean observations;
    at the ramp's end it is perturbed again."""
    from jarob.trainer import Trainer

    small = ["alg.num_envs=2", "alg.rollout_len=4", "alg.hidden_dim=16", "alg.buffer_size=4", "alg.batch_size=2", "total_steps=1024"]
    tr = Trainer(load_config(["adv=rn", "protocol.attack_prob=1.0", "protocol.ramp_frac=0.5", *small]))
    s0 = tr.init(jax.random.PRNGKey(0))
    full = float(s0.adversary["eps"])
    for t, scale in [(0, 0.0), (128, 0.25), (256, 0.5), (512, 1.0), (1024, 1.0)]:
        assert float(tr.acting_adversary(s0.adversary, jnp.int32(t))["eps"]) == pytest.approx(scale * full)
    plain = Trainer(load_config(["adv=rn", "protocol.attack_prob=1.0", *small]))
    assert plain.acting_adversary(s0.adversary, jnp.int32(0)) is s0.adversary

    step = jax.jit(tr.iteration)
    first_seen = [np.asarray(step(s0.replace(env_steps=jnp.int32(t)), jnp.int32(0))[0].learner.buffer.obs)[:2, 0] for t in (0, 512)]
    clean = np.asarray(s0.actor.ts.obs)
    np.testing.assert_array_equal(first_seen[0], clean)
    assert np.any(first_seen[1] != clean) and np.all(np.abs(first_seen[1] - clean) <= full + 1e-6)
