"""JaxMARL's MPE tasks behind jarob's array API (discrete actions: no-op, -x, +x, -y, +y)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxmarl.environments.mpe import SimpleSpreadMPE, SimpleTagMPE

from jarob.envs.core import MarlEnv, PerturbationSpec

# Unit direction of each discrete MPE action (JaxMARL's `_decode_discrete_action`).
_ACTION_DIRS = jnp.array([[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])


def _unbounded_spec(obs_dim: int) -> PerturbationSpec:
    """MPE observations are unbounded physical quantities: every feature is perturbable."""
    return PerturbationSpec(
        mask=np.ones(obs_dim, bool),
        low=np.full(obs_dim, -np.inf, np.float32),
        high=np.full(obs_dim, np.inf, np.float32),
    )


class _MPEEnv(MarlEnv):
    has_win = False  # MPE tasks have no win condition: `won` is always false

    def _physical_state(self, s):
        t = jnp.asarray(s.step, jnp.float32)[None] / self.max_steps
        return jnp.concatenate([s.p_pos.reshape(-1), s.p_vel.reshape(-1), t]).astype(jnp.float32)

    def _reset(self, key):
        _, inner = self._env.reset(key)
        return inner


class SpreadEnv(_MPEEnv):
    """simple_spread: N agents cover N landmarks; team reward = mean of the agents' rewards."""

    def __init__(self, name: str, default_eps: float, num_agents: int = 3):
        self._env = SimpleSpreadMPE(num_agents=num_agents, num_landmarks=num_agents)
        self.name = name
        self.num_agents = num_agents
        self.num_actions = 5
        self.obs_dim = self._env.observation_spaces[self._env.agents[0]].shape[0]
        self.max_steps = self._env.max_steps
        self.default_eps = default_eps
        self.state_dim = 2 * 2 * self._env.num_entities + 1
        self.perturbation = _unbounded_spec(self.obs_dim)

    def _step(self, key, inner, actions):
        acts = {a: actions[i] for i, a in enumerate(self._env.agents)}
        _, inner, rewards, dones, _ = self._env.step_env(key, inner, acts)
        reward = jnp.mean(jnp.stack([rewards[a] for a in self._env.agents]))
        return inner, reward, dones["__all__"], jnp.zeros((), bool)

    def _view(self, inner):
        obs_dict = self._env.get_obs(inner)
        obs = jnp.stack([obs_dict[a] for a in self._env.agents]).astype(jnp.float32)
        avail = jnp.ones((self.num_agents, self.num_actions), bool)
        return obs, avail, self._physical_state(inner)


class TagEnv(_MPEEnv):
    """simple_tag (predator-prey): the team is the 3 predators; the prey flees by a fixed rule.

    The prey picks the discrete action best aligned with the sum of repulsions from the
    predators (inverse-square) plus a pull back inside the arena beyond |x| > 0.8.
    Team reward: the predators' shared reward (+10 per predator touching the prey).
    """

    def __init__(self, name: str, default_eps: float, num_predators: int = 3, num_obstacles: int = 2):
        self._env = SimpleTagMPE(num_good_agents=1, num_adversaries=num_predators, num_obs=num_obstacles)
        self.name = name
        self.num_agents = num_predators
        self.num_actions = 5
        self.obs_dim = self._env.observation_spaces[self._env.adversaries[0]].shape[0]
        self.max_steps = self._env.max_steps
        self.default_eps = default_eps
        self.state_dim = 2 * 2 * self._env.num_entities + 1
        self.perturbation = _unbounded_spec(self.obs_dim)

    def prey_action(self, inner) -> jnp.ndarray:
        """The prey's fixed fleeing rule (see class docstring)."""
        n = self.num_agents
        prey = inner.p_pos[n]
        away = prey[None, :] - inner.p_pos[:n]
        dist2 = jnp.sum(away**2, axis=-1, keepdims=True) + 1e-3
        flee = jnp.sum(away / dist2, axis=0)
        flee = flee - 5.0 * jnp.where(jnp.abs(prey) > 0.8, prey, 0.0)
        return jnp.argmax(_ACTION_DIRS @ flee)

    def _step(self, key, inner, actions):
        acts = {a: actions[i] for i, a in enumerate(self._env.adversaries)}
        acts[self._env.good_agents[0]] = self.prey_action(inner)
        _, inner, rewards, dones, _ = self._env.step_env(key, inner, acts)
        return inner, rewards[self._env.adversaries[0]], dones["__all__"], jnp.zeros((), bool)

    def _view(self, inner):
        obs_dict = self._env.get_obs(inner)
        obs = jnp.stack([obs_dict[a] for a in self._env.adversaries]).astype(jnp.float32)
        avail = jnp.ones((self.num_agents, self.num_actions), bool)
        return obs, avail, self._physical_state(inner)
