"""cav_merge's env steps per second against highway-env's merge bridge, side by side (issue 41).

    python benchmarks/cav_merge_speed.py [--envs 512] [--devices 2] [--steps 200] [--host-seconds 60] [--out DIR]

1. cav_merge: `--envs` environments vmapped, split over `--devices` CPU devices (jarob makes 8 host
   devices; 2 use this machine's 2 cores), uniformly random available actions, `--steps` steps per
   jitted call; the best of 3 calls after compiling.
2. highway_merge: one highway-env merge (`jarob.envs.highway`), random available actions, one core,
   for `--host-seconds`.
Prints both rates and their ratio (target: at least 1,000); writes speed.json under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from importlib.metadata import version

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jarob.envs import make
from jarob.ops import uniform_available


def jax_rate(n_envs: int, n_devices: int, steps: int) -> dict:
    env = make("cav_merge")
    mesh = Mesh(np.array(jax.devices()[:n_devices]), ("envs",))
    shard = NamedSharding(mesh, PartitionSpec("envs"))
    keys = jax.device_put(jax.random.split(jax.random.PRNGKey(0), n_envs), shard)
    state, ts = jax.jit(jax.vmap(env.reset))(keys)

    def body(carry, _):
        state, ts, keys = carry
        keys, k_a, k_s = _split3(keys)
        actions = jax.vmap(uniform_available)(k_a, ts.avail)
        state, ts = jax.vmap(env.step)(k_s, state, actions)
        return (state, ts, keys), ts.done

    @jax.jit
    def run(state, ts, keys):
        (state, ts, keys), done = jax.lax.scan(body, (state, ts, keys), None, length=steps)
        return state, ts, keys, done.sum()

    t0 = time.time()
    out = jax.block_until_ready(run(state, ts, keys))
    compile_s = time.time() - t0
    best = np.inf
    for _ in range(3):
        t0 = time.time()
        out = jax.block_until_ready(run(*out[:3]))
        best = min(best, time.time() - t0)
    return {"envs": n_envs, "devices": n_devices, "steps_per_call": steps, "compile_and_first_call_s": round(compile_s, 1), "env_steps_per_s": n_envs * steps / best}


def _split3(keys):
    k = jax.vmap(lambda key: jax.random.split(key, 3))(keys)
    return k[:, 0], k[:, 1], k[:, 2]


def host_rate(seconds: float) -> dict:
    from jarob.envs.highway import HighwayMergeEnv

    env, rng = HighwayMergeEnv(), np.random.default_rng(0)
    view, steps, episodes = env.reset(0), 0, 0
    t0 = time.time()
    while time.time() - t0 < seconds:
        actions = np.array([rng.choice(np.flatnonzero(a)) for a in view["avail"]])
        view, _, done, _ = env.step(actions)
        steps += 1
        if done:
            episodes += 1
            view = env.reset(int(rng.integers(2**31)))
    wall = time.time() - t0
    return {"env_steps_per_s": steps / wall, "steps": steps, "episodes": episodes, "wall_s": round(wall, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", type=int, default=512)
    ap.add_argument("--devices", type=int, default=2)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--host-seconds", type=float, default=60.0)
    ap.add_argument("--out", default="benchmarks/results/cav_merge/speed")
    args = ap.parse_args()
    fast = jax_rate(args.envs, args.devices, args.steps)
    print(f"cav_merge, {args.envs} envs on {args.devices} CPU device(s): {fast['env_steps_per_s']:,.0f} env steps/s (compile + first call {fast['compile_and_first_call_s']} s)", flush=True)
    slow = host_rate(args.host_seconds)
    print(f"highway_merge (highway-env {version('highway-env')}), one env: {slow['env_steps_per_s']:,.1f} env steps/s over {slow['steps']} steps", flush=True)
    ratio = fast["env_steps_per_s"] / slow["env_steps_per_s"]
    print(f"ratio {ratio:,.0f} (target >= 1,000)")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "speed.json"), "w") as f:
        json.dump({"cav_merge": fast, "highway_merge": slow, "ratio": ratio, "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
