"""cav_merge: connected autonomous vehicles merging from an on-ramp, JAX-native (ATSA section 4.1,
Table 2; the scenario of MARL_CAVs, Chen et al. 2023, on highway-env's vehicle models).

The road (x along the road, y downwards, metres; every lane 4 m wide and pointing along +x):

    main road  ab (0-320), bc0 (320-420), cd (420-520)           y = 0
    ramp       jk (0-220, y 10.5), kb (220-320: a sine from y 10.5 to 4), bc1 (320-420, y 4)

bc1 is the merging lane beside bc0; an obstacle (2 x 2 m) stands at its end (420, 4). The ramp
lanes are forbidden targets: vehicles leave the merging lane for bc0, never the other way.

Three CAVs (the agents) and 1-4 HDVs (drawn per episode; the rest of the 4 HDV slots are masked)
spawn at MARL_CAVs' spawn points on ab and jk at 25-27 m/s. HDVs follow highway-env's IDMVehicle
(IDM longitudinal control, MOBIL lane changes with MARL_CAVs' parameters); CAVs are MDPVehicles
with the meta-actions lane left, idle, lane right, faster, slower over target speeds 10, 15, 20,
25, 30 m/s, tracked by highway-env's speed and steering controllers on its kinematic bicycle model.
Simulation at 15 Hz, policy at 5 Hz (3 frames per step), 100 policy steps; an episode ends when a
CAV crashes (the frames after the crash are not simulated, as in MARL_CAVs).

Observation per CAV: highway-env's Kinematics observation (5 rows of presence, x, y, vx, vy: the ego
vehicle absolute, then the 4 nearest objects ahead of x - 10 m within 150 m relative to it, sorted by
longitudinal distance, zero rows where there are fewer), normalised by x / 200, y / 4, v / 80 and
clipped to [-1, 1]. Reward per CAV (MARL_CAVs `_agent_reward`), team reward their mean:

    r_i = -200 crashed_i + clip((v_i - 10) / 20, 0, 1) - 4 [on bc1] exp(-(x_i - 420)^2 / 1000)
          + 4 min(0, log(headway_i / (1.2 v_i)))

`jarob.envs.highway` runs the same scenario on highway-env itself; docs/environments.md lists
where this port and highway-env knowingly differ.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jarob.envs.core import MarlEnv, PerturbationSpec

# -- the road -------------------------------------------------------------------------------------
AB, BC0, BC1, CD, JK, KB = range(6)  # lane ids in highway-env's graph order (its argmin tie-break)
ENDS = (220.0, 100.0, 100.0, 100.0)  # before, converging, merge, after (MARL_CAVs)
LANE_WIDTH = 4.0
AMPLITUDE = 3.25
_X0 = jnp.array([0.0, 320.0, 320.0, 420.0, 0.0, 220.0])  # lane start x
_Y0 = jnp.array([0.0, 0.0, 4.0, 0.0, 10.5, 7.25])  # lane start y (kb: its chord)
_LENGTH = jnp.array([320.0, 100.0, 100.0, 100.0, 220.0, 100.0])
_AMP = jnp.array([0, 0, 0, 0, 0, AMPLITUDE])
_PULSATION = jnp.array([0, 0, 0, 0, 0, 2 * math.pi / (2 * ENDS[1])])
_PHASE = jnp.array([0, 0, 0, 0, 0, math.pi / 2])
_FORBIDDEN = jnp.array([False, False, True, False, True, True])
_ROAD = jnp.array([0, 1, 1, 2, 3, 4])  # lanes of one road sit side by side
_NEXT = jnp.array([BC0, CD, CD, CD, KB, BC1])  # highway-env's next_lane on this network
_LEFT = jnp.array([-1, -1, BC0, -1, -1, -1])  # lane id - 1 on the same road
_RIGHT = jnp.array([-1, BC1, -1, -1, -1, -1])  # lane id + 1 on the same road
OBSTACLE_XY = (420.0, 4.0)

# -- vehicles (highway-env's constants) -----------------------------------------------------------
LENGTH, WIDTH = 5.0, 2.0
OBSTACLE_SIZE = 2.0
MAX_SPEED = 40.0
SIM_HZ, POLICY_HZ, MAX_STEPS = 15, 5, 100
DT = 1.0 / SIM_HZ
FRAMES = SIM_HZ // POLICY_HZ
TARGET_SPEEDS = np.linspace(10.0, 30.0, 5).astype(np.float32)
SPEED_LIMIT = 30.0  # every lane's; IDM clips its target speed to it
TAU_ACC, TAU_HEADING, TAU_LATERAL = 0.6, 0.2, 0.6
TAU_PURSUIT = 0.5 * TAU_HEADING
MAX_STEERING = math.pi / 3
# IDM (highway-env IDMVehicle) and MOBIL with MARL_CAVs' lane-change parameters.
ACC_MAX, COMFORT_ACC_MAX, COMFORT_ACC_MIN = 6.0, 3.0, -5.0
DISTANCE_WANTED, TIME_WANTED, DELTA = 5.0 + LENGTH, 1.5, 4  # an int exponent: multiplies, not pow
POLITENESS, LANE_CHANGE_MIN_ACC_GAIN, LANE_CHANGE_MAX_BRAKING_IMPOSED, LANE_CHANGE_DELAY = 0.0, 0.1, 9.0, 1.0

# -- the scenario ---------------------------------------------------------------------------------
N_CAV, N_HDV = 3, 4
N_VEH = N_CAV + N_HDV
SPAWN_MAIN = np.array([10, 50, 90, 130, 170, 210], np.float32)
SPAWN_RAMP = np.array([5, 45, 85, 125, 165, 205], np.float32)
PERCEPTION_DISTANCE = 150.0
OBS_VEHICLES = 5
OBS_RANGE = np.array([200.0, LANE_WIDTH, 2 * MAX_SPEED, 2 * MAX_SPEED], np.float32)  # x, y, vx, vy
COLLISION_REWARD, HIGH_SPEED_REWARD, HEADWAY_COST, HEADWAY_TIME, MERGING_LANE_COST = 200.0, 1.0, 4.0, 1.2, 4.0
DEFAULT_HEADWAY = 60.0
# actions
LANE_LEFT, IDLE, LANE_RIGHT, FASTER, SLOWER = range(5)


@struct.dataclass
class Traffic:
    """Every vehicle slot's state ([N_VEH]: CAVs 0-2, HDVs 3-6) and the policy step."""

    x: jax.Array
    y: jax.Array
    heading: jax.Array
    speed: jax.Array
    target_speed: jax.Array
    speed_index: jax.Array  # int32, the CAVs' MDPVehicle speed index
    lane: jax.Array  # int32, the closest lane
    target_lane: jax.Array  # int32
    timer: jax.Array  # the HDVs' lane-change timer [s]
    crashed: jax.Array  # bool
    impact: jax.Array  # bool, will hit something within the next frame (highway-env crashes it then)
    shift: jax.Array  # [N_VEH, 2] the impact's translation, added to the position in the next frame
    present: jax.Array  # bool
    t: jax.Array  # int32 policy steps taken


