"""Cross evaluation of trained teams against adversaries (the papers' tables).

A *team* is a trained run: its agent parameters for every seed. A *cell* is one (team, seed,
adversary, eps): `episodes` greedy episodes under the adversary in test mode. Every team that
shares an agent architecture is evaluated against one adversary in one jitted call vmapped
over (team, seed) pairs, sharded one pair per host device; the budget eps is part of the
adversary's state, so an eps sweep reuses the compiled program. On a host env (a simulator
stepped in Python) `HostEvaluator` plays the same cells through the host driver.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jarob import learners
from jarob.envs import MarlEnv
from jarob.devices import leading_axis_sharding
from jarob.rollout import evaluate
from jarob.trainer import seed_keys


class EvaluationError(Exception):
    """A problem with the evaluator's inputs; the message is one line."""


@dataclass(frozen=True)
class Team:
    """A trained team: the team pytree (`learner.team`) of each of its seeds (every leaf [seeds, ...])."""

    label: str
    env_name: str
    alg: Any  # its learner's config
    params: Any
    seeds: int
    run_dir: Optional[str] = None


@dataclass(frozen=True)
class Cell:
    team: str
    seed: int
    adversary: str
    eps: float
    win_rate: float
    ret: float
    length: float
    attacker: Optional[int] = None  # which of a learned column's attackers (None: not a learned column)
    crash_rate: float = 0.0  # the fraction of episodes that ended in a crash (0 on envs without crashes)


@dataclass(frozen=True)
class Attacker:
    """A trained learned adversary (a `jarob.attack` run, or the adversary of an adversarially
    trained run): its acting parameters, `attackers` per victim seed (every leaf
    [seeds * attackers, ...], attacker k of seed s at s * attackers + k)."""

    label: str
    env_name: str
    adv: Any  # its adversary's config
    params: Any
    seeds: int  # victim seeds it was trained against
    run_dir: str
    attackers: int = 1

    def lane(self, team_seed: int, k: int) -> int:
        """The index of attacker k of the attacker seed that attacks `team_seed` of a team
        (seed team_seed % seeds: a team with more seeds than the attack run reuses them)."""
        return (team_seed % self.seeds) * self.attackers + k


def _run_config(run_dir: str, what: str):
    """The saved TrainConfig of a run directory; EvaluationError (naming `what`) if it is not one."""
    from omegaconf import OmegaConf

    from jarob.config import from_saved

    if not os.path.isdir(run_dir):
        raise EvaluationError(f"{what}: {run_dir!r} does not exist")
    cfg_path = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(cfg_path):
        raise EvaluationError(f"{what}: {run_dir!r} is not a jarob run directory (no config.yaml)")
    try:
        return from_saved(OmegaConf.to_container(OmegaConf.load(cfg_path), resolve=True))
    except Exception as exc:  # noqa: BLE001 - any unreadable config is one error
        raise EvaluationError(f"{what}: {run_dir!r} has an unreadable config.yaml ({str(exc).splitlines()[0]})") from None


def _run_params(run_dir: str, filename: str, what: str, missing: str):
    from jarob.checkpoint import load_params

    if not os.path.isfile(os.path.join(run_dir, filename)):
        raise EvaluationError(f"{what}: {run_dir!r} has no {missing} ({filename}); has its training finished?")
    params = load_params(run_dir, filename)
    return params, int(jax.tree.leaves(params)[0].shape[0])


def load_team(run_dir: str, label: Optional[str] = None) -> Team:
    """The team a `jarob.train` run directory holds; EvaluationError if it is not one."""
    from jarob.checkpoint import TEAM_FILE

    cfg = _run_config(run_dir, "runs")
    params, seeds = _run_params(run_dir, TEAM_FILE, "runs", "trained team")
    name = label or os.path.basename(os.path.normpath(run_dir))
    params = learners.LEARNERS.get(cfg.alg.name).team_from_saved(params)
    return Team(name, cfg.env.name, cfg.alg, params, seeds, run_dir)


