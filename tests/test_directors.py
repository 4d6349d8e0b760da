"""ATSA's SDor and PAAD's director: soft values and policies against hand-computed numbers, the
signs of the SDor losses, what each buffer stores, and short end-to-end runs of adversarial
training, attack mode and evaluation against a learned attacker."""

import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY

from jarob import adversaries
from jarob.budgets import QUIET, TINY_DIRECTOR, TINY_LOOP
from jarob.config import ConfigError, adv_config, load_config
from jarob.learners.soft_factorized import WeightNetwork, log_policy, policy, policy_objective, sdor_stor_loss, soft_policy, soft_value
from jarob.networks import unroll_sequence
from jarob.ops import masked_argmax

Q = jnp.array([1.0, 2.0, 3.0])
ALL = jnp.array([True, True, True])
# Two small adversarial-training configs: one short rollout, every episode attacked; and 16 envs x
# 32 steps, half of the episodes attacked.
SHORT = ["protocol.attack_prob=1", "alg.num_envs=2", "alg.rollout_len=4", "alg.hidden_dim=16", "alg.buffer_size=8", "alg.batch_size=8", "total_steps=64"]
HALF = ["protocol.attack_prob=0.5", "alg.num_envs=16", "alg.rollout_len=32", "alg.hidden_dim=16", "alg.buffer_size=32", "total_steps=1024"]


def _trainer(*overrides):
    from jarob.trainer import Trainer

    return Trainer(load_config([*overrides, *TINY_DIRECTOR]))


@functools.lru_cache(maxsize=None)
def _one_iteration(*overrides):
    """(trainer, initial state, the state after one jitted training iteration from PRNGKey(0), its
    sums) for the config of `overrides` + TINY_DIRECTOR; cached, so tests reading the same iteration
    share one compilation."""
    tr = _trainer(*overrides)
    state = tr.init(jax.random.PRNGKey(0))
    new, sums = jax.jit(tr.iteration)(state, jnp.int32(0))
    return tr, state, new, sums


def test_soft_value_and_policy_hand_computed():
    # ATSA eqs. 4-5 with alpha = 0.5: V = 0.5 log(e^2 + e^4 + e^6), h = exp((Q - V) / 0.5).
    v = 0.5 * math.log(math.exp(2) + math.exp(4) + math.exp(6))
    assert float(soft_value(Q, ALL, 0.5)) == pytest.approx(v, rel=1e-6)
    z = math.exp(2) + math.exp(4) + math.exp(6)
    np.testing.assert_allclose(soft_policy(Q, ALL, 0.5), [math.exp(2) / z, math.exp(4) / z, math.exp(6) / z], rtol=1e-5)
    # The best action unavailable: the soft value and policy live on the other two.
    mask = jnp.array([True, True, False])
    assert float(soft_value(Q, mask, 0.5)) == pytest.approx(0.5 * math.log(math.exp(2) + math.exp(4)), rel=1e-6)
    np.testing.assert_allclose(soft_policy(Q, mask, 0.5), [1 / (1 + math.e**2), math.e**2 / (1 + math.e**2), 0.0], rtol=1e-5)
    # alpha -> 0: the hard max; the policy becomes greedy.
    assert float(soft_value(Q, ALL, 1e-3)) == pytest.approx(3.0, abs=1e-2)


def test_joint_soft_policy_factorizes_into_the_individual_ones():
    # Eqs. 4-6 on two agents with 3 actions: Q_jt = sum_i (alpha / alpha_i)(Q_i - V_i) + V_jt makes
    # the joint soft policy exp((Q_jt - V_jt) / alpha) (eq. 4) the product of the individual
    # h_i = exp((Q_i - V_i) / alpha_i) (eq. 5), a distribution over the 9 joint actions.
    alpha, alpha_i, v_jt = 0.5, jnp.array([0.25, 1.0]), 1.7
    q = jnp.array([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]])
    v_i = jnp.stack([soft_value(q[i], ALL, alpha_i[i]) for i in range(2)])
    h_i = jnp.stack([soft_policy(q[i], ALL, alpha_i[i]) for i in range(2)])
    q_jt = (alpha / alpha_i[0]) * (q[0] - v_i[0])[:, None] + (alpha / alpha_i[1]) * (q[1] - v_i[1])[None, :] + v_jt
    h_jt = jnp.exp((q_jt - v_jt) / alpha)
    np.testing.assert_allclose(h_jt, h_i[0][:, None] * h_i[1][None, :], rtol=1e-5)
    assert float(jnp.sum(h_jt)) == pytest.approx(1.0, rel=1e-5)
    # Agent 0 by hand: alpha_0 = 0.25, h_0 = softmax(Q_0 / 0.25) = [e^4, e^8, e^12] / sum.
    z = math.exp(4) + math.exp(8) + math.exp(12)
    np.testing.assert_allclose(h_i[0], [math.exp(4) / z, math.exp(8) / z, math.exp(12) / z], rtol=1e-5)