# -- geometry -------------------------------------------------------------------------------------
def not_zero(x, eps: float = 1e-2):
    """highway-env's utils.not_zero: x, or +-eps where |x| <= eps."""
    return jnp.where(jnp.abs(x) > eps, x, jnp.where(x >= 0, eps, -eps))


def wrap_to_pi(a):
    return (a + jnp.pi) % (2 * jnp.pi) - jnp.pi


def local_coordinates(lane, x, y):
    """(s, r): the position's longitudinal and lateral coordinates on `lane` (every lane points
    along +x; the sine lane kb measures s along its chord, as highway-env's SineLane does)."""
    s = x - _X0[lane]
    r = y - _Y0[lane] - _AMP[lane] * jnp.sin(_PULSATION[lane] * s + _PHASE[lane])
    return s, r


def heading_at(lane, s):
    return jnp.arctan(_AMP[lane] * _PULSATION[lane] * jnp.cos(_PULSATION[lane] * s + _PHASE[lane]))


def closest_lane(x, y, heading):
    """highway-env's get_closest_lane_index: argmin over lanes of |r| + distance beyond the
    lane's ends + |heading - lane heading| (first lane on ties)."""
    s = x - _X0  # the straight lanes' coordinates, then the sine lane's (the only one with trigonometry)
    r = y - _Y0
    s_kb = s[KB]
    phase = _PULSATION[KB] * s_kb + _PHASE[KB]
    r = r.at[KB].add(-AMPLITUDE * jnp.sin(phase))
    lane_heading = jnp.zeros(6).at[KB].set(jnp.arctan(AMPLITUDE * _PULSATION[KB] * jnp.cos(phase)))
    angle = jnp.abs(wrap_to_pi(heading - lane_heading))
    d = jnp.abs(r) + jnp.maximum(s - _LENGTH, 0.0) + jnp.maximum(-s, 0.0) + angle
    return jnp.argmin(d).astype(jnp.int32)


def reachable(lane, x, y):
    """AbstractLane.is_reachable_from: a lane that is not forbidden, within two widths sideways
    and between its start and one vehicle length past its end."""
    s, r = local_coordinates(lane, x, y)
    return (lane >= 0) & ~_FORBIDDEN[lane] & (jnp.abs(r) <= 2 * LANE_WIDTH) & (s >= 0) & (s < _LENGTH[lane] + LENGTH)


def follow_road(target_lane, x, y):
    """ControlledVehicle.follow_road: past the target lane's end (less half a length), the next."""
    s, _ = local_coordinates(target_lane, x, y)
    return jnp.where(s > _LENGTH[target_lane] - LENGTH / 2, _NEXT[target_lane], target_lane)