def load_attacker(run_dir: str) -> Attacker:
    """The learned adversary a run directory holds; EvaluationError if it holds none."""
    from jarob.checkpoint import ADVERSARY_FILE

    cfg = _run_config(run_dir, "adversaries")
    params, lanes = _run_params(run_dir, ADVERSARY_FILE, "adversaries", "trained attacker")
    if lanes != cfg.seeds * cfg.attackers:
        raise EvaluationError(f"adversaries: {run_dir!r} holds {lanes} attackers, its config.yaml says {cfg.seeds} seeds x {cfg.attackers}")
    return Attacker(os.path.basename(os.path.normpath(run_dir)), cfg.env.name, cfg.adv, params, cfg.seeds, run_dir, cfg.attackers)


def check_same_env(teams: list[Team]) -> str:
    envs = {t.env_name for t in teams}
    if len(envs) > 1:
        detail = ", ".join(f"{t.label}: {t.env_name}" for t in teams)
        raise EvaluationError(f"runs: every team must be trained on the same env; got {detail}")
    return envs.pop()


LAYOUT = ("num_agents", "obs_dim", "num_actions", "state_dim", "has_win")


def check_same_layout(trained, other) -> None:
    """Teams trained on env `trained` can play env `other` only where both have the same agents,
    observation, action and world-state sizes (and both have wins or neither)."""
    differ = [f"{k} {getattr(trained, k)} vs {getattr(other, k)}" for k in LAYOUT if getattr(trained, k) != getattr(other, k)]
    if differ:
        raise EvaluationError(f"env: the teams were trained on {trained.name}, whose layout differs from {other.name}'s: {', '.join(differ)}")


def _arch(env: MarlEnv, alg) -> tuple:
    """What an evaluation program depends on: the team learner's architecture."""
    return learners.make(alg, env).architecture()


def _stack(trees: list) -> Any:
    return jax.tree.map(lambda *xs: jnp.concatenate([jnp.asarray(x) for x in xs], axis=0), *trees)


class CrossEvaluator:
    """Evaluates teams x adversaries on one env; compiled programs are cached per
    (architecture, adversary, episodes)."""

    def __init__(self, env: MarlEnv, episodes: int, seed: int = 0, devices: Optional[int] = None, make_learner: Callable = learners.make):
        self.env = env
        self.episodes = episodes
        self.seed = seed
        self.devices = devices or len(jax.devices())
        self.make_learner = make_learner  # (alg, env) -> a team learner (jarob.learners.base)
        self._programs: dict = {}

    def _program(self, alg, adv_name: str, adversary, batch: int, learned: bool) -> Callable:
        key = (self.make_learner(alg, self.env).architecture(), adv_name, id(adversary), batch)
        if key not in self._programs:
            learner = self.make_learner(alg, self.env)

            def one(params, adv_state, k):
                return evaluate(self.env, learner, params, k, self.episodes, adversary, adv_state)

            sharding = leading_axis_sharding(batch)
            # A learned attacker brings parameters per (team, seed) pair: its state is batched.
            fn = jax.jit(jax.vmap(one, in_axes=(0, 0 if learned else None, 0)), out_shardings=sharding)
            self._programs[key] = (fn, sharding)
        return self._programs[key]

    def run_group(self, teams: list[Team], adv_name: str, adversary, eps: float, attacker: Optional[Attacker] = None) -> list[Cell]:
        """Every (team, seed) of `teams` (one architecture) against one adversary at one eps.
        Every attacker of a learned `attacker` that attacks seed s (`Attacker.lane`) plays seed
        s of every team: a cell each (`Cell.attacker`), the strongest chosen by the report."""
        params = _stack([t.params for t in teams])
        # Seed index i of every team and adversary plays the same episodes' randomness.
        keys = jnp.concatenate([seed_keys(self.seed, t.seeds) for t in teams])
        pairs = [(t.label, s) for t in teams for s in range(t.seeds)]
        per_seed = attacker.attackers if attacker is not None else 1
        owners = [(i, k) for i in range(len(pairs)) for k in range(per_seed)]  # (team seed, its attacker)
        pair = np.array([i for i, _ in owners])
        n = len(owners)
        batch = min(n, self.devices)
        fn, sharding = self._program(teams[0].alg, adv_name, adversary, batch, attacker is not None)
        if attacker is not None:
            pick = np.array([attacker.lane(pairs[i][1], k) for i, k in owners])
            adv_states = adversary.attacker_state(jax.tree.map(lambda x: jnp.asarray(x)[pick], attacker.params), jnp.full((n,), eps, jnp.float32))
        else:
            adv_state = adversary.init(jax.random.PRNGKey(0), eps) if adversary is not None else None
        won, ret, length, crashed = [], [], [], []
        for start in range(0, n, batch):
            idx = np.arange(start, start + batch) % n  # the last batch is padded by wrapping
            p = jax.device_put(jax.tree.map(lambda x: x[pair[idx]], params), sharding)
            k = jax.device_put(keys[pair[idx]], sharding)
            if attacker is not None:
                adv_state = jax.device_put(jax.tree.map(lambda x: x[idx], adv_states), sharding)
            stats = jax.tree.map(np.asarray, fn(p, adv_state, k))
            take = min(batch, n - start)
            won.append(stats.won[:take])
            ret.append(stats.ret[:take])
            length.append(stats.length[:take])
            crashed.append(stats.crashed[:take])
        won, ret, length, crashed = (np.concatenate(x) for x in (won, ret, length, crashed))
        return [
            Cell(*pairs[p], adv_name, float(eps), float(won[i].mean()), float(ret[i].mean()), float(length[i].mean()), None if attacker is None else k, float(crashed[i].mean()))
            for i, (p, k) in enumerate(owners)
        ]


