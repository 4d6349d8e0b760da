"""The host driver (jarob.host_driver): a team and its adversary on envs stepped in Python."""

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fakes import LinearTeam

from jarob import adversaries
from jarob.config import adv_config
from jarob.envs import MarlEnv, PerturbationSpec
from jarob.envs.host import HostEnv, JaxEnvOnHost, key_of_seed, seed_of_key
from jarob.host_driver import HostEnvError, evaluate_host
from jarob.rollout import evaluate


class GuessEnv(MarlEnv):
    """Episodes of up to `length` steps. A reset draws x ~ U(0, 1); every agent sees [x, t / length]
    and must play 1 iff x > 0.5: a wrong joint action ends the episode (lost), a right one pays 1.
    With `slip` > 0 a right step also ends the episode lost with that probability (a stochastic step)."""

    has_win = True

    def __init__(self, slip: float = 0.0, length: int = 3):
        self.name, self.slip, self.length = "guess", slip, length
        self.num_agents, self.num_actions, self.obs_dim, self.state_dim = 2, 2, 2, 2
        self.max_steps, self.default_eps = length, 0.1
        self.perturbation = PerturbationSpec(mask=np.array([True, False]), low=np.zeros(2, np.float32), high=np.ones(2, np.float32))

    def _reset(self, key):
        return jnp.zeros((), jnp.int32), jax.random.uniform(key)

    def _step(self, key, inner, actions):
        t, x = inner
        right = jnp.all(actions == (x > 0.5)) & (jax.random.uniform(key) >= self.slip)
        t = t + 1
        done = ~right | (t >= self.length)
        return (t, x), right.astype(jnp.float32), done, right & (t >= self.length)

    def _view(self, inner):
        t, x = inner
        view = jnp.stack([x, t / self.length])
        return jnp.broadcast_to(view, (self.num_agents, 2)), jnp.ones((self.num_agents, 2), bool), view


TEAM = LinearTeam()
PARAMS = {"w": jnp.array([[-1.0, 1.0], [0.0, 0.0]]), "b": jnp.array([0.5, -0.5])}  # Q_1 - Q_0 = 2x - 1: always right
EXACT = GuessEnv()
ADVERSARIES = {
    "none": None,
    "fgsm": adversaries.make(adv_config("fgsm"), EXACT, 0.1),  # pushes x across 0.5 where |x - 0.5| < 0.1
    "malicious": adversaries.make(adv_config("malicious", {"rate": 0.3}), EXACT),  # a hijacked agent plays wrong
}


def _adv(name):
    adv = ADVERSARIES[name]
    return adv, None if adv is None else adv.init(jax.random.PRNGKey(0))


def _stats(stats):
    return {k: np.asarray(v) for k, v in zip(("won", "ret", "length"), (stats.won, stats.ret, stats.length))}


def test_seeds_carry_the_reset_keys():
    key = jax.random.split(jax.random.PRNGKey(7), 5)[3]
    np.testing.assert_array_equal(key_of_seed(seed_of_key(key)), key)
    np.testing.assert_array_equal(key_of_seed(12345), jax.random.PRNGKey(12345))


@pytest.mark.parametrize("adv_name", ["none", "fgsm", "malicious"])
def test_wrapped_deterministic_env_plays_the_native_episodes(adv_name):
    """JaxEnvOnHost of a deterministic env (random resets) on 5 host envs gives the 12 episodes of
    rollout.evaluate on the native env exactly, clean, under fgsm (observation channel) and under
    malicious agents (action channel, random: the adversary's keys follow the native ones)."""
    adv, st = _adv(adv_name)
    key = jax.random.PRNGKey(3)
    native = _stats(evaluate(EXACT, TEAM, PARAMS, key, 12, adv, st))
    host = _stats(evaluate_host([JaxEnvOnHost(EXACT) for _ in range(5)], TEAM, PARAMS, key, 12, adv, st))
    for k in native:
        np.testing.assert_array_equal(host[k], native[k], err_msg=k)
    wins = {"none": 12, "fgsm": 10, "malicious": 5}[adv_name]  # each adversary changes the outcomes
    assert int(native["won"].sum()) == wins and (native["length"] < 3).any() == (adv_name != "none")


@pytest.mark.parametrize("adv_name", ["fgsm", "malicious"])
def test_loop_and_callback_give_identical_episodes(adv_name):
    """The Python loop and the io_callback program (4 host envs, 10 episodes of a stochastic env)."""
    adv, st = _adv(adv_name)
    envs = [JaxEnvOnHost(GuessEnv(slip=0.2)) for _ in range(4)]
    key = jax.random.PRNGKey(5)
    loop = _stats(evaluate_host(envs, TEAM, PARAMS, key, 10, adv, st, mode="loop"))
    callback = _stats(evaluate_host(envs, TEAM, PARAMS, key, 10, adv, st, mode="callback"))
    for k in loop:
        np.testing.assert_array_equal(callback[k], loop[k], err_msg=k)
    assert 0 < loop["won"].sum() < 10


def test_stochastic_env_win_rates_agree_within_sampling_noise():
    """With a random step the wrapped env draws its own step keys: different episodes, the same
    win rate (0.8^3 = 0.512) within sampling noise."""
    env, n, key = GuessEnv(slip=0.2), 400, jax.random.PRNGKey(11)
    native = _stats(evaluate(env, TEAM, PARAMS, key, n))
    host = _stats(evaluate_host([JaxEnvOnHost(env) for _ in range(8)], TEAM, PARAMS, key, n))
    assert np.any(native["won"] != host["won"])  # the steps' randomness differs
    p = (native["won"].mean() + host["won"].mean()) / 2
    assert abs(native["won"].mean() - host["won"].mean()) < 4 * np.sqrt(2 * p * (1 - p) / n)
    assert abs(p - 0.512) < 4 * np.sqrt(0.512 * 0.488 / (2 * n))