# -- objects: the vehicles and the obstacle ---------------------------------------------------------
def _objects(tr: Traffic):
    """Arrays over N_VEH + 1 objects (the obstacle last): x, y, heading, speed, present."""
    ox, oy = OBSTACLE_XY
    cat = lambda a, v: jnp.concatenate([a, jnp.asarray([v], a.dtype)])
    return cat(tr.x, ox), cat(tr.y, oy), cat(tr.heading, 0.0), cat(tr.speed, 0.0), cat(tr.present, True)


def neighbour_table(tr: Traffic, first: int = 0):
    """Road.neighbour_vehicles(vehicle i, lane L) for vehicles first.. and every lane at once: the objects
    on L (within its width + 1 m, from one length before its start to one past its end) nearest
    ahead (s >= s_i; on these lanes s is x less the lane's start) and behind. Object indices
    [N_VEH - first, 6] (front, rear), N_VEH for the obstacle, -1 for none."""
    ox, oy, _, _, opresent = _objects(tr)
    lanes = jnp.arange(6)[:, None]
    s, r = local_coordinates(lanes, ox[None], oy[None])  # [6, N_VEH + 1]
    on = opresent[None] & (jnp.abs(r) <= LANE_WIDTH / 2 + 1) & (s >= -LENGTH) & (s < _LENGTH[:, None] + LENGTH)
    other = jnp.arange(first, N_VEH)[:, None] != jnp.arange(N_VEH + 1)[None]  # [rows, N_VEH + 1]
    cand = on[None] & other[:, None]  # [rows, 6, N_VEH + 1]
    dx = (ox[None] - tr.x[first:, None])[:, None]  # [rows, 1, N_VEH + 1]
    ahead, behind = cand & (dx >= 0), cand & (dx < 0)
    front = jnp.where(ahead.any(-1), jnp.argmin(jnp.where(ahead, dx, jnp.inf), -1), -1)
    rear = jnp.where(behind.any(-1), jnp.argmax(jnp.where(behind, dx, -jnp.inf), -1), -1)
    return front, rear


def desired_gap(speed_e, heading_e, speed_f, heading_f):
    """IDM's desired gap d* = d0 + v T + v dv / (2 sqrt(a b)), dv the closing speed along the ego's heading."""
    dv = speed_e - speed_f * jnp.cos(heading_f - heading_e)
    return DISTANCE_WANTED + speed_e * TIME_WANTED + speed_e * dv / (2 * math.sqrt(-COMFORT_ACC_MAX * COMFORT_ACC_MIN))


def idm_acceleration(speed, target_speed, gap=None, speed_f=None, heading_e=0.0, heading_f=0.0):
    """IDM: a = a_max (1 - (v / v0)^delta) - a_max (d* / d)^2, the second term only with a
    vehicle ahead at longitudinal distance `gap` (None: a free road)."""
    v0 = jnp.abs(not_zero(jnp.clip(target_speed, 0.0, SPEED_LIMIT)))
    acc = COMFORT_ACC_MAX * (1 - (jnp.maximum(speed, 0.0) / v0) ** DELTA)
    if gap is None:
        return acc
    return acc - COMFORT_ACC_MAX * (desired_gap(speed, heading_e, speed_f, heading_f) / not_zero(gap)) ** 2


def acceleration_table(tr: Traffic):
    """IDMVehicle.acceleration(ego=e, front=f) for every pair, indexed [e + 1, f + 1] over ids
    -1 (none) .. N_VEH (the obstacle): 0 without an ego or with the obstacle as ego, the free-road
    IDM without a front; the gap is measured along the ego's lane, that is in x."""
    ox, _, oh, ospeed, _ = _objects(tr)
    v, h = tr.speed[:, None], tr.heading[:, None]
    free = idm_acceleration(tr.speed, tr.target_speed)
    follow = idm_acceleration(v, tr.target_speed[:, None], ox[None] - tr.x[:, None], ospeed[None], h, oh[None])
    rows = jnp.concatenate([free[:, None], follow], 1)  # [N_VEH, N_VEH + 2]
    zero = jnp.zeros((1, N_VEH + 2), rows.dtype)
    return jnp.concatenate([zero, rows, zero], 0)  # [N_VEH + 2, N_VEH + 2]


def mobil(acc, front, rear, lane_i, i, lane, first: int = 0):
    """MOBIL (IDMVehicle.mobil, no route) for vehicle i onto `lane`: the new follower need not
    brake harder than the limit, and the own gain plus politeness times the followers' exceeds
    the threshold. `acc`, `front`, `rear`: the tables above (the latter from vehicle `first` on)."""
    a = lambda e, f: acc[e + 1, f + 1]
    new_front, new_rear = front[i - first, lane], rear[i - first, lane]
    old_front, old_rear = front[i - first, lane_i], rear[i - first, lane_i]
    new_rear_pred_a = a(new_rear, i)
    jerk = a(i, new_front) - a(i, old_front) + POLITENESS * (
        new_rear_pred_a - a(new_rear, new_front) + a(old_rear, old_front) - a(old_rear, i))
    return (new_rear_pred_a >= -LANE_CHANGE_MAX_BRAKING_IMPOSED) & (jerk >= LANE_CHANGE_MIN_ACC_GAIN)


