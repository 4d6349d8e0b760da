"""The host driver's overhead: host env steps per second with a trivial simulator.

    python benchmarks/host_overhead.py [envs=1,4,16] [seconds=2] [hidden=16]

A numpy-only host env (3 agents, 20-step episodes, nothing simulated) and a tiny VDN team (GRU of
`hidden` units) played greedily through `jarob.host_driver.evaluate_host`, in the Python loop and
in the io_callback program, with E parallel host envs. Each measurement runs about `seconds`
after a warm-up call that compiles. Reports host env steps/s (every env.step call) and driver
steps/s (one jitted decision for the E envs each), beside the simulator alone.
"""

from __future__ import annotations

import sys
import time

import jax
import numpy as np

from jarob.config import load_config
from jarob.envs import PerturbationSpec
from jarob.envs.host import HostEnv
from jarob.host_driver import evaluate_host
from jarob.learners.value_decomposition import ValueDecomposition


class TrivialHostEnv(HostEnv):
    """Fixed-length episodes of constant views: the cost of the API and nothing else."""

    name, num_agents, obs_dim, num_actions, state_dim, max_steps = "trivial", 3, 8, 5, 10, 20
    has_win, default_eps = True, 0.1
    perturbation = PerturbationSpec(np.ones(8, bool), np.zeros(8, np.float32), np.ones(8, np.float32))

    def __init__(self):
        self._view = {"obs": np.zeros((3, 8), np.float32), "avail": np.ones((3, 5), bool), "state": np.zeros(10, np.float32)}
        self.t = 0

    def reset(self, seed):
        self.t = 0
        return self._view

    def step(self, actions):
        self.t += 1
        done = self.t >= self.max_steps
        return self._view, 1.0, done, done


def simulator_alone(seconds: float) -> float:
    """Host env steps/s of the trivial env on its own."""
    env, actions, steps = TrivialHostEnv(), np.zeros(3, np.int32), 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        env.reset(0)
        for _ in range(env.max_steps):
            env.step(actions)
        steps += env.max_steps
    return steps / (time.perf_counter() - t0)


def driver_rate(learner, team, num_envs: int, mode: str, seconds: float) -> tuple[float, float]:
    """(host env steps/s, driver steps/s) of evaluate_host with `num_envs` trivial envs."""
    envs = [TrivialHostEnv() for _ in range(num_envs)]
    key = jax.random.PRNGKey(0)
    episodes = 2 * num_envs
    evaluate_host(envs, learner, team, key, episodes, mode=mode)  # compiles
    t0 = time.perf_counter()
    evaluate_host(envs, learner, team, key, episodes, mode=mode)
    once = time.perf_counter() - t0
    episodes = max(episodes, int(episodes * seconds / once) // num_envs * num_envs)
    evaluate_host(envs, learner, team, key, episodes, mode=mode)  # compiles for this episode count
    t0 = time.perf_counter()
    evaluate_host(envs, learner, team, key, episodes, mode=mode)
    wall = time.perf_counter() - t0
    steps = episodes * TrivialHostEnv.max_steps
    return steps / wall, steps / num_envs / wall


def main(argv: list[str]) -> int:
    args = dict(a.split("=", 1) for a in argv)
    sizes = [int(x) for x in args.get("envs", "1,4,16").split(",")]
    seconds = float(args.get("seconds", "2"))
    hidden = int(args.get("hidden", "16"))
    learner = ValueDecomposition(load_config(["alg=vdn", f"alg.hidden_dim={hidden}"]).alg, TrivialHostEnv())
    team = learner.team(learner.init(jax.random.PRNGKey(0)))
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; trivial host env (N=3, 20-step episodes), VDN team (GRU {hidden})")
    print(f"simulator alone: {simulator_alone(seconds):,.0f} host steps/s\n")
    print(f"| {'mode':8s} | {'E':>3s} | {'host steps/s':>12s} | {'driver steps/s':>14s} |")
    print(f"|{'-' * 10}|{'-' * 5}|{'-' * 14}|{'-' * 16}|")
    for mode in ("loop", "callback"):
        for e in sizes:
            host, driver = driver_rate(learner, team, e, mode, seconds)
            print(f"| {mode:8s} | {e:3d} | {host:12,.0f} | {driver:14,.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
