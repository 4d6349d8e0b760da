"""docs/extending.md's examples (docs/examples/*.py) run: a new environment, a new team learner
and adversaries of two channels, each a module that registers itself."""

import dataclasses
import importlib.util
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from fakes import LinearTeam
from jarob import adversaries, envs
from jarob.config import EnvConfig, load_config
from jarob.rollout import evaluate

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"jarob_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


climbing, learner_example, adversary_example = _load("climbing_env"), _load("vdn_state_bias"), _load("extra_adversaries")
OPTIMUM = {"w": jnp.zeros((2, 3)), "b": jnp.array([1.0, 0.0, 0.0])}  # a linear team that plays (0, 0)


def test_new_environment_is_registered_and_plays():
    env = envs.make("climbing")
    assert "climbing" in envs.names() and isinstance(env, climbing.ClimbingEnv)
    stats = evaluate(env, LinearTeam(), OPTIMUM, jax.random.PRNGKey(0), 8)
    np.testing.assert_allclose(np.asarray(stats.ret), 11 / 30, rtol=1e-6)
    assert bool(jnp.all(stats.won)) and bool(jnp.all(stats.length == 1))


def test_new_learner_trains_on_the_new_environment():
    from jarob.trainer import Trainer

    small = ["alg=vdn", "alg.num_envs=4", "alg.rollout_len=4", "alg.batch_size=4", "alg.buffer_size=8", "alg.hidden_dim=8", "total_steps=64", "eval_every=32", "eval_episodes=4"]
    cfg = load_config(small)
    cfg = dataclasses.replace(cfg, env=EnvConfig("climbing", None), alg=dataclasses.replace(cfg.alg, name="vdn_s"))
    tr = Trainer(cfg)
    assert isinstance(tr.learner, learner_example.VDNStateBias)
    state = tr.init(jax.random.PRNGKey(0))
    new, m = jax.jit(tr.chunk)(state, jnp.int32(0), jnp.int32(2))
    assert int(new.learner.updates) == 2 * cfg.alg.updates_per_rollout and np.isfinite(float(m.loss))
    assert "params" in new.learner.params["mixer"]  # the state-value bias has parameters of its own
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(new.learner.params), jax.tree.leaves(state.learner.params)))


def test_new_observation_adversary_stays_in_its_ball():
    env = envs.make("climbing")
    adv = adversaries.make(adversary_example.GaussianConfig("gaussian", 3.0), env, 0.2)
    obs = jnp.array([[1.0, 0.5], [1.0, -0.9]])
    out = np.asarray(adv.perturb(adv.init(jax.random.PRNGKey(0)), obs, None, jax.random.PRNGKey(1)))
    assert (out[:, 0] == 1.0).all()  # never the unperturbable feature
    assert (np.abs(out[:, 1] - np.asarray(obs[:, 1])) <= 0.2 + 1e-6).all() and (out[:, 1] >= -1).all()
    assert (out[:, 1] != np.asarray(obs[:, 1])).any()


def test_new_action_adversary_through_the_rollout():
    """At prob 1 every agent repeats the action it played first; here the episodes last one step,
    so the delay never bites, and the team keeps its clean return."""
    env = envs.make("climbing")
    adv = adversaries.make(adversary_example.DelayConfig("delay", 1.0), env, 0.0)
    assert adv.channel == "action"
    stats = evaluate(env, LinearTeam(), OPTIMUM, jax.random.PRNGKey(0), 8, adv, adv.init(jax.random.PRNGKey(0)))
    assert bool(jnp.all(stats.won))
    view = adversaries.ActionView(jnp.zeros((2, 3)), jnp.ones((2, 3), bool), jnp.zeros(2), jnp.bool_(False))
    played, carry, _ = adv.act({}, {"last": jnp.array([2, 1])}, jnp.array([0, 0]), view, jax.random.PRNGKey(0))
    assert played.tolist() == [2, 1] and carry["last"].tolist() == [2, 1]