def steering_control(target_lane, x, y, heading, speed):
    """ControlledVehicle.steering_control: lateral position -> lateral speed -> heading -> heading
    rate -> steering angle, each by a proportional controller."""
    s, r = local_coordinates(target_lane, x, y)
    future_heading = heading_at(target_lane, s + speed * TAU_PURSUIT)
    heading_command = jnp.arcsin(jnp.clip(-r / TAU_LATERAL / not_zero(speed), -1, 1))
    heading_ref = future_heading + jnp.clip(heading_command, -jnp.pi / 4, jnp.pi / 4)
    rate = wrap_to_pi(heading_ref - heading) / TAU_HEADING
    slip = jnp.arcsin(jnp.clip(LENGTH / 2 / not_zero(speed) * rate, -1, 1))
    return jnp.clip(jnp.arctan(2 * jnp.tan(slip)), -MAX_STEERING, MAX_STEERING)


def speed_to_index(speed):
    """MDPVehicle.speed_to_index: the nearest target speed's index (numpy's half-to-even rounding)."""
    x = (speed - TARGET_SPEEDS[0]) / (TARGET_SPEEDS[-1] - TARGET_SPEEDS[0])
    return jnp.clip(jnp.round(x * (len(TARGET_SPEEDS) - 1)), 0, len(TARGET_SPEEDS) - 1).astype(jnp.int32)


# -- one simulation frame -------------------------------------------------------------------------
def meta_action(tr: Traffic, actions) -> Traffic:
    """MDPVehicle.act(meta-action) of the CAVs: faster / slower move the speed index from the
    current speed's, lane left / right retarget to a reachable neighbour of the target lane."""
    idx = jnp.arange(N_CAV)
    x, y = tr.x[idx], tr.y[idx]
    target = follow_road(tr.target_lane[idx], x, y)
    side = jnp.where(actions == LANE_LEFT, _LEFT[target], jnp.where(actions == LANE_RIGHT, _RIGHT[target], -1))
    target = jnp.where(reachable(side, x, y), side, target)
    speed_index = speed_to_index(tr.speed[idx]) + jnp.where(actions == FASTER, 1, jnp.where(actions == SLOWER, -1, 0))
    changes_speed = (actions == FASTER) | (actions == SLOWER)
    speed_index = jnp.where(changes_speed, jnp.clip(speed_index, 0, len(TARGET_SPEEDS) - 1), tr.speed_index[idx])
    target_speed = jnp.where(changes_speed, jnp.asarray(TARGET_SPEEDS)[speed_index], tr.target_speed[idx])
    return tr.replace(
        target_lane=tr.target_lane.at[idx].set(target),
        speed_index=tr.speed_index.at[idx].set(speed_index),
        target_speed=tr.target_speed.at[idx].set(target_speed),
    )


def _hdv_decision(tr: Traffic, acc, front, rear, i):
    """IDMVehicle.act of HDV i (the neighbour tables start at the first HDV): follow the road, MOBIL (abort a change someone else is making
    into the same gap; else every LANE_CHANGE_DELAY), then steering and IDM acceleration."""
    x, y = tr.x[i], tr.y[i]
    target = follow_road(tr.target_lane[i], x, y)
    lane = tr.lane[i]
    # a lane change under way: abort it when another vehicle heading for the same lane is within d*
    others = tr.present & (jnp.arange(N_VEH) != i) & (tr.lane != target) & (tr.target_lane == target)
    d = tr.x - x
    gap = desired_gap(tr.speed[i], tr.heading[i], tr.speed, tr.heading)
    abort = (others & (d > 0) & (d < gap)).any() & (_ROAD[lane] == _ROAD[target])
    changing = lane != target
    # no change under way: every LANE_CHANGE_DELAY, MOBIL on each side lane
    due = ~changing & (tr.timer[i] > LANE_CHANGE_DELAY)
    new_target = target
    for side in (_LEFT[lane], _RIGHT[lane]):
        ok = due & reachable(side, x, y) & (jnp.abs(tr.speed[i]) >= 1) & mobil(acc, front, rear, lane, i, jnp.maximum(side, 0), N_CAV)
        new_target = jnp.where(ok, side, new_target)
    target = jnp.where(changing, jnp.where(abort, lane, target), new_target)
    timer = jnp.where(due, 0.0, tr.timer[i])
    target, timer = jnp.where(tr.crashed[i], tr.target_lane[i], target), jnp.where(tr.crashed[i], tr.timer[i], timer)  # a crashed HDV decides nothing
    steering = steering_control(target, x, y, tr.heading[i], tr.speed[i])
    a = acc[i + 1, front[i - N_CAV, lane] + 1]
    a = jnp.where(lane != target, jnp.minimum(a, acc[i + 1, front[i - N_CAV, target] + 1]), a)
    return target, timer, steering, jnp.clip(a, -ACC_MAX, ACC_MAX)


