"""cav_merge (the JAX on-ramp merge) against hand-computed IDM, MOBIL, collision, observation
and reward values, and against highway-env itself (jarob.envs.highway) on one constructed scene."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jarob import envs
from jarob.envs import cav_merge as cm

ABSENT = (-1000.0, -1000.0, 0.0)
# jitted once: run eagerly, each of their many small operations would be compiled on its own
neighbour_table, acceleration_table, collisions = (jax.jit(f) for f in (cm.neighbour_table, cm.acceleration_table, cm.collisions))
mobil = jax.jit(cm.mobil, static_argnums=(3, 4, 5))
observe, cav_rewards = jax.jit(cm.observe, static_argnums=1), jax.jit(cm.cav_rewards)


def scene(*vehicles):
    """A Traffic of up to 7 (x, y, speed) vehicles, the first three the CAVs, the rest absent."""
    rows = list(vehicles) + [ABSENT] * (cm.N_VEH - len(vehicles))
    return cm.place(*zip(*rows), present=[True] * len(vehicles) + [False] * (cm.N_VEH - len(vehicles)))


def test_idm_free_road_and_following():
    # free road: 3 (1 - (20/25)^4) = 1.7712; behind a vehicle 30 m ahead at the same speed:
    # d* = 10 + 20 * 1.5 = 40, so 1.7712 - 3 (40/30)^2 = -3.5621
    assert float(cm.idm_acceleration(20.0, 25.0)) == pytest.approx(1.7712, abs=1e-4)
    assert float(cm.idm_acceleration(20.0, 25.0, 30.0, 20.0)) == pytest.approx(1.7712 - 3 * (40 / 30) ** 2, abs=1e-4)
    # closing at 5 m/s adds v dv / (2 sqrt(15)) = 20 * 5 / 7.746 to d*
    gap = 40 + 100 / (2 * math.sqrt(15))
    assert float(cm.idm_acceleration(20.0, 25.0, 30.0, 15.0)) == pytest.approx(1.7712 - 3 * (gap / 30) ** 2, abs=1e-4)
    # the target speed is clipped to the 30 m/s speed limit: at 30 m/s a 40 m/s target gives 0
    assert float(cm.idm_acceleration(30.0, 40.0)) == pytest.approx(0.0, abs=1e-6)


def test_neighbours_and_accelerations_on_a_scene():
    tr = scene((100.0, 0.0, 25.0), (50.0, 10.5, 25.0), (150.0, 10.5, 25.0), (130.0, 0.0, 20.0), (60.0, 0.0, 25.0))
    front, rear = neighbour_table(tr)
    assert int(front[0, cm.AB]) == 3 and int(rear[0, cm.AB]) == 4  # on the main road
    assert int(front[1, cm.JK]) == 2 and int(rear[1, cm.JK]) == -1  # on the ramp: nobody behind
    assert int(front[3, cm.AB]) == -1
    acc = acceleration_table(tr)
    # CAV 0 (target 25 m/s) behind HDV 3 at 30 m, 5 m/s slower
    d_star = 10 + 25 * 1.5 + 25 * 5 / (2 * math.sqrt(15))
    assert float(acc[0 + 1, 3 + 1]) == pytest.approx(-3 * (d_star / 30) ** 2, abs=1e-3)
    assert float(acc[0 + 1, 0]) == pytest.approx(0.0, abs=1e-6)  # free road at its target speed
    assert float(acc[0, 3]) == 0.0 and float(acc[cm.N_VEH + 1, 3]) == 0.0  # no ego, or the obstacle as ego


def test_mobil_leaves_the_merging_lane_unless_it_cuts_someone_off():
    # HDV 3 on the merging lane bc1 at x 350, 25 m/s, the obstacle 70 m ahead: braking
    # 3 (d*/70)^2 = 10.06 m/s^2 there against none on the empty bc0: MOBIL says change.
    hdv = (350.0, 4.0, 25.0)
    far = [(20.0, 0.0, 25.0), (30.0, 10.5, 25.0), (60.0, 10.5, 25.0)]
    tr = scene(*far, hdv)
    acc, (front, rear) = acceleration_table(tr), neighbour_table(tr)
    assert int(tr.lane[3]) == cm.BC1 and int(front[3, cm.BC1]) == cm.N_VEH  # the obstacle ahead
    assert bool(mobil(acc, front, rear, cm.BC1, 3, cm.BC0))
    # a vehicle 5 m behind on bc0 at 30 m/s would have to brake far harder than 9 m/s^2
    tr = scene(*far, hdv, (345.0, 0.0, 30.0))
    acc, (front, rear) = acceleration_table(tr), neighbour_table(tr)
    assert int(rear[3, cm.BC0]) == 4
    assert not bool(mobil(acc, front, rear, cm.BC1, 3, cm.BC0))


def test_rectangles_touching_apart_and_closing():
    car = dict(al=cm.LENGTH, aw=cm.WIDTH, bl=cm.LENGTH, bw=cm.WIDTH)

    def overlap(bx, by=0.0, bh=0.0, avx=0.0):
        hit, will, _ = cm.rectangle_overlap(0.0, 0.0, 0.0, car["al"], car["aw"], avx, 0.0, bx, by, bh, car["bl"], car["bw"], 0.0, 0.0)
        return bool(hit), bool(will)

    assert overlap(5.0) == (True, True)  # bumpers touching
    assert overlap(5.01) == (False, False)
    assert overlap(5.05, avx=1.0) == (False, True)  # 1 m/s closes 0.067 m in a frame
    assert overlap(0.0, by=2.0) == (True, True) and overlap(0.0, by=2.01) == (False, False)  # side by side
    # b turned 90 degrees: its half-width (1 m) now lies along x, so they meet at x = 2.5 + 1
    assert overlap(3.55, bh=math.pi / 2) == (False, False) and overlap(3.45, bh=math.pi / 2)[0]
    # the translation pushes a away from b along the axis of least overlap
    _, _, push = cm.rectangle_overlap(0.0, 0.0, 0.0, 5.0, 2.0, 0.0, 0.0, 4.0, 0.0, 0.0, 5.0, 2.0, 0.0, 0.0)
    np.testing.assert_allclose(np.asarray(push), [-1.0, 0.0], atol=1e-6)


def test_collisions_mark_both_and_the_obstacle_crashes_a_vehicle():
    tr = scene((100.0, 0.0, 25.0), (104.0, 0.0, 25.0), (30.0, 10.5, 25.0), (419.0, 4.0, 10.0), (60.0, 0.0, 25.0))
    hit, _, _ = collisions(tr)
    assert np.asarray(hit).tolist() == [True, True, False, True, False, False, False]
    # absent slots (all parked at the same point) never collide
    assert not bool(np.asarray(hit)[5:].any())


def test_observation_layout_on_a_constructed_scene():
    # CAV 0 at x 100 on the main road; seen: CAV 1 30 m ahead on the ramp (y clipped at 4 m),
    # HDV 3 50 m ahead, HDV 4 5 m behind; not seen: CAV 2 20 m behind (more than 10 m), HDV 5
    # 160 m ahead (beyond 150 m).
    tr = scene((100.0, 0.0, 24.0), (130.0, 10.5, 20.0), (80.0, 10.5, 24.0), (150.0, 0.0, 22.0), (95.0, 0.0, 28.0), (260.0, 0.0, 25.0))
    obs = np.asarray(observe(tr, 0))
    expected = np.array([
        [1, 100 / 200, 0, 24 / 80, 0],
        [1, -5 / 200, 0, 4 / 80, 0],  # HDV 4: |dx| 5 first
        [1, 30 / 200, 1.0, -4 / 80, 0],  # CAV 1: dy 10.5 / 4 clipped to 1
        [1, 50 / 200, 0, -2 / 80, 0],  # HDV 3
        [0, 0, 0, 0, 0],
    ])
    np.testing.assert_allclose(obs, expected, atol=1e-6)
    env = cm.CavMergeEnv()
    assert env.obs_dim == 25 and not env.perturbation.mask.reshape(5, 5)[:, 0].any() and env.perturbation.mask.reshape(5, 5)[:, 1:].all()


def test_rewards_speed_merging_cost_and_headway():
    # CAV 0 on bc1 at x 420 (the merging lane's end), 20 m/s: speed term 0.5, merging cost -4 x 1;
    # nothing ahead within 60 m, so no headway cost. CAV 1 on the main road at 30 m/s with a
    # vehicle 18 m ahead: 1 + 4 log(18 / 36). CAV 2 crashed: -200 + its speed term 0.75.
    tr = scene((420.0, 4.0, 20.0), (200.0, 0.0, 30.0), (50.0, 10.5, 25.0), (218.0, 0.0, 30.0))
    tr = tr.replace(crashed=tr.crashed.at[2].set(True))
    r = np.asarray(cav_rewards(tr))
    np.testing.assert_allclose(r, [0.5 - 4.0, 1.0 + 4 * math.log(18 / 36), -200 + 0.75], atol=1e-4)


def test_env_api_episode_and_available_actions():
    env = envs.make("cav_merge")
    assert (env.num_agents, env.num_actions, env.obs_dim, env.max_steps, env.default_eps) == (3, 5, 25, 100, 0.05)
    state, ts = jax.jit(env.reset)(jax.random.PRNGKey(3))
    assert ts.obs.shape == (3, 25) and ts.state.shape == (env.state_dim,) and ts.avail[:, cm.IDLE].all()
    assert not ts.avail[:, cm.LANE_LEFT].any()  # nobody starts beside another lane
    present = np.asarray(state.inner.present)
    assert present[:3].all() and 1 <= present[3:].sum() <= 4
    step = jax.jit(env.step)
    key, length = jax.random.PRNGKey(4), 0
    for _ in range(cm.MAX_STEPS):  # "slower" then idle: nobody merges, the ramp CAVs end at the obstacle
        key, k = jax.random.split(key)
        state, ts = step(k, state, jnp.full(3, cm.SLOWER if length == 0 else cm.IDLE))
        length += 1
        if bool(ts.done):
            break
    assert bool(ts.done) and int(ts.ep_length) == length and not bool(ts.won)
    assert length < cm.MAX_STEPS  # crashed into the merging lane's end
    assert float(ts.reward) < -200 / 3 + 1  # the crash step: -200 for one CAV, over three


highway = pytest.importorskip("jarob.envs.highway", reason="highway-env is not installed")


def test_the_bridge_sees_and_drives_as_cav_merge_on_a_scene():
    """The same scene on highway-env and in JAX: the same observation (1e-4), and under a fixed
    action sequence the same trajectory (every vehicle within 1 cm), rewards and crash step."""
    vehicles = [(170.0, 0.0, 26.0), (45.0, 10.5, 25.5), (125.0, 10.5, 26.5), (90.0, 0.0, 25.2), (210.0, 0.0, 26.8), (5.0, 10.5, 25.9), (165.0, 10.5, 26.1)]
    host = highway.HighwayMergeEnv()
    host.reset(0)
    host.sim.place(vehicles)
    host.sim.define_spaces()
    view = host._view(host.sim.observation_type.observe())
    env = cm.CavMergeEnv()
    tr = cm.place(*zip(*vehicles))
    obs, avail, _ = env._view(tr)
    np.testing.assert_allclose(np.asarray(obs), view["obs"], atol=1e-4)
    np.testing.assert_array_equal(np.asarray(avail), view["avail"])
    state, step = envs.EnvState(tr, jnp.zeros(()), jnp.zeros((), jnp.int32)), jax.jit(env.step)  # the program the test above compiles
    for t in range(cm.MAX_STEPS):
        a = np.array([cm.FASTER, cm.IDLE, cm.IDLE]) if t % 2 == 0 else np.array([cm.IDLE, cm.FASTER, cm.SLOWER])
        state, ts = step(jax.random.PRNGKey(t), state, jnp.asarray(a))
        view, reward, done, _ = host.step(a)
        assert bool(ts.done) == done and float(ts.reward) == pytest.approx(reward, abs=1e-2)
        if done:
            break
        np.testing.assert_allclose(np.stack([state.inner.x, state.inner.y], -1), np.array([v.position for v in host.sim.road.vehicles]), atol=1e-2, err_msg=f"step {t}")
        np.testing.assert_allclose(np.asarray(ts.obs), view["obs"], atol=1e-3, err_msg=f"step {t}")
    assert host.last_crashed and t < cm.MAX_STEPS - 1  # this sequence ends in a crash, on both, at the same step
    host.close()


def test_the_env_file_sets_the_reward_scale():
    """configs/env/cav_merge.yaml sets the learner's reward scale to MARL_CAVs' 1/20 for either
    learner; the command line still wins, and other envs keep the learner's own 10."""
    from jarob.config import load_config

    assert load_config(["env=cav_merge"]).alg.reward_scale == 0.05
    assert load_config(["env=cav_merge", "alg=vdn"]).alg.reward_scale == 0.05
    assert load_config(["env=cav_merge", "alg.reward_scale=1"]).alg.reward_scale == 1.0
    assert load_config(["env=smax_3m"]).alg.reward_scale == 10.0
    assert load_config(["env=cav_merge"]).env.name == "cav_merge"