class Endless(HostEnv):
    """A numpy env that never ends an episode (a broken simulator)."""

    name, num_agents, obs_dim, num_actions, state_dim, max_steps = "endless", 2, 2, 2, 2, 3

    def reset(self, seed):
        return {"obs": np.zeros((2, 2), np.float32), "avail": np.ones((2, 2), bool), "state": np.zeros(2, np.float32)}

    def step(self, actions):
        return self.reset(0), 0.0, False, False


def test_bad_inputs_are_one_line_errors():
    envs = [JaxEnvOnHost(EXACT)]
    with pytest.raises(ValueError, match="^mode: must be one of loop, callback; got 'scan'$"):
        evaluate_host(envs, TEAM, PARAMS, jax.random.PRNGKey(0), 4, mode="scan")
    with pytest.raises(ValueError, match="^envs: guess and guess differ in max_steps$"):
        evaluate_host(envs + [JaxEnvOnHost(GuessEnv(length=4))], TEAM, PARAMS, jax.random.PRNGKey(0), 4)
    with pytest.raises(TypeError, match="^envs: GuessEnv is not a HostEnv"):
        evaluate_host([EXACT], TEAM, PARAMS, jax.random.PRNGKey(0), 4)
    for mode in ("loop", "callback"):
        with pytest.raises(HostEnvError, match=r"^host env endless: an episode ran 4 steps without done \(max_steps=3\)$"):
            evaluate_host([Endless()], TEAM, PARAMS, jax.random.PRNGKey(0), 2, mode=mode)


@pytest.fixture
def guess_host():
    """The host env `guess_host` (JaxEnvOnHost of GuessEnv), registered for one test; yields the
    instances built."""
    from jarob import envs

    made = []
    envs.register("guess_host", lambda name: made.append(JaxEnvOnHost(EXACT, name=name)) or made[-1])
    yield made
    envs._REGISTRY.pop("guess_host")


def test_jarob_evaluate_plays_a_host_env_through_the_driver(tmp_path, guess_host, capsys):
    """`python -m jarob.evaluate` on a team whose env is a host env: 3 simulator instances, and the
    cells of the cross evaluator on the native env (a QMIX team, 2 seeds). Training refuses it."""
    import csv
    import dataclasses

    from omegaconf import OmegaConf

    from jarob import envs, learners
    from jarob.checkpoint import TEAM_FILE, save_params
    from jarob.config import load_config, to_dict
    from jarob.evaluate import main
    from jarob.evaluation import CrossEvaluator, load_team
    from jarob.trainer import Trainer

    assert envs.is_host_env(envs.make("guess_host")) and not envs.is_host_env(EXACT)
    guess_host.clear()
    cfg = load_config(["alg=qmix", "alg.hidden_dim=8", "alg.mixer_embed_dim=4", "alg.hypernet_hidden=8", "seeds=2"])
    saved = to_dict(cfg)
    saved["env"]["name"] = "guess_host"
    run = tmp_path / "run"
    run.mkdir()
    OmegaConf.save(OmegaConf.create(saved), run / "config.yaml")
    learner = learners.make(cfg.alg, EXACT)
    save_params(str(run), TEAM_FILE, jax.vmap(lambda k: learner.team(learner.init(k)))(jax.random.split(jax.random.PRNGKey(1), 2)))

    out = tmp_path / "eval"
    args = [f"runs=[{run}]", "adversaries=[none,'malicious:rate=0.3']", "episodes=8", "host_envs=3", f"out={out}", "progress=false"]
    assert main(args) == 0 and len(guess_host) == 3
    got = [(r["adversary"], int(r["seed"]), float(r["win_rate"]), float(r["return"]), float(r["length"])) for r in csv.DictReader(open(out / "cells.csv"))]

    team, native = load_team(str(run)), CrossEvaluator(EXACT, 8, seed=0)
    malicious = adversaries.make(adv_config("malicious", {"rate": 0.3}), EXACT)
    cells = native.run_group([team], "none", None, 0.1) + native.run_group([team], "malicious:rate=0.3", malicious, 0.1)
    assert got == [(c.adversary, c.seed, c.win_rate, c.ret, c.length) for c in cells]
    with pytest.raises(ValueError, match="^env: guess_host is a host env"):
        Trainer(dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, name="guess_host")))

    # The same team trained on the native env `guess`, played on the host env (`env=guess_host`, or
    # as here, with no configs/env file for it, any env file renamed): the same cells; an env whose
    # layout differs is refused in one line.
    envs.register("guess", lambda name: EXACT)
    try:
        saved["env"]["name"] = "guess"
        native_run = tmp_path / "native"
        shutil.copytree(run, native_run)
        OmegaConf.save(OmegaConf.create(saved), native_run / "config.yaml")
        guess_host.clear()
        assert main(args[:-2] + [f"runs=[{native_run}]", f"out={tmp_path / 'moved'}", "progress=false", "env=smax_3m", "env.name=guess_host"]) == 0 and len(guess_host) == 3
        moved = [(r["adversary"], int(r["seed"]), float(r["win_rate"]), float(r["return"]), float(r["length"])) for r in csv.DictReader(open(tmp_path / "moved" / "cells.csv"))]
        assert moved == got
        assert main([f"runs=[{native_run}]", "adversaries=[none]", "env=smax_3m", f"out={tmp_path / 'no'}", "progress=false"]) != 0
        assert "whose layout differs from smax_3m's: num_agents 2 vs 3" in capsys.readouterr().err and not (tmp_path / "no").exists()
    finally:
        envs._REGISTRY.pop("guess")