def _cav_control(tr: Traffic, i):
    """ControlledVehicle.act() of CAV i: follow the road, then track the target lane and speed."""
    target = follow_road(tr.target_lane[i], tr.x[i], tr.y[i])
    steering = steering_control(target, tr.x[i], tr.y[i], tr.heading[i], tr.speed[i])
    return target, tr.timer[i], steering, (tr.target_speed[i] - tr.speed[i]) / TAU_ACC


def rectangle_overlap(ax, ay, ah, al, aw, avx, avy, bx, by, bh, bl, bw, bvx, bvy):
    """utils.are_polygons_intersecting on two rectangles (centre, heading, length, width,
    velocity), by separating axes: whether they intersect now (touching counts), and whether
    they will within one frame's displacements, and the translation [..., 2] that would separate
    them (along the axis of least overlap, pushing a away from b). The four edge normals of the two rectangles are
    the axes (highway-env's eight edges repeat each twice, reversed, which changes no interval
    distance); a rectangle projects onto a unit axis n as its centre's projection +- l/2 |u.n| +
    w/2 |u'.n|, u, u' its axes. Elementwise, so any batch shape broadcasts."""
    ah, bh = jnp.asarray(ah, jnp.float32), jnp.asarray(bh, jnp.float32)
    return _overlap(ax, ay, jnp.cos(ah), jnp.sin(ah), al, aw, avx, avy, bx, by, jnp.cos(bh), jnp.sin(bh), bl, bw, bvx, bvy)


def _overlap(ax, ay, ca, sa, al, aw, avx, avy, bx, by, cb, sb, bl, bw, bvx, bvy):
    """rectangle_overlap with the headings given by their cosines and sines."""
    ax, ay, ca, sa, al, aw, avx, avy, bx, by, cb, sb, bl, bw, bvx, bvy = (
        jnp.asarray(v, jnp.float32) for v in (ax, ay, ca, sa, al, aw, avx, avy, bx, by, cb, sb, bl, bw, bvx, bvy))
    nx = jnp.stack([ca, -sa, cb, -sb], -1)  # the axes: a's length and width directions, then b's
    ny = jnp.stack([sa, ca, sb, cb], -1)

    def interval(x, y, c, s, length, width):
        mid = x[..., None] * nx + y[..., None] * ny
        rad = length[..., None] / 2 * jnp.abs(c[..., None] * nx + s[..., None] * ny) + width[..., None] / 2 * jnp.abs(-s[..., None] * nx + c[..., None] * ny)
        return mid - rad, mid + rad

    min_a, max_a = interval(ax, ay, ca, sa, al, aw)
    min_b, max_b = interval(bx, by, cb, sb, bl, bw)

    def distance(min_a, max_a):
        return jnp.where(min_a < min_b, min_b - max_a, min_a - max_b)

    intersecting = jnp.all(distance(min_a, max_a) <= 0, -1)
    vp = ((avx - bvx) * DT)[..., None] * nx + ((avy - bvy) * DT)[..., None] * ny
    moving = distance(min_a + jnp.minimum(vp, 0), max_a + jnp.maximum(vp, 0))
    will = jnp.all(moving <= 0, -1)
    # the translation that separates them: the axis of least |distance| (the first on ties), pointing from b to a
    k = jnp.argmin(jnp.abs(moving), -1)[..., None]
    depth = jnp.take_along_axis(jnp.abs(moving), k, -1)[..., 0]
    kx, ky = jnp.take_along_axis(nx, k, -1)[..., 0], jnp.take_along_axis(ny, k, -1)[..., 0]
    sign = jnp.where((ax - bx) * kx + (ay - by) * ky > 0, 1.0, -1.0)
    return intersecting, will, jnp.stack([depth * sign * kx, depth * sign * ky], -1)


_PAIRS = [(i, j) for i in range(N_VEH) for j in range(i + 1, N_VEH + 1)]  # vehicle pairs, then with the obstacle
_PI, _PJ = (np.array(a) for a in zip(*_PAIRS))
_INCIDENCE = np.zeros((len(_PAIRS), N_VEH), np.float32)  # [pair, vehicle]: +1 first, -1 second (the obstacle has no column)
_INCIDENCE[np.arange(len(_PAIRS)), _PI] = 1.0
_INCIDENCE[np.arange(len(_PAIRS))[_PJ < N_VEH], _PJ[_PJ < N_VEH]] = -1.0