class HostEvaluator:
    """Evaluates teams x adversaries on a host env (`jarob.envs.host`): every (team, seed) in
    turn through the host driver on the simulator instances `envs`, with the keys and adversary
    states of `CrossEvaluator` (the same cells where the env is deterministic)."""

    def __init__(self, envs: list, episodes: int, seed: int = 0, make_learner: Callable = learners.make, mode: str = "loop"):
        from jarob.host_driver import check_envs

        check_envs(envs)
        self.envs = envs
        self.episodes = episodes
        self.seed = seed
        self.make_learner = make_learner
        self.mode = mode
        self._learners: dict = {}  # one learner per architecture: the driver's programs are compiled once

    def _learner(self, alg):
        learner = self.make_learner(alg, self.envs[0])
        return self._learners.setdefault(learner.architecture(), learner)

    def run_group(self, teams: list[Team], adv_name: str, adversary, eps: float, attacker: Optional[Attacker] = None) -> list[Cell]:
        """Every (team, seed) of `teams` (one architecture) against one adversary at one eps, and
        against every attacker of a learned `attacker` (as `CrossEvaluator.run_group`)."""
        from jarob.host_driver import evaluate_host

        learner = self._learner(teams[0].alg)
        cells = []
        for t in teams:
            keys = seed_keys(self.seed, t.seeds)
            for s in range(t.seeds):
                params = jax.tree.map(lambda x: jnp.asarray(x)[s], t.params)
                for k in range(attacker.attackers if attacker is not None else 1):
                    if attacker is not None:
                        adv_state = adversary.attacker_state(jax.tree.map(lambda x: jnp.asarray(x)[attacker.lane(s, k)], attacker.params), jnp.float32(eps))
                    else:
                        adv_state = adversary.init(jax.random.PRNGKey(0), eps) if adversary is not None else None
                    stats = jax.tree.map(np.asarray, evaluate_host(self.envs, learner, params, keys[s], self.episodes, adversary, adv_state, self.mode))
                    won, ret, length, crashed = (float(x.mean()) for x in (stats.won, stats.ret, stats.length, stats.crashed))
                    cells.append(Cell(t.label, s, adv_name, float(eps), won, ret, length, None if attacker is None else k, crashed))
        return cells


def group_by_architecture(teams: list[Team], env: MarlEnv) -> list[list[Team]]:
    """The teams in groups of one architecture (one vmapped evaluation program each)."""
    groups: dict = {}
    for t in teams:
        groups.setdefault(_arch(env, t.alg), []).append(t)
    return list(groups.values())
