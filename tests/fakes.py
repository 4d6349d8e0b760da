"""A tiny deterministic environment with hand-checkable episodes."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jarob.envs import MarlEnv, PerturbationSpec


class CountingEnv(MarlEnv):
    """Episodes of exactly `length` steps; step t (0-based) pays reward t + 1; the episode is won.

    obs of agent i = one-hot of the step counter (length + 1 slots); action 0 is unavailable for
    every agent so that masks matter.
    """

    has_win = True

    def __init__(self, length: int = 3, num_agents: int = 2, num_actions: int = 3):
        self.name = "counting"
        self.length = length
        self.num_agents = num_agents
        self.num_actions = num_actions
        self.obs_dim = length + 1
        self.state_dim = length + 1
        self.max_steps = length
        self.default_eps = 0.1
        self.perturbation = PerturbationSpec(
            mask=np.ones(self.obs_dim, bool),
            low=np.zeros(self.obs_dim, np.float32),
            high=np.ones(self.obs_dim, np.float32),
        )

    def _reset(self, key):
        return jnp.zeros((), jnp.int32)

    def _step(self, key, t, actions):
        reward = (t + 1).astype(jnp.float32)
        t = t + 1
        done = t >= self.length
        return t, reward, done, done

    def _view(self, t):
        onehot = jnp.eye(self.obs_dim)[t]
        obs = jnp.broadcast_to(onehot, (self.num_agents, self.obs_dim))
        avail = jnp.ones((self.num_agents, self.num_actions), bool).at[:, 0].set(False)
        return obs, avail, onehot
