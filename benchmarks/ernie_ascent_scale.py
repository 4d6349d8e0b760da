"""How small ERNIE's ascent normaliser max|g| gets with a trained team (a diagnostic).

    python benchmarks/ernie_ascent_scale.py <run_dir> [seed] [sequences]

Each ERNIE ascent step moves along g / max|g| (`jarob.learners.regularizers.ernie_perturbation`),
so the Stackelberg gradient through it scales as 1 / max|g|. This loads a trained team of a
`reg=ernie` run, fills a replay buffer with its own play (a few training iterations whose updates
are discarded: the team's parameters are put back before each one), runs the ascent from the
learner's random start on `sequences` stored sequences and prints, per step, the distribution of
max|g| over agent-steps, split into agents with one available action (dead) and the others.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np

from jarob.config import load_config
from jarob.evaluation import load_team
from jarob.learners.regularizers import ernie_ascent_step, ernie_distance
from jarob.networks import unroll_sequence
from jarob.trainer import Trainer


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    run_dir, seed, sequences = argv[0], int(argv[1]) if len(argv) > 1 else 0, int(argv[2]) if len(argv) > 2 else 96
    team = load_team(run_dir)
    cfg = load_config(["env=" + team.env_name, "alg=" + team.alg.name, "reg=ernie", "seeds=1"])
    tr = Trainer(cfg)
    lrn, agent = tr.learner, jax.tree.map(lambda x: jnp.asarray(x[seed]), team.params)
    state, iteration = tr.init(jax.random.PRNGKey(7)), jax.jit(tr.iteration)
    for i in range(-(-sequences // cfg.alg.num_envs)):
        params = dict(state.learner.params, agent=agent)
        state, _ = iteration(state.replace(learner=state.learner.replace(params=params, team=agent)), jnp.int32(i))
    seq = jax.tree.map(lambda x: x[:sequences], state.buffer).time_major()
    _, context = unroll_sequence(agent, seq.hidden, seq, lrn.num_actions, with_context=True)
    obs, avail, eps, r = seq.obs[:-1], seq.avail[:-1], lrn.reg_eps, lrn.reg

    def q_fn(o):
        return lrn.step_q(agent, context[:-1], o, seq.last_action[:-1], seq.first[:-1])[1]

    distance, q_clean = ernie_distance(r.distance, r.temperature), q_fn(obs)
    x = lrn.spec.random_point(jax.random.PRNGKey(3), obs, eps)
    dead = np.asarray(avail.sum(-1) <= 1).ravel()
    for k in range(r.steps):
        x, scale = ernie_ascent_step(q_fn, obs, q_clean, avail, lambda clean, y: lrn.spec.project(clean, y, eps), lrn.spec.mask, x, step_size=lrn.reg_step_size, distance=distance)
        s = np.asarray(scale).ravel()
        print(f"step {k}: max|g| median {np.median(s):.3g}, 0.1% quantile {np.quantile(s, 1e-3):.3g}, min {s.min():.3g} over {s.size} agent-steps; "
              f"below 1e-4: {(s[dead] < 1e-4).sum()} of {dead.sum()} dead, {(s[~dead] < 1e-4).sum()} of {(~dead).sum()} others")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
