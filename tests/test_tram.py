"""TRAM: the binary search for beta, the variance- and J-based directions against finite
differences of their objectives on a tiny policy, that the attack changes only the poisoned
agent's sampling while the team learns and never an evaluation, its logged statistics, and its
config errors."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fakes import CountingEnv
from jarob import adversaries
from jarob.adversaries import TrainingView
from jarob.adversaries.tram import find_beta, masked_kl
from jarob.budgets import QUIET, TINY_DOP
from jarob.config import ConfigError, load_config
from jarob.learners import make
from jarob.rollout import collect, evaluate, init_actor


def _kl(logits, direction, avail, beta):
    ls = lambda x: jax.nn.log_softmax(jnp.where(avail, x, -1e9))  # noqa: E731
    return float(masked_kl(ls(logits + beta * direction), ls(logits), avail))


def test_beta_is_the_largest_within_the_budget():
    logits = jnp.array([1.0, 0.5, -0.3, 2.0])
    avail = jnp.array([True, True, True, False])
    direction = jnp.array([0.6, -0.8, 0.0, 0.0])
    for budget in (0.05, 0.3, 0.6):  # the KL along d tends to -log pi(0) = 0.63
        beta = float(find_beta(logits, direction, avail, budget, 55, 15))
        assert _kl(logits, direction, avail, beta) <= budget
        assert _kl(logits, direction, avail, beta * 1.001 + 1e-6) > budget
    # A budget no beta reaches (the KL is bounded by -log pi of the best action along d): beta grows to 2^55.
    assert float(find_beta(logits, direction, avail, 50.0, 55, 15)) > 1e15
    # No direction: any beta keeps pi.
    assert _kl(logits, jnp.zeros(4), avail, float(find_beta(logits, jnp.zeros(4), avail, 1.0, 55, 15))) == 0.0


def _tiny_view(advantages, policy_grad=None):
    """A linear softmax policy pi = softmax(W x) for 2 agents, 3 actions, as a TrainingView."""
    x = jnp.array([0.5, -1.0, 2.0])
    w = jnp.array([[[0.2, -0.1, 0.3], [0.0, 0.4, -0.2], [0.1, 0.1, 0.1]], [[0.3, 0.0, -0.1], [-0.2, 0.1, 0.0], [0.2, -0.3, 0.1]]])
    avail = jnp.ones((2, 3), bool)
    params = {"w": w}

    def log_pi(p):
        return jax.nn.log_softmax(jnp.einsum("nao,o->na", p["w"], x), axis=-1)

    return TrainingView(jnp.einsum("nao,o->na", w, x), avail, log_pi, params, advantages, policy_grad), x


def _fd_direction(logits, values):
    """unit(d/d delta sum_a softmax(l + delta)(a) values(a)) at delta = 0 by central differences."""
    f = lambda d: float(jnp.sum(jax.nn.softmax(logits + d) * values))  # noqa: E731
    h = 1e-3
    g = np.array([(f(jnp.zeros(3).at[i].set(h)) - f(jnp.zeros(3).at[i].set(-h))) / (2 * h) for i in range(3)])
    return g / np.linalg.norm(g)


def _adv(name, agent=1, **kw):
    from jarob.adversaries.tram import TRAMConfig

    cfg = TRAMConfig(name=name, agent=agent, f_a=kw.get("f_a", 1.0), kl_max=kw.get("kl_max", 6.0), bsn1=55, bsn2=15)
    return adversaries.ADVERSARIES.get(name)(cfg, CountingEnv(length=3), 0.1)


def test_variance_direction_is_the_gradient_of_its_objective():
    """g(a) = A(a)^2 ||grad_W log pi(a)||^2 with grad_W log pi(a) = (e_a - pi) x^T for a linear
    policy: delta^ = unit(grad_delta sum_a pi'(a) g(a))."""
    adv_values = jnp.array([[0.0, 0.0, 0.0], [1.5, -0.5, 0.7]])
    view, x = _tiny_view(adv_values)
    got = np.asarray(_adv("tram_variance").direction(view, jax.random.PRNGKey(0)))
    pi = np.asarray(jax.nn.softmax(view.scores[1]))
    g = np.array([float(adv_values[1, a]) ** 2 * np.sum((np.eye(3)[a] - pi) ** 2) * float(x @ x) for a in range(3)])
    np.testing.assert_allclose(got, _fd_direction(view.scores[1], jnp.asarray(g)), rtol=1e-3, atol=1e-4)
    assert np.linalg.norm(got) == pytest.approx(1.0, rel=1e-5)


def test_j_direction_descends_j_after_the_update():
    """h(a) = A(a) <g_J, grad_W log pi(a)> = A(a) (e_a - pi)^T g_J x for agent 1's rows of W:
    delta^ = unit(-grad_delta sum_a pi'(a) h(a))."""
    adv_values = jnp.array([[0.0, 0.0, 0.0], [1.5, -0.5, 0.7]])
    g_j = jnp.array([[[0.0] * 3] * 3, [[0.3, -0.2, 0.1], [0.0, 0.5, 0.2], [-0.4, 0.1, 0.0]]])
    view, x = _tiny_view(adv_values, {"w": g_j})
    got = np.asarray(_adv("tram_j").direction(view, jax.random.PRNGKey(0)))
    pi = np.asarray(jax.nn.softmax(view.scores[1]))
    h = np.array([float(adv_values[1, a]) * float((np.eye(3)[a] - pi) @ np.asarray(g_j[1]) @ np.asarray(x)) for a in range(3)])
    np.testing.assert_allclose(got, _fd_direction(view.scores[1], -jnp.asarray(h)), rtol=1e-3, atol=1e-4)


def test_attack_changes_only_the_poisoned_agent_and_never_an_evaluation():
    env = CountingEnv(length=3, num_agents=3, num_actions=4)
    cfg = load_config(["alg=dop", "alg.hidden_dim=8", "alg.critic_hidden_dim=8", "alg.mixer_hidden_dim=8", "alg.num_envs=8", "alg.rollout_len=6", "alg.minibatches=1"]).alg
    learner = make(cfg, env)
    state = learner.init(jax.random.PRNGKey(0), learning=True)
    team = learner.acting_team(state)
    actor = init_actor(env, learner, jax.random.PRNGKey(1), cfg.num_envs)

    def actions(adversary, f_a=None):
        adv_state = None if adversary is None else adversary.init(jax.random.PRNGKey(5))
        _, _, records, _ = collect(env, learner, team, actor, jax.random.PRNGKey(2), jnp.float32(0.0), cfg.rollout_len, adversary, adv_state)
        return records

    clean = actions(None)
    off = actions(_adv("tram_random", agent=1, f_a=0.0))
    np.testing.assert_array_equal(off.action, clean.action)  # f_A = 0: the learner's own choices
    on = actions(_adv("tram_random", agent=1, f_a=1.0, kl_max=20.0))
    np.testing.assert_array_equal(on.action[..., [0, 2]], clean.action[..., [0, 2]])
    assert np.mean(np.asarray(on.action[..., 1]) != np.asarray(clean.action[..., 1])) > 0.2
    assert np.all(np.asarray(on.adv_out["attacked"]))
    assert np.all(np.asarray(on.adv_out["kl"]) <= 20.0 + 1e-4)
    half = _adv("tram_random", agent=1, f_a=0.5)
    stats = half.rollout_stats(actions(half))
    assert float(stats["attack_rate"][0] / stats["attack_rate"][1]) == pytest.approx(0.5, abs=0.15)
    # Evaluations are clean: the same episodes with and without the attacker.
    tram = _adv("tram_random", agent=1)
    a = evaluate(env, learner, team, jax.random.PRNGKey(7), 16)
    b = evaluate(env, learner, team, jax.random.PRNGKey(7), 16, tram, tram.init(jax.random.PRNGKey(0)))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)


