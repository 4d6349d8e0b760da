"""An environment in ~40 lines: the climbing game (Claus & Boutilier 1998) as a one-step MARL env.

Two agents each pick one of three actions; the team is paid the matrix entry of the joint action
(scaled to [-1, 1]). The optimum (0, 0) pays 11 but an agent that strays from it alone costs the
team 30, which is what makes it hard for independent learners. Each agent observes a constant
feature and a noise feature an attacker may perturb within [-1, 1].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jarob import envs
from jarob.envs import MarlEnv, PerturbationSpec

PAYOFF = jnp.array([[11.0, -30.0, 0.0], [-30.0, 7.0, 6.0], [0.0, 0.0, 5.0]]) / 30.0


class ClimbingEnv(MarlEnv):
    """One-step episodes; won when the team plays the optimum (0, 0)."""

    has_win = True
    num_agents, num_actions, obs_dim, state_dim, max_steps, default_eps = 2, 3, 2, 2, 1, 0.5

    def __init__(self, name: str = "climbing"):
        self.name = name
        # feature 0 (constant) is never perturbed; feature 1 (noise) may be, within [-1, 1]
        self.perturbation = PerturbationSpec(mask=np.array([False, True]), low=-np.ones(2, np.float32), high=np.ones(2, np.float32))

    def _reset(self, key):
        return jax.random.uniform(key, (), minval=-1.0, maxval=1.0)  # the inner state: the noise

    def _step(self, key, noise, actions):
        reward = PAYOFF[actions[0], actions[1]]
        won = (actions[0] == 0) & (actions[1] == 0)
        return noise, reward, jnp.ones((), bool), won

    def _view(self, noise):
        obs = jnp.broadcast_to(jnp.stack([jnp.ones(()), noise]), (2, 2))
        return obs, jnp.ones((2, 3), bool), obs[0]


envs.register("climbing", ClimbingEnv)
