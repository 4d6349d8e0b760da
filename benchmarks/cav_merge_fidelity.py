"""cav_merge against highway-env under scripted policies: crash rate and mean speed (issue 41).

    python benchmarks/cav_merge_fidelity.py [--episodes 500] [--out benchmarks/results/cav_merge/fidelity]

The same three scripted policies drive the three CAVs on `cav_merge` (JAX, vmapped over the
episodes) and on `highway_merge` (highway-env 1.12, one episode at a time), each over its own
random episodes (the spawn is MARL_CAVs' on both; the draws differ):
- idle: always IDLE (the ramp CAVs follow the ramp to its end);
- faster: always FASTER;
- sequence: FASTER, IDLE, LANE_LEFT, IDLE, SLOWER, repeated (offset by one step per CAV).
A policy's action is replaced by IDLE where it is not available. Reported per env and policy: the
crash rate (episodes a CAV crashed in), its binomial standard error, the mean CAV speed over all
steps, the mean episode length and return; fidelity.json and fidelity.md under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from jarob.envs import cav_merge as cm

SEQUENCE = (cm.FASTER, cm.IDLE, cm.LANE_LEFT, cm.IDLE, cm.SLOWER)


def policy(name: str, t, avail):
    """The CAVs' actions at step t (numpy or jax), IDLE where the choice is unavailable."""
    xp = jnp if isinstance(avail, jax.Array) else np
    if name == "idle":
        a = xp.full(cm.N_CAV, cm.IDLE)
    elif name == "faster":
        a = xp.full(cm.N_CAV, cm.FASTER)
    else:
        a = xp.asarray(SEQUENCE)[(t + xp.arange(cm.N_CAV)) % len(SEQUENCE)]
    ok = xp.take_along_axis(avail, a[:, None], 1)[:, 0]
    return xp.where(ok, a, cm.IDLE)


def jax_stats(name: str, episodes: int, seed: int = 0) -> dict:
    env = cm.CavMergeEnv()

    def episode(key):
        state, ts = env.reset(key)

        def body(carry, t):
            state, ts, alive = carry
            state, nxt = env.step(jax.random.fold_in(key, t), state, policy(name, t, ts.avail))
            speed = state.inner.speed[: cm.N_CAV].mean()  # after the step (the auto-reset is masked by alive)
            out = (alive, alive & nxt.done, nxt.ep_return, nxt.ep_length, jnp.where(alive & ~nxt.done, speed, 0.0))
            return (state, nxt, alive & ~nxt.done), out

        _, (alive, ended, ret, length, speed) = jax.lax.scan(body, (state, ts, jnp.ones((), bool)), jnp.arange(cm.MAX_STEPS))
        end = jnp.argmax(ended)
        crashed = length[end] < cm.MAX_STEPS  # an episode ends early only by a CAV crash
        return crashed, ret[end], length[end], speed.sum(), (alive & ~ended).sum()

    t0 = time.time()
    crashed, ret, length, speed_sum, n = jax.jit(jax.vmap(episode))(jax.random.split(jax.random.PRNGKey(seed), episodes))
    return summarise(np.asarray(crashed), np.asarray(ret), np.asarray(length), float(np.sum(speed_sum)) / max(int(np.sum(n)), 1), time.time() - t0)


def host_stats(name: str, episodes: int, seed: int = 0) -> dict:
    from jarob.envs.highway import HighwayMergeEnv

    env, rows, speeds = HighwayMergeEnv(), [], []
    t0 = time.time()
    for e in range(episodes):
        view, ret = env.reset(seed * 100_003 + e), 0.0
        for t in range(cm.MAX_STEPS):
            view, reward, done, _ = env.step(policy(name, t, view["avail"]))
            ret += reward
            if done:
                break
            speeds.append(np.mean([v.speed for v in env.sim.controlled_vehicles]))
        rows.append((env.last_crashed, ret, t + 1))
    crashed, ret, length = (np.array(x) for x in zip(*rows))
    return summarise(crashed, ret, length, float(np.mean(speeds)), time.time() - t0)


def summarise(crashed, ret, length, mean_speed: float, wall: float) -> dict:
    p = float(crashed.mean())
    return {"episodes": len(crashed), "crash_rate": p, "crash_rate_se": float(np.sqrt(p * (1 - p) / len(crashed))),
            "mean_speed": mean_speed, "mean_length": float(length.mean()), "mean_return": float(ret.mean()), "wall_s": round(wall, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=500)
    ap.add_argument("--policies", default="idle,faster,sequence")
    ap.add_argument("--out", default="benchmarks/results/cav_merge/fidelity")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    result, lines = {}, ["| policy | env | crash rate | mean CAV speed (m/s) | mean length | mean return |", "|---|---|---|---|---|---|"]
    for name in args.policies.split(","):
        result[name] = {"cav_merge": jax_stats(name, args.episodes), "highway_merge": host_stats(name, args.episodes)}
        for env_name, r in result[name].items():
            lines.append(f"| {name} | {env_name} | {r['crash_rate']:.3f} ± {r['crash_rate_se']:.3f} | {r['mean_speed']:.2f} | {r['mean_length']:.1f} | {r['mean_return']:.1f} |")
            print(lines[-1], flush=True)
        with open(os.path.join(args.out, "fidelity.json"), "w") as f:  # after each policy: a killed run keeps what it measured
            json.dump(result, f, indent=2)
    with open(os.path.join(args.out, "fidelity.md"), "w") as f:
        f.write("\n".join(lines) + f"\n\n{args.episodes} episodes per cell; ± the binomial standard error.\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
