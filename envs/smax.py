"""SMAX (JaxMARL's JAX StarCraft) maps behind jarob's array API.

The team controls the allies; the enemies follow JaxMARL's heuristic policy. SMAX is not
SMAC: its numbers are not the papers' (DESIGN.md sections 5 and 7).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxmarl.environments.smax import HeuristicEnemySMAX, map_name_to_scenario
from jaxmarl.environments.smax.smax_env import MAP_NAME_TO_SCENARIO, Scenario, register_scenario

from jarob.envs.core import MarlEnv, PerturbationSpec

# Unit type indices in SMAX: marine 0, marauder 1, stalker 2, zealot 3, zergling 4, hydralisk 5.
_MISSING_SCENARIOS = {
    "3s_vs_3z": Scenario(jnp.array([2, 2, 2, 3, 3, 3], dtype=jnp.uint8), 3, 3, False, False),
    "2m_vs_1z": Scenario(jnp.array([0, 0, 3], dtype=jnp.uint8), 2, 1, False, False),
}


def register_missing_scenarios() -> None:
    """Register the SMAC maps that JaxMARL's SMAX lacks (idempotent)."""
    for name, scenario in _MISSING_SCENARIOS.items():
        if name not in MAP_NAME_TO_SCENARIO:
            register_scenario(name, scenario)


# Per-feature valid ranges of SMAX's unit-list observation.
_UNIT_RANGES = [  # features of another unit, as seen by the agent
    ("health", 0.0, 1.0),
    ("rel_x", -1.0, 1.0),
    ("rel_y", -1.0, 1.0),
    ("last_move_x", -1.0, 1.0),
    ("last_move_y", -1.0, 1.0),
    ("last_target", 0.0, 1.0),
    ("cooldown", 0.0, 1.0),
]
_OWN_RANGES = [
    ("health", 0.0, 1.0),
    ("pos_x", 0.0, 1.0),
    ("pos_y", 0.0, 1.0),
    ("cooldown", 0.0, 1.0),
]


def _perturbation_spec(num_other_units: int, unit_type_bits: int) -> PerturbationSpec:
    """Continuous features are perturbable within their range; unit-type bits never are."""
    mask, low, high = [], [], []

    def block(ranges):
        for _, lo, hi in ranges:
            mask.append(True)
            low.append(lo)
            high.append(hi)
        for _ in range(unit_type_bits):
            mask.append(False)
            low.append(0.0)
            high.append(1.0)

    for _ in range(num_other_units):
        block(_UNIT_RANGES)
    block(_OWN_RANGES)
    return PerturbationSpec(
        mask=np.array(mask, bool),
        low=np.array(low, np.float32),
        high=np.array(high, np.float32),
    )


class SMAXEnv(MarlEnv):
    """One SMAX map, heuristic enemies, team reward (drop in enemy health + 1 for a win)."""

    has_win = True

    def __init__(self, map_name: str, name: str, default_eps: float, max_steps: int = 100):
        register_missing_scenarios()
        self._env = HeuristicEnemySMAX(scenario=map_name_to_scenario(map_name), max_steps=max_steps)
        smax = self._env._env
        self.name = name
        self.map_name = map_name
        self.num_agents = smax.num_allies
        self.num_enemies = smax.num_enemies
        self.num_actions = smax.num_ally_actions
        self.obs_dim = smax.obs_size
        self.max_steps = max_steps
        self.default_eps = default_eps
        n_units = self.num_agents + self.num_enemies
        self._unit_bits = smax.unit_type_bits
        # per unit: health, x, y, cooldown, alive, type one-hot; plus the time fraction
        self.state_dim = n_units * (5 + self._unit_bits) + 1
        self.perturbation = _perturbation_spec(n_units - 1, self._unit_bits)
        assert self.perturbation.mask.shape == (self.obs_dim,)

    def _reset(self, key):
        _, inner = self._env.reset(key)
        return inner

    def _step(self, key, inner, actions):
        acts = {agent: actions[i] for i, agent in enumerate(self._env.agents)}
        _, inner, rewards, dones, _ = self._env.step_env(key, inner, acts)
        s = inner.state
        n = self.num_agents
        won = jnp.all(~s.unit_alive[n:]) & jnp.any(s.unit_alive[:n])
        return inner, rewards[self._env.agents[0]], dones["__all__"], won

    def _view(self, inner):
        smax = self._env._env
        obs_dict = smax.get_obs(inner.state)
        obs = jnp.stack([obs_dict[a] for a in self._env.agents]).astype(jnp.float32)
        avail_dict = smax.get_avail_actions(inner.state)
        avail = jnp.stack([avail_dict[a] for a in self._env.agents]).astype(bool)
        return obs, avail, self._world_state(inner.state)

    def _world_state(self, s):
        """Normalised world state: raw positions scaled to [0, 1], cooldowns to fractions."""
        smax = self._env._env
        alive = s.unit_alive.astype(jnp.float32)
        health = s.unit_health / smax.unit_type_health[s.unit_types]
        pos = s.unit_positions / jnp.array([smax.map_width, smax.map_height])
        cooldown = jnp.clip(s.unit_weapon_cooldowns / smax.unit_type_weapon_cooldowns[s.unit_types], 0.0, 1.0)
        types = jax.nn.one_hot(s.unit_types, self._unit_bits)
        units = jnp.concatenate([health[:, None], pos, cooldown[:, None], alive[:, None], types], axis=-1)
        units = units * alive[:, None]  # dead units are all zeros
        time = jnp.asarray(s.step, jnp.float32)[None] / self.max_steps
        return jnp.concatenate([units.reshape(-1), time]).astype(jnp.float32)