def collisions(tr: Traffic):
    """Road.step's collision pass: every present pair of vehicles, and each vehicle with the
    obstacle: (intersecting [N_VEH], will intersect within the next frame [N_VEH], the impact
    [N_VEH, 2] highway-env adds to the position in the next frame, when it marks them crashed)."""
    ox, oy, oh, ospeed, opresent = _objects(tr)
    size = jnp.concatenate([jnp.full(N_VEH, LENGTH), jnp.array([OBSTACLE_SIZE])])
    wide = jnp.concatenate([jnp.full(N_VEH, WIDTH), jnp.array([OBSTACLE_SIZE])])
    c, s = jnp.cos(oh), jnp.sin(oh)
    vx, vy = ospeed * c, ospeed * s
    diag = jnp.sqrt(size**2 + wide**2)
    i, j = _PI, _PJ
    near = jnp.hypot(ox[j] - ox[i], oy[j] - oy[i]) <= (diag[i] + diag[j]) / 2 + ospeed[i] * DT
    hit, will, push = _overlap(ox[i], oy[i], c[i], s[i], size[i], wide[i], vx[i], vy[i], ox[j], oy[j], c[j], s[j], size[j], wide[j], vx[j], vy[j])
    both = near & opresent[i] & opresent[j]
    hit, will = hit & both, will & both
    # per vehicle over its pairs, by the pairs' static incidence (no scatter): +1 as a pair's first, -1 as its second
    crashed = (hit[:, None] & (_INCIDENCE != 0)).any(0)
    impact = (will[:, None] & (_INCIDENCE != 0)).any(0)
    # handle_collisions: each vehicle is pushed by half the translation, or all of it off the obstacle
    share = jnp.where(j == N_VEH, 1.0, 0.5)[:, None] * push * will[:, None]
    shift = (share[:, None, :] * _INCIDENCE[:, :, None]).sum(0)
    return crashed, impact, shift


def frame(tr: Traffic) -> Traffic:
    """One 1/15 s frame: every vehicle decides (road.act), moves on the kinematic bicycle model
    (road.step; a crashed vehicle brakes to a stop and steers straight), then collisions."""
    idx = jnp.arange(N_VEH)
    cav = jax.vmap(lambda i: _cav_control(tr, i))(idx[:N_CAV])
    acc, (front, rear) = acceleration_table(tr), neighbour_table(tr, N_CAV)  # only HDVs look around
    hdv = jax.vmap(lambda i: _hdv_decision(tr, acc, front, rear, i))(idx[N_CAV:])
    target, timer, steering, acc = (jnp.concatenate([c, h]) for c, h in zip(cav, hdv))
    steering = jnp.where(tr.crashed, 0.0, steering)
    acc = jnp.where(tr.crashed, -tr.speed, acc)
    acc = jnp.where(tr.speed > MAX_SPEED, jnp.minimum(acc, MAX_SPEED - tr.speed), acc)
    acc = jnp.where(tr.speed < -MAX_SPEED, jnp.maximum(acc, -MAX_SPEED - tr.speed), acc)
    beta = jnp.arctan(0.5 * jnp.tan(steering))
    x = tr.x + tr.speed * jnp.cos(tr.heading + beta) * DT + jnp.where(tr.impact, tr.shift[:, 0], 0.0)
    y = tr.y + tr.speed * jnp.sin(tr.heading + beta) * DT + jnp.where(tr.impact, tr.shift[:, 1], 0.0)
    heading = tr.heading + tr.speed * jnp.sin(beta) / (LENGTH / 2) * DT
    speed = tr.speed + acc * DT
    lane = jax.vmap(closest_lane)(x, y, heading)
    timer = timer + jnp.where(jnp.arange(N_VEH) >= N_CAV, DT, 0.0)
    keep = tr.present
    moved = tr.replace(
        x=jnp.where(keep, x, tr.x), y=jnp.where(keep, y, tr.y), heading=jnp.where(keep, heading, tr.heading),
        speed=jnp.where(keep, speed, tr.speed), lane=jnp.where(keep, lane, tr.lane),
        target_lane=jnp.where(keep, target, tr.target_lane), timer=timer, crashed=tr.crashed | (tr.impact & keep),
    )
    hit, will, shift = collisions(moved)
    return moved.replace(crashed=moved.crashed | hit, impact=will, shift=shift)