def test_soft_policy_is_a_categorical_over_the_available_actions():
    # h(.|tau) with logits [1, 2, 3] and the last action unavailable: p = [1, e] / (1 + e), 0.
    h = policy(Q, jnp.array([True, True, False]))
    p = [1 / (1 + math.e), math.e / (1 + math.e), 0.0]
    np.testing.assert_allclose(h.probs, p, rtol=1e-6, atol=1e-12)
    assert float(h.entropy()) == pytest.approx(-(p[0] * math.log(p[0]) + p[1] * math.log(p[1])), rel=1e-6)
    draws = h.sample(seed=jax.random.PRNGKey(0), sample_shape=20_000)
    assert not bool(jnp.any(draws == 2))
    assert float(jnp.mean(draws == 1)) == pytest.approx(p[1], abs=0.015)


def test_policy_objective_is_the_exact_expectation_and_minimised_by_the_soft_policy():
    # eq. 10: sum_a h(a) (alpha log h(a) - Q(a)); its minimum over h is -V at h = softmax(Q / alpha).
    alpha = 0.5
    logits = jnp.array([0.3, -0.2, 0.1])
    lh = log_policy(logits, ALL)
    expected = float(jnp.sum(jnp.exp(lh) * (alpha * lh - Q)))
    assert float(policy_objective(lh, Q, ALL, alpha)) == pytest.approx(expected, rel=1e-6)
    best = policy_objective(log_policy(Q / alpha, ALL), Q, ALL, alpha)
    assert float(best) == pytest.approx(-float(soft_value(Q, ALL, alpha)), rel=1e-5)
    assert float(best) < expected
    # Gradient descent on the logits approaches that minimum.
    g = jax.grad(lambda l: policy_objective(log_policy(l, ALL), Q, ALL, alpha))
    x = logits
    for _ in range(500):
        x = x - 0.5 * g(x)
    np.testing.assert_allclose(jnp.exp(log_policy(x, ALL)), soft_policy(Q, ALL, alpha), atol=1e-3)


def test_weight_network_is_non_negative():
    net = WeightNetwork(hidden=8, num_agents=3)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros(5), jnp.zeros((3, 4)))
    params = jax.tree.map(lambda p: p * 50.0, params)  # large weights: pre-activations of both signs
    s = jax.random.normal(jax.random.PRNGKey(1), (256, 5)) * 10
    a = jax.nn.one_hot(jax.random.randint(jax.random.PRNGKey(2), (256, 3), 0, 4), 4)
    lam = net.apply(params, s, a)
    assert lam.shape == (256, 3)
    assert bool(jnp.all(lam >= 0))


def test_sdor_stor_gradient_points_toward_the_realised_action():
    # eq. 14: -log h(a_realised); a descent step raises h(a_realised) and lowers every other action.
    logits = jnp.array([[0.5, 0.2, -0.1]])
    realised = jnp.array([2])
    g = jax.grad(lambda l: jnp.sum(sdor_stor_loss(log_policy(l, ALL[None]), realised)))(logits)
    assert float(g[0, 2]) < 0 and float(g[0, 0]) > 0 and float(g[0, 1]) > 0
    before = jnp.exp(log_policy(logits, ALL[None]))[0]
    after = jnp.exp(log_policy(logits - 0.5 * g, ALL[None]))[0]
    assert after[2] > before[2] and after[0] < before[0]


