"""highway_merge: the on-ramp merge of `cav_merge` on the real highway-env (optional extra
`pip install "jarob[highway]"`), as a host env (`jarob.envs.host`).

`MergeScenario` subclasses highway-env's merge-v0 environment (which controls one vehicle) with
MARL_CAVs' scenario: its road (segment ends 220 / 100 / 100 / 100 m, one main lane, every lane's
speed limit 30 m/s), three controlled MDPVehicles (target speeds 10-30 m/s in 5 steps) and 1-4
IDM / MOBIL vehicles (`MergeHDV`: MARL_CAVs' lane-change thresholds), its reward, and its stop
at a CAV crash; highway-env's own models do the driving and its Kinematics observation the
seeing (150 m perception). `HighwayMergeEnv` presents it with the array layout of `cav_merge`, so
a team trained in JAX plays it unchanged.
"""

from __future__ import annotations

import numpy as np

try:
    import highway_env  # noqa: F401
    from highway_env.envs.merge_env import MergeEnv
    from highway_env.road.lane import LineType, SineLane, StraightLane
    from highway_env.road.road import Road, RoadNetwork
    from highway_env.vehicle.behavior import IDMVehicle
    from highway_env.vehicle.objects import Obstacle
except ImportError as e:  # pragma: no cover - exercised where the extra is absent
    raise ImportError('env=highway_merge needs highway-env: pip install "jarob[highway]"') from e

from jarob.envs import cav_merge as cm
from jarob.envs.host import HostEnv

_LANES = {  # highway-env lane index -> cav_merge lane id
    ("a", "b", 0): cm.AB, ("b", "c", 0): cm.BC0, ("b", "c", 1): cm.BC1,
    ("c", "d", 0): cm.CD, ("j", "k", 0): cm.JK, ("k", "b", 0): cm.KB,
}


class MergeHDV(IDMVehicle):
    """highway-env's IDM / MOBIL vehicle with MARL_CAVs' lane-change thresholds."""

    POLITENESS = cm.POLITENESS
    LANE_CHANGE_MIN_ACC_GAIN = cm.LANE_CHANGE_MIN_ACC_GAIN
    LANE_CHANGE_MAX_BRAKING_IMPOSED = cm.LANE_CHANGE_MAX_BRAKING_IMPOSED
    LANE_CHANGE_DELAY = cm.LANE_CHANGE_DELAY