# -- what the agents see and get ------------------------------------------------------------------
def observe(tr: Traffic, i) -> jax.Array:
    """highway-env's Kinematics observation of CAV i, [OBS_VEHICLES, 5] (see the module docstring)."""
    ox, oy, oh, ospeed, opresent = _objects(tr)
    ovx, ovy = ospeed * jnp.cos(oh), ospeed * jnp.sin(oh)
    ovx, ovy = ovx.at[N_VEH].set(0.0), ovy.at[N_VEH].set(0.0)
    dx, dy = ox - ox[i], oy - oy[i]
    seen = opresent & (jnp.arange(N_VEH + 1) != i) & (jnp.hypot(dx, dy) < PERCEPTION_DISTANCE) & (dx > -2 * LENGTH)
    # a stable sort by |dx| as ranks: object j goes to row 1 + (how many seen objects precede it)
    key = jnp.where(seen, jnp.abs(dx), jnp.inf)
    n = jnp.arange(N_VEH + 1)
    before = (key[None] < key[:, None]) | ((key[None] == key[:, None]) & (n[None] < n[:, None]))
    rank = jnp.where(seen, before.sum(1), N_VEH + 1)
    place = rank[None] == jnp.arange(OBS_VEHICLES - 1)[:, None]  # [4, N_VEH + 1] one-hot rows
    rows = jnp.stack([seen, dx, dy, ovx - ovx[i], ovy - ovy[i]], -1) * seen[:, None]
    rows = jnp.einsum("rj,jf->rf", place.astype(rows.dtype), rows)
    ego = jnp.array([1.0, ox[i], oy[i], ovx[i], ovy[i]])
    obs = jnp.concatenate([ego[None], rows])
    scale = jnp.concatenate([jnp.ones(1), jnp.asarray(OBS_RANGE)])
    return jnp.clip(obs / scale, -1, 1).astype(jnp.float32)


def headway(tr: Traffic, i):
    """MARL_CAVs' _compute_headway_distance: the x distance to the nearest vehicle ahead on the
    same lane (or, off the merging lane, on the next lane), at most 60 m."""
    ahead = tr.present & (tr.x > tr.x[i])
    same = (tr.lane == tr.lane[i]) | ((tr.lane[i] != BC1) & (tr.lane == _NEXT[tr.lane[i]]))
    return jnp.min(jnp.where(ahead & same, tr.x - tr.x[i], DEFAULT_HEADWAY), initial=DEFAULT_HEADWAY)


def cav_rewards(tr: Traffic) -> jax.Array:
    """MARL_CAVs' _agent_reward of each CAV, [N_CAV] (module docstring)."""
    def one(i):
        v = tr.speed[i]
        scaled = jnp.clip((v - 10.0) / 20.0, 0.0, 1.0)
        merging = jnp.where(tr.lane[i] == BC1, -jnp.exp(-((tr.x[i] - sum(ENDS[:3])) ** 2) / (10 * ENDS[2])), 0.0)
        cost = jnp.where(v > 0, jnp.log(headway(tr, i) / (HEADWAY_TIME * jnp.maximum(v, 1e-6))), 0.0)
        return (-COLLISION_REWARD * tr.crashed[i] + HIGH_SPEED_REWARD * scaled + MERGING_LANE_COST * merging
                + HEADWAY_COST * jnp.minimum(cost, 0.0))

    return jax.vmap(one)(jnp.arange(N_CAV))


def available_actions(tr: Traffic) -> jax.Array:
    """DiscreteMetaAction's available actions of each CAV, [N_CAV, 5]: idle always, a lane change
    where the side lane is reachable, faster / slower below the top / above the bottom speed."""
    idx = jnp.arange(N_CAV)
    lane, x, y = tr.lane[idx], tr.x[idx], tr.y[idx]
    return jnp.stack([
        reachable(_LEFT[lane], x, y), jnp.ones(N_CAV, bool), reachable(_RIGHT[lane], x, y),
        tr.speed_index[idx] < len(TARGET_SPEEDS) - 1, tr.speed_index[idx] > 0,
    ], -1)


def _shuffled(key, points: np.ndarray):
    """`points` in a uniformly random order: each goes to the rank of its uniform draw (a sort
    written as comparisons, cheaper than one on these six elements)."""
    u = jax.random.uniform(key, (len(points),))
    rank = (u[None] < u[:, None]).sum(1)  # distinct with probability 1
    return (jnp.asarray(points)[:, None] * (rank[:, None] == jnp.arange(len(points))[None])).sum(0)


def spawn(key) -> Traffic:
    """MARL_CAVs' _make_vehicles (traffic density 1, three CAVs): one CAV on the main road and two
    on the ramp, then 1-4 HDVs (half, rounded down, on the main road), each at a distinct spawn
    point plus U(-1.5, 1.5) m, at U(25, 27) m/s."""
    k_n, k_main, k_ramp, k_speed, k_noise = jax.random.split(key, 5)
    n_hdv = jax.random.randint(k_n, (), 1, N_HDV + 1)
    main = _shuffled(k_main, SPAWN_MAIN)
    ramp = _shuffled(k_ramp, SPAWN_RAMP)
    h = jnp.arange(N_HDV)
    k = n_hdv // 2
    hdv_on_main = h < k
    hdv_s = jnp.where(hdv_on_main, main[jnp.clip(1 + h, 0, 5)], ramp[jnp.clip(2 + h - k, 0, 5)])
    s = jnp.concatenate([jnp.stack([main[0], ramp[0], ramp[1]]), hdv_s])
    on_main = jnp.concatenate([jnp.array([True, False, False]), hdv_on_main])
    present = jnp.concatenate([jnp.ones(N_CAV, bool), h < n_hdv])
    speed = jax.random.uniform(k_speed, (N_VEH,), minval=25.0, maxval=27.0)
    x = s + jax.random.uniform(k_noise, (N_VEH,), minval=-1.5, maxval=1.5)
    y = jnp.where(on_main, 0.0, _Y0[JK])
    x, y = jnp.where(present, x, -1000.0), jnp.where(present, y, -1000.0)
    return place(x, y, speed, present)