def test_director_config_validation():
    with pytest.raises(ConfigError, match="protocol.attack_prob"):
        load_config(["adv=atsa", "protocol.attack_prob=0"])
    with pytest.raises(ConfigError, match="adv.director.kappa"):
        load_config(["adv=atsa", "adv.director.kappa=-1"])
    with pytest.raises(ConfigError, match="adv.director.value"):
        load_config(["adv=atsa", "adv.director.value=mean"])
    with pytest.raises(ConfigError, match="adv.director.individual_alpha"):
        load_config(["adv=atsa", "adv.director.individual_alpha=lambda"])
    with pytest.raises(ConfigError, match="adv.director.stor_action"):
        load_config(["adv=atsa", "adv.director.stor_action=sampled"])
    assert load_config(["adv=paad"]).adv.director.name == "qmix"


@pytest.mark.parametrize("name, config, stor", [("paad", (*SHORT, "adv.director.stor_action=taken"), "taken"), ("atsa", HALF, "greedy")])
def test_director_buffer_holds_the_clean_view_and_the_team_the_perturbed_one(name, config, stor):
    """What each side stores, and the protagonist action eq. 14 reads (`stor_action`): ATSA's
    default, greedy, read from the ATSA run; taken, from the PAAD run (the director's buffer code is
    shared, so each setting is compiled once)."""
    tr, state, new, sums = _one_iteration(f"adv={name}", *config)
    cfg = tr.cfg
    envs = cfg.alg.num_envs
    team_seq = jax.tree.map(lambda x: np.asarray(x)[:envs], new.learner.buffer)
    adv_seq = jax.tree.map(lambda x: np.asarray(x)[:envs], new.adversary["buffer"].seq)
    eps = tr.env.default_eps
    assert np.any(team_seq.obs != adv_seq.obs)  # the team saw perturbed observations
    assert np.all(np.abs(team_seq.obs - adv_seq.obs) <= eps + 1e-6)
    np.testing.assert_array_equal(adv_seq.reward, -team_seq.reward)  # the director's reward is -r
    np.testing.assert_array_equal(adv_seq.state, team_seq.state)
    team_action = np.asarray(new.adversary["buffer"].team_action)[:envs]
    # epsilon is 1 in the first iteration, so the greedy and the played actions differ.
    seq = jax.tree.map(jnp.asarray, team_seq).time_major()
    greedy = np.swapaxes(np.asarray(masked_argmax(tr.learner.unroll_q(state.learner.params["agent"], seq), seq.avail)), 0, 1)[:, :-1]
    assert np.any(greedy != team_seq.action)
    # eq. 14's pi(o~): the team's greedy action on what it saw (or, taken, the one it played).
    np.testing.assert_array_equal(team_action, greedy if stor == "greedy" else team_seq.action)
    assert np.all(adv_seq.action >= 0) and np.all(adv_seq.action < tr.env.num_actions)
    targets_available = np.take_along_axis(adv_seq.avail[:, :-1], adv_seq.action[..., None], -1)
    assert targets_available.all()  # targets are among the protagonist's available actions
    assert int(new.adversary["learner"].updates) == cfg.adv.director.updates_per_rollout
    assert np.isfinite(float(sums["adv_loss"]))


def test_director_learns_only_from_attacked_episodes():
    tr, _, new, _ = _one_iteration("adv=atsa", *HALF)
    attacked = np.asarray(new.adversary["buffer"].attacked)[:16]  # [E, T]
    moved = np.any(np.asarray(new.learner.buffer.obs)[:16, :-1] != np.asarray(new.adversary["buffer"].seq.obs)[:16, :-1], axis=(-1, -2))
    assert not moved[~attacked].any()  # unattacked episodes: the team saw the clean view
    assert moved[attacked].mean() > 0.9 and 0.2 < attacked.mean() < 0.8
    # The loss weights: zero weight on every step makes the gradient vanish.
    batch = jax.tree.map(lambda x: x[:4], new.adversary["buffer"])
    lrn, ls = tr.adversary.learner, new.adversary["learner"]
    g = jax.grad(lambda p: lrn.loss(p, ls.target_params, batch.seq.time_major(), jnp.swapaxes(batch.team_action, 0, 1), 0.1, jax.random.PRNGKey(0), jnp.zeros((32, 4)))[0])(ls.params)
    assert all(float(jnp.max(jnp.abs(x))) == 0.0 for x in jax.tree.leaves(g))