class MergeScenario(MergeEnv):
    """MARL_CAVs' multi-agent on-ramp merge on highway-env (module docstring)."""

    PERCEPTION_DISTANCE = cm.PERCEPTION_DISTANCE

    @classmethod
    def default_config(cls) -> dict:
        cfg = super().default_config()
        cfg.update({
            "controlled_vehicles": cm.N_CAV,
            "observation": {"type": "MultiAgentObservation", "observation_config": {
                "type": "Kinematics", "vehicles_count": cm.OBS_VEHICLES, "features": ["presence", "x", "y", "vx", "vy"]}},
            "action": {"type": "MultiAgentAction", "action_config": {
                "type": "DiscreteMetaAction", "longitudinal": True, "lateral": True, "target_speeds": list(cm.TARGET_SPEEDS)}},
            "simulation_frequency": cm.SIM_HZ,
            "policy_frequency": cm.POLICY_HZ,
            "other_vehicles_type": f"{MergeHDV.__module__}.MergeHDV",
            "max_steps": cm.MAX_STEPS,
        })
        return cfg

    # -- the scene ----------------------------------------------------------------------------
    def _make_road(self) -> None:
        net, ends = RoadNetwork(), cm.ENDS
        c, s, n = LineType.CONTINUOUS_LINE, LineType.STRIPED, LineType.NONE
        lim = cm.SPEED_LIMIT
        net.add_lane("a", "b", StraightLane([0, 0], [sum(ends[:2]), 0], line_types=[c, c], speed_limit=lim))
        net.add_lane("b", "c", StraightLane([sum(ends[:2]), 0], [sum(ends[:3]), 0], line_types=[c, s], speed_limit=lim))
        net.add_lane("c", "d", StraightLane([sum(ends[:3]), 0], [sum(ends), 0], line_types=[c, c], speed_limit=lim))
        amp = cm.AMPLITUDE
        ljk = StraightLane([0, 6.5 + 4], [ends[0], 6.5 + 4], line_types=[c, c], forbidden=True, speed_limit=lim)
        lkb = SineLane(ljk.position(ends[0], -amp), ljk.position(sum(ends[:2]), -amp), amp, 2 * np.pi / (2 * ends[1]),
                       np.pi / 2, line_types=[c, c], forbidden=True, speed_limit=lim)
        lbc = StraightLane(lkb.position(ends[1], 0), lkb.position(ends[1], 0) + [ends[2], 0], line_types=[n, c],
                           forbidden=True, speed_limit=lim)
        net.add_lane("j", "k", ljk)
        net.add_lane("k", "b", lkb)
        net.add_lane("b", "c", lbc)
        self.road = Road(network=net, np_random=self.np_random, record_history=False)
        self.road.objects.append(Obstacle(self.road, lbc.position(ends[2], 0)))

    def _make_vehicles(self) -> None:
        """MARL_CAVs' spawn (`cm.spawn` is its JAX twin): one CAV on the main road, two on the
        ramp, then 1-4 HDVs, half (rounded down) on the main road; distinct spawn points."""
        rng = self.np_random
        n_hdv = int(rng.integers(1, cm.N_HDV + 1))
        main = list(rng.permutation(cm.SPAWN_MAIN))
        ramp = list(rng.permutation(cm.SPAWN_RAMP))
        k = n_hdv // 2
        points = [(main[0], True), (ramp[0], False), (ramp[1], False)]
        points += [(main[1 + h], True) if h < k else (ramp[2 + h - k], False) for h in range(n_hdv)]
        speed = rng.uniform(25.0, 27.0, len(points))
        noise = rng.uniform(-1.5, 1.5, len(points))
        self.place([(s + d, 0.0 if on_main else 10.5, v) for (s, on_main), v, d in zip(points, speed, noise)])

    def place(self, vehicles) -> None:
        """Put vehicles at (x, y, speed), heading 0: the first three are the CAVs."""
        self.controlled_vehicles = []
        self.road.vehicles = []
        for i, (x, y, v) in enumerate(vehicles):
            cls = self.action_type.vehicle_class if i < cm.N_CAV else MergeHDV
            veh = cls(self.road, np.array([x, y], float), speed=float(v))
            if i < cm.N_CAV:
                self.controlled_vehicles.append(veh)
            self.road.vehicles.append(veh)

    # -- the dynamics -------------------------------------------------------------------------
    def _simulate(self, action=None) -> None:
        """highway-env's frames, stopped after a CAV crash (as MARL_CAVs does)."""
        frames = int(self.config["simulation_frequency"] // self.config["policy_frequency"])
        for frame in range(frames):
            if action is not None and frame == 0:
                self.action_type.act(action)
            self.road.act()
            self.road.step(1 / self.config["simulation_frequency"])
            self.steps += 1
            if any(v.crashed for v in self.controlled_vehicles):
                break

    def agent_reward(self, v) -> float:
        """MARL_CAVs' _agent_reward (cav_merge module docstring)."""
        scaled = np.clip((v.speed - 10.0) / 20.0, 0.0, 1.0)
        merging = -np.exp(-((v.position[0] - sum(cm.ENDS[:3])) ** 2) / (10 * cm.ENDS[2])) if v.lane_index == ("b", "c", 1) else 0.0
        cost = np.log(self.headway(v) / (cm.HEADWAY_TIME * v.speed)) if v.speed > 0 else 0.0
        return (-cm.COLLISION_REWARD * v.crashed + cm.HIGH_SPEED_REWARD * scaled + cm.MERGING_LANE_COST * merging
                + cm.HEADWAY_COST * min(cost, 0.0))

    def headway(self, vehicle) -> float:
        """MARL_CAVs' _compute_headway_distance."""
        net, best = self.road.network, cm.DEFAULT_HEADWAY
        nxt = net.next_lane(vehicle.lane_index, position=vehicle.position)
        for v in self.road.vehicles:
            if v.position[0] <= vehicle.position[0]:
                continue
            if v.lane_index == vehicle.lane_index or (vehicle.lane_index != ("b", "c", 1) and v.lane_index == nxt):
                best = min(best, v.position[0] - vehicle.position[0])
        return best

    def _reward(self, action) -> float:
        return float(np.mean([self.agent_reward(v) for v in self.controlled_vehicles]))

    def _is_terminated(self) -> bool:
        return any(v.crashed for v in self.controlled_vehicles)

    def _is_truncated(self) -> bool:
        return self.steps >= self.config["max_steps"] * (self.config["simulation_frequency"] // self.config["policy_frequency"])

    # -- what jarob reads ---------------------------------------------------------------------
    def traffic(self) -> dict[str, np.ndarray]:
        """The vehicles as cav_merge's state arrays (N_VEH slots, absent HDVs masked)."""
        n = len(self.road.vehicles)
        pad = lambda a, fill: np.concatenate([np.asarray(a, np.float32), np.full(cm.N_VEH - n, fill, np.float32)])
        vs = self.road.vehicles
        return {
            "present": pad([1.0] * n, 0.0), "x": pad([v.position[0] for v in vs], 0.0), "y": pad([v.position[1] for v in vs], 0.0),
            "vx": pad([v.velocity[0] for v in vs], 0.0), "vy": pad([v.velocity[1] for v in vs], 0.0),
            "crashed": pad([v.crashed for v in vs], 0.0), "lane": pad([_LANES.get(v.lane_index, -1) for v in vs], -1.0),
        }

    def available(self) -> np.ndarray:
        avail = np.zeros((cm.N_CAV, 5), bool)
        for i, at in enumerate(self.action_type.agents_action_types):
            avail[i, at.get_available_actions()] = True
        return avail


def state_of(traffic: dict[str, np.ndarray], t: int) -> np.ndarray:
    """cav_merge's world state (`cm.world_state`) from `MergeScenario.traffic()`."""
    return np.asarray(cm.world_state(traffic["present"], traffic["x"], traffic["y"], traffic["vx"], traffic["vy"], t))


class HighwayMergeEnv(HostEnv):
    """One highway-env merge (`MergeScenario`) behind jarob's host-env API, with cav_merge's
    sizes, perturbation spec and default budget."""

    def __init__(self, name: str = "highway_merge"):
        ref = cm.CavMergeEnv(name=name)
        self.name = name
        self.mirror_spaces(ref)
        self.sim = MergeScenario()
        self._t = 0
        self.last_crashed = False

    def _view(self, obs) -> dict[str, np.ndarray]:
        obs = np.stack([np.asarray(o, np.float32).reshape(-1) for o in obs])
        return {"obs": obs, "avail": self.sim.available(), "state": state_of(self.sim.traffic(), self._t)}

    def reset(self, seed: int) -> dict[str, np.ndarray]:
        obs, _ = self.sim.reset(seed=int(seed) % 2**32)
        self._t, self.last_crashed = 0, False
        return self._view(obs)

    def step(self, actions: np.ndarray):
        obs, reward, terminated, truncated, _ = self.sim.step(tuple(int(a) for a in actions))
        self._t += 1
        self.last_crashed = bool(terminated)
        return self._view(obs), float(reward), bool(terminated or truncated), False

    def crashed(self) -> bool:
        return self.last_crashed

    def close(self) -> None:
        self.sim.close()