def place(x, y, speed, present=None) -> Traffic:
    """Vehicles at (x, y) with `speed` and heading 0, as highway-env creates them (slots 0-2 the
    CAVs; `present` masks empty HDV slots): each on its closest lane and targeting it; a CAV's
    target speed is the nearest of TARGET_SPEEDS, an HDV's its speed; an HDV's lane-change timer
    starts at ((x + y) pi) mod LANE_CHANGE_DELAY."""
    x, y, speed = (jnp.asarray(a, jnp.float32) for a in (x, y, speed))
    present = jnp.ones(N_VEH, bool) if present is None else jnp.asarray(present, bool)
    heading = jnp.zeros(N_VEH)
    lane = jax.vmap(closest_lane)(x, y, heading)
    speed_index = speed_to_index(speed)
    is_cav = jnp.arange(N_VEH) < N_CAV
    return Traffic(
        x=x, y=y, heading=heading, speed=speed,
        target_speed=jnp.where(is_cav, jnp.asarray(TARGET_SPEEDS)[speed_index], speed), speed_index=speed_index,
        lane=lane, target_lane=lane, timer=jnp.where(is_cav, 0.0, ((x + y) * jnp.pi) % LANE_CHANGE_DELAY),
        crashed=jnp.zeros(N_VEH, bool), impact=jnp.zeros(N_VEH, bool), shift=jnp.zeros((N_VEH, 2)), present=present, t=jnp.zeros((), jnp.int32),
    )


def policy_step(tr: Traffic, actions) -> Traffic:
    """One policy step: the CAVs' meta-actions, then FRAMES frames; the frames after a CAV crash
    are not simulated (MARL_CAVs' _simulate stops at a terminal state)."""
    def one(tr, _):
        stop = tr.crashed[:N_CAV].any()
        return jax.tree.map(lambda a, b: jnp.where(stop, a, b), tr, frame(tr)), None

    tr, _ = jax.lax.scan(one, meta_action(tr, actions), None, length=FRAMES)
    return tr.replace(t=tr.t + 1)


class CavMergeEnv(MarlEnv):
    """The on-ramp merge as a jarob MarlEnv: 3 agents, 5 meta-actions, 25 features each."""

    has_win = False
    has_crash = True  # an episode ends early only when a CAV crashes

    def __init__(self, name: str = "cav_merge", default_eps: float = 0.05):
        self.name = name
        self.default_eps = default_eps
        self.num_agents = N_CAV
        self.num_actions = 5
        self.obs_dim = OBS_VEHICLES * 5
        self.state_dim = N_VEH * 6 + 1
        self.max_steps = MAX_STEPS
        presence = np.zeros((OBS_VEHICLES, 5), bool)
        presence[:, 0] = True
        self.perturbation = PerturbationSpec(
            mask=~presence.reshape(-1),  # never the presence flags
            low=np.full(self.obs_dim, -1.0, np.float32),
            high=np.full(self.obs_dim, 1.0, np.float32),
        )

    def _reset(self, key):
        return spawn(key)

    def _step(self, key, inner, actions):
        tr = policy_step(inner, actions)
        reward = cav_rewards(tr).mean()
        done = tr.crashed[:N_CAV].any() | (tr.t >= MAX_STEPS)
        return tr, reward, done, jnp.zeros((), bool)

    def _crashed(self, tr: Traffic):
        return tr.crashed[:N_CAV].any()

    def _view(self, tr: Traffic):
        obs = jax.vmap(lambda i: observe(tr, i).reshape(-1))(jnp.arange(N_CAV))
        vx, vy = tr.speed * jnp.cos(tr.heading), tr.speed * jnp.sin(tr.heading)
        return obs, available_actions(tr), world_state(tr.present, tr.x, tr.y, vx, vy, tr.t)


def world_state(present, x, y, vx, vy, t) -> jax.Array:
    """The world state for mixers [N_VEH * 6 + 1]: per vehicle slot presence, is-CAV, x / 520,
    y / 12, vx / 30, vy / 30 (zero for empty slots), then the step / MAX_STEPS."""
    present = jnp.asarray(present, jnp.float32)
    is_cav = jnp.arange(N_VEH) < N_CAV
    per = jnp.stack([present, is_cav, jnp.asarray(x) / 520.0, jnp.asarray(y) / 12.0, jnp.asarray(vx) / 30.0, jnp.asarray(vy) / 30.0], -1) * present[:, None]
    return jnp.concatenate([per.reshape(-1), (jnp.asarray(t, jnp.float32) / MAX_STEPS)[None]]).astype(jnp.float32)