@pytest.mark.parametrize("value", ["network", "logsumexp"])
def test_individual_value_of_sdor(value):
    """value=network: V_i is an output of its own, fitted by eq. 9, which then sends no gradient
    into the Q_i outputs; value=logsumexp: V_i = alpha logsumexp(Q_i / alpha), so eq. 9 moves Q_i."""
    _, _, new, _ = _one_iteration("adv=atsa", *HALF)
    batch = jax.tree.map(lambda x: x[:4], new.adversary["buffer"])
    tr = _trainer("adv=atsa", *HALF, f"adv.director.value={value}")
    lrn = tr.adversary.learner
    ls = lrn.init(jax.random.PRNGKey(3))
    out = ls.params["q"]["params"]["fc_out"]["bias"]
    assert out.shape == (tr.env.num_actions + (value == "network"),)

    def v_loss(p):
        return lrn.loss(p, ls.target_params, batch.seq.time_major(), jnp.swapaxes(batch.team_action, 0, 1), 0.1, jax.random.PRNGKey(0))[1]["v_loss"]

    g = jax.grad(v_loss)(ls.params)["q"]["params"]["fc_out"]
    q_cols = float(jnp.max(jnp.abs(g["kernel"][:, : tr.env.num_actions])))
    if value == "network":
        assert q_cols == 0.0 and float(jnp.max(jnp.abs(g["kernel"][:, -1]))) > 0.0
    else:
        assert q_cols > 0.0


def test_weighted_individual_alpha_divides_alpha_by_the_mixing_weight():
    """individual_alpha=weighted: eqs. 9-10 use alpha_i = alpha / lambda_i(s, a^) (eq. 6), so the
    policy objective equals eq. 10 evaluated at that temperature; shared keeps alpha."""
    losses = {}
    _, _, new, _ = _one_iteration("adv=atsa", *HALF)
    batch = jax.tree.map(lambda x: x[:4], new.adversary["buffer"])
    p = new.adversary["learner"].params
    seq = batch.seq.time_major()
    for mode in ("shared", "weighted"):
        tr = _trainer("adv=atsa", *HALF, f"adv.director.individual_alpha={mode}")
        lrn = tr.adversary.learner
        aux = lrn.loss(p, new.adversary["learner"].target_params, seq, jnp.swapaxes(batch.team_action, 0, 1), 0.1, jax.random.PRNGKey(0))[1]
        lam = lrn.mixing_weights(p, seq.state[:-1], seq.action)
        q = lrn._q_and_v(p["q"], seq, 0.1)[0][:-1]
        log_h = log_policy(unroll_sequence(p["pi"], seq.hidden["pi"], seq, tr.env.num_actions), seq.avail)[:-1]
        alpha_i = 0.1 / lam if mode == "weighted" else jnp.full_like(lam, 0.1)
        expected = jnp.mean(policy_objective(log_h, q, seq.avail[:-1], alpha_i[..., None]))
        assert float(aux["policy"]) == pytest.approx(float(expected), rel=1e-4, abs=1e-6)
        losses[mode] = float(aux["policy"])
    assert float(jnp.min(lam)) > 1e-3 and abs(losses["weighted"] - losses["shared"]) > 1e-6


def test_atsa_samples_its_targets_and_paad_is_greedy_in_test_mode():
    from jarob import envs
    from jarob.adversaries import TeamView

    env = envs.make("smax_3m")
    _, ts = env.reset(jax.random.PRNGKey(0))
    view = TeamView(lambda o: o[:, : env.num_actions], ts.avail, ts.state, jnp.asarray(True))
    for name, varies in (("atsa", True), ("paad", False)):
        cfg = load_config([f"adv={name}", *TINY_DIRECTOR]).adv
        adv = adversaries.make(cfg, env)
        st = adv.init(jax.random.PRNGKey(1))
        carry = jax.tree.map(lambda x: x[0], adv.initial_carry(1))
        targets = {tuple(np.asarray(adv.act(st, carry, ts.obs, view, jax.random.PRNGKey(k), False)[2]["target"])) for k in range(12)}
        assert (len(targets) > 1) == varies