def test_config_errors():
    for overrides, key in (
        (["alg=mappo", "adv=tram_variance"], "needs the team's per-action advantages"),
        (["alg=qmix", "adv=tram_random"], "alg=qmix is not one"),
        (["alg=dop", "adv=tram_j", "adv.agent=3"], "adv.agent"),
        (["alg=dop", "adv=tram_j", "adv.f_a=1.5"], "adv.f_a"),
        (["alg=dop", "adv=tram_j", "adv.kl_max=0"], "adv.kl_max"),
    ):
        with pytest.raises(ConfigError, match=key):
            load_config(overrides)
    load_config(["alg=mappo", "adv=tram_random"])


def test_tram_trains_logs_its_statistics_and_is_no_evaluation_column(tmp_path, capsys):
    from jarob.evaluate import main as evaluate_main
    from jarob.train import main as train

    run = tmp_path / "tram"
    assert train(["env=smax_3m", *TINY_DOP, "adv=tram_variance", *QUIET, f"run_dir={run}"]) == 0
    rows = (run / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert {"attack_rate", "attack_kl", "stealth_ll"} <= set(header)
    last = dict(zip(header, rows[-1].split(",")))
    assert float(last["attack_rate"]) == 1.0 and 0.0 <= float(last["attack_kl"]) <= 6.0 + 1e-4 and float(last["stealth_ll"]) < 0
    assert json.loads((run / "summary.json").read_text())["adv"] == "tram_variance"
    assert evaluate_main([f"runs=[{run}]", "adversaries=[none,tram_random]", "episodes=4", f"out={tmp_path / 'e'}", "progress=false"]) == 2
    assert "never at test time" in capsys.readouterr().err
