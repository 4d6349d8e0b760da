"""Where a team's action flips under an observation attack come from (a diagnostic).

    python benchmarks/action_flips.py runs=<run_dir>[,<run_dir>...] [adversaries=rn,fgsm] [eps=0.25]
        [episodes=512] [steps=60]

Plays every seed of every team greedily under each (static) adversary, as `jarob.evaluate`
does, while also stepping a second GRU on the clean observations. At every step of a live
episode it compares the clean greedy action a(h, o) (clean memory h, clean observation o) with
- `actual`   a(h~, o~): what the attacked team did (attacked memory and observation);
- `one-step` a(h, o~): the attack on this step's observation alone;
- `memory`   a(h~, o): the earlier steps' attacks, carried in the GRU's memory alone;
and reports the share of agent-steps whose action differs (mean over seeds), with the median
gap between the best and second-best clean utility. A regularizer that acts on one step at the
clean memory (PR, ERNIE) can only lower `one-step`; a small gap with a high `one-step` share
means the utilities were made flat rather than the ranking robust.
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

from jarob import adversaries, envs
from jarob.config import adv_config
from jarob.evaluation import load_team
from jarob.learners.value_decomposition import ValueDecomposition
from jarob.ops import mask_logits, masked_argmax
from jarob.rollout import act_step, init_actor

KINDS = ("actual", "one-step", "memory")


def flip_rates(team, adv_name: str, eps: float, episodes: int, steps: int, seed: int = 1) -> dict:
    """{kind: [seeds] share of flipped agent-steps, "gap": [seeds] median clean action gap}."""
    env = envs.make(team.env_name)
    learner = ValueDecomposition(team.alg, env)
    adversary = adversaries.make(adv_config(adv_name), env, eps)
    adv_state = adversary.init(jax.random.PRNGKey(0), eps)

    def one(params, key):
        k_init, k_run = jax.random.split(key)
        actor = init_actor(env, learner, k_init, episodes, adversary)

        def body(carry, k):
            actor, h_clean, alive = carry
            ts, h_attacked = actor.ts, actor.hidden
            # The attacked step itself: rec.obs is what the team saw, rec.action its greedy action.
            actor, rec = act_step(env, learner, params, actor, k, jnp.zeros(()), adversary, adv_state, False)
            h_clean_next, q_clean = learner.step_q(params, h_clean, ts.obs, rec.last_action, ts.first)
            best = masked_argmax(q_clean, ts.avail)
            flips = {
                "actual": rec.action,
                "one-step": masked_argmax(learner.step_q(params, h_clean, rec.obs, rec.last_action, ts.first)[1], ts.avail),
                "memory": masked_argmax(learner.step_q(params, h_attacked, ts.obs, rec.last_action, ts.first)[1], ts.avail),
            }
            out = {kind: a != best for kind, a in flips.items()}
            top2 = jax.lax.top_k(mask_logits(q_clean, ts.avail), 2)[0]
            out["gap"] = top2[..., 0] - top2[..., 1]
            out["live"] = jnp.broadcast_to(alive[:, None], best.shape) & (jnp.sum(ts.avail, -1) > 1)
            return (actor, h_clean_next, alive & ~rec.done), out

        alive = jnp.ones((episodes,), bool)
        _, out = jax.lax.scan(body, (actor, actor.hidden, alive), jax.random.split(k_run, steps))
        w = out["live"].astype(jnp.float32)
        rates = {kind: jnp.sum(out[kind] * w) / jnp.sum(w) for kind in KINDS}
        return rates | {"gap": jnp.nanmedian(jnp.where(out["live"], out["gap"], jnp.nan))}

    keys = jax.random.split(jax.random.PRNGKey(seed), team.seeds)
    return {k: np.asarray(v) for k, v in jax.jit(jax.vmap(one))(team.params, keys).items()}


def main(argv: list[str]) -> int:
    opts = dict(a.split("=", 1) for a in argv if "=" in a)
    if "runs" not in opts:
        print(__doc__.strip().splitlines()[0] + "\nusage: " + __doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    runs = opts["runs"].split(",")
    advs = opts.get("adversaries", "rn,fgsm").split(",")
    eps, episodes, steps = float(opts.get("eps", 0.25)), int(opts.get("episodes", 512)), int(opts.get("steps", 60))
    print(f"| team | adversary | {' | '.join(KINDS)} | clean gap (median) |")
    print("|---|---|" + "---|" * (len(KINDS) + 1))
    for run in runs:
        team = load_team(run)
        for adv in advs:
            r = flip_rates(team, adv, eps, episodes, steps)
            cells = [f"{r[k].mean():.3f} ± {r[k].std():.3f}" for k in KINDS]
            print(f"| {os.path.basename(os.path.normpath(run))} | {adv} | {' | '.join(cells)} | {r['gap'].mean():.3f} |", flush=True)
    print("\n± is the standard deviation over the team's seeds (population std, ddof=0); the gap: each seed's median, averaged over seeds.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