def test_adversarial_training_attack_mode_and_learned_attacker_column(tiny_run, tmp_path):
    from jarob.attack import main as attack
    from jarob.evaluate import main as evaluate
    from jarob.train import main as train

    atsa_run = tmp_path / "atsa"
    assert train(TINY + ["adv=atsa", *TINY_DIRECTOR, f"run_dir={atsa_run}"]) == 0
    summary = json.loads((atsa_run / "summary.json").read_text())
    assert summary["adv"] == "atsa" and (atsa_run / "team.msgpack").exists() and (atsa_run / "adversary.msgpack").exists()

    # An ATSA attacker on the plain team (the K-attacker tests train PAAD attackers; the notebooks
    # train both with these settings, so the compilation cache serves them).
    attack_run = tmp_path / "atsa_attack"
    assert attack([f"victim={tiny_run}", "adv=atsa", *TINY_DIRECTOR, f"run_dir={attack_run}", *TINY_LOOP, *QUIET]) == 0
    summary = json.loads((attack_run / "summary.json").read_text())
    assert summary["victim"] == str(tiny_run) and summary["seeds"] == 2 and not (attack_run / "team.msgpack").exists()

    out = tmp_path / "eval"
    assert evaluate([f"runs=[{tiny_run},{atsa_run}]", f"adversaries=[none,fgsm,{attack_run},{atsa_run}]", "episodes=4", f"out={out}", "progress=false"]) == 0
    cells = (out / "cells.csv").read_text().splitlines()
    assert len(cells) == 1 + 2 * 2 * 4
    assert any(",atsa_attack," in c for c in cells) and any(",atsa," in c for c in cells)


def test_attack_cli_errors(tiny_run, tmp_path, capsys):
    from jarob.attack import main as attack

    for args, message in (
        ([f"victim={tmp_path / 'missing'}", "adv=paad"], "does not exist"),
        ([f"victim={tiny_run}", "adv=fgsm"], "learned attacker"),
        ([f"victim={tiny_run}", "adv=atsa", "alg.lr=1"], "comes from the victim"),
        ([f"victim={tiny_run}", "adv=atsa", "env.name=smax_8m"], "comes from the victim"),
        (["adv=atsa"], "victim"),
    ):
        assert attack(args + [f"run_dir={tmp_path / 'a'}"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err
        assert not (tmp_path / "a").exists()


def test_attack_budget_may_differ_from_the_victims(tiny_run):
    from jarob.attack import attack_config

    assert attack_config(str(tiny_run), ["adv=paad"]).env.eps is None
    assert attack_config(str(tiny_run), ["adv=paad", "env.eps=0.1"]).env.eps == pytest.approx(0.1)


def test_director_config_only_for_director_adversaries():
    assert not hasattr(adv_config("fgsm"), "director")
    with pytest.raises(ConfigError, match="adv.director: unknown key; allowed: name, random_start"):
        load_config(["adv=fgsm", "+adv.director.lr=0.1"])


def test_sdor_drops_a_nonfinite_step():
    """SDor's gradient step: a clean batch is applied, one whose gradient is NaN leaves the soft
    learner's state exactly as it was and counts one dropped step (`keep_if_finite`)."""
    tr, _, new, sums = _one_iteration("adv=atsa", *HALF)
    assert float(sums["adv_dropped_updates"]) == 0.0
    lrn, ls = tr.adversary.learner, new.adversary["learner"]
    buf = new.adversary["buffer"]
    attacked = np.flatnonzero(np.asarray(buf.attacked)[: tr.cfg.alg.num_envs].any(-1))[:2]  # SDor learns from these
    batch = jax.tree.map(lambda x: x[attacked], buf)
    update = jax.jit(lrn.update)
    stepped, m = update(ls, batch, jnp.int32(64), jax.random.PRNGKey(1))
    assert float(m["dropped"]) == 0.0 and int(stepped.updates) == int(ls.updates) + 1
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(stepped.params), jax.tree.leaves(ls.params)))
    poisoned = batch.replace(seq=batch.seq.replace(obs=batch.seq.obs.at[0].set(jnp.nan)))
    kept, m = update(ls, poisoned, jnp.int32(64), jax.random.PRNGKey(1))
    assert float(m["dropped"]) == 1.0 and not np.isfinite(float(m["loss"]))
    for a, b in zip(jax.tree.leaves(kept), jax.tree.leaves(ls)):
        np.testing.assert_array_equal(a, b)
