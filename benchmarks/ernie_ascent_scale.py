"""How small ERNIE's ascent normaliser max|g| gets with a trained team, and what it does to the
Stackelberg gradient (a diagnostic).

    python benchmarks/ernie_ascent_scale.py <run_dir> [seed] [sequences]
    python benchmarks/ernie_ascent_scale.py <run_dir> <seed> <sequences> --buffer <checkpoint step>

Each ERNIE ascent step moves along g / max|g| (`jarob.learners.regularizers.ernie_perturbation`),
so the Stackelberg gradient through it may scale as 1 / max|g|.

Without --buffer this loads a trained team of a `reg=ernie` run, fills a replay buffer with its own
play (a few training iterations whose updates are discarded: the team's parameters are put back
before each one), runs the ascent from the learner's random start on `sequences` stored sequences
and prints, per step, the distribution of max|g| over agent-steps, split into agents with one
available action (dead) and the others.

With --buffer it restores the run's checkpoint <step> (the learner's own parameters and replay
buffer at that point) and, for each of the first `sequences` stored sequences on its own (random
start from fold_in(key, index)), takes the smallest max|g| over its agent-steps and ascent steps
(dead agents and the others apart) and its summed R and the norm of that sum's parameter gradient
(`ValueDecomposition.regularizer`): with every agent; with the agents without a choice left out
of R and of the ascent (their available actions masked, so D = 0 for them); plain (the
perturbation held constant); with max|g| held constant in the derivative; with unnormalised
steps (the paper's eq. 4 as written, the step size divided by the median max|g|); and through the
last u < K ascent steps only (`reg.unroll=u`, truncated backpropagation). It prints
their distributions and the sequences with the largest gradients and the smallest normalisers.
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jarob.config import load_config
from jarob.learners.regularizers import ernie_ascent_step, ernie_distance
from jarob.networks import unroll_sequence
from jarob.trainer import Trainer

USAGE = __doc__.strip().splitlines()[3:5]


def ascent_normalisers(lrn, agent, seq, key):
    """max|g| [K, T, B, N] at each of the learner's ascent steps on the time-major `seq`, from the
    learner's random start drawn with `key`."""
    _, context = unroll_sequence(agent, seq.hidden, seq, lrn.num_actions, with_context=True)
    obs, avail, eps, r = seq.obs[:-1], seq.avail[:-1], lrn.reg_eps, lrn.reg

    def q_fn(o):
        return lrn.step_q(agent, context[:-1], o, seq.last_action[:-1], seq.first[:-1])[1]

    distance, q_clean = ernie_distance(r.distance, r.temperature), q_fn(obs)
    x, out = lrn.spec.random_point(key, obs, eps), []
    for _ in range(r.steps):
        x, scale = ernie_ascent_step(q_fn, obs, q_clean, avail, lambda clean, y: lrn.spec.project(clean, y, eps), lrn.spec.mask, x, step_size=lrn.reg_step_size, distance=distance)
        out.append(scale[..., 0])
    return jnp.stack(out)


def own_play(run_dir: str, seed: int, sequences: int) -> int:
    from jarob.evaluation import load_team

    team = load_team(run_dir)
    cfg = load_config(["env=" + team.env_name, "alg=" + team.alg.name, "reg=ernie", "seeds=1"])
    tr = Trainer(cfg)
    lrn, agent = tr.learner, jax.tree.map(lambda x: jnp.asarray(x[seed]), team.params)
    state, iteration = tr.init(jax.random.PRNGKey(7)), jax.jit(tr.iteration)
    for i in range(-(-sequences // cfg.alg.num_envs)):
        params = dict(state.learner.params, agent=agent)
        state, _ = iteration(state.replace(learner=state.learner.replace(params=params, team=agent)), jnp.int32(i))
    seq = jax.tree.map(lambda x: x[:sequences], state.buffer).time_major()
    scales = np.asarray(ascent_normalisers(lrn, agent, seq, jax.random.PRNGKey(3)))
    dead = np.asarray(seq.avail[:-1].sum(-1) <= 1).ravel()
    for k, s in enumerate(scales):
        s = s.ravel()
        print(f"step {k}: max|g| median {np.median(s):.3g}, 0.1% quantile {np.quantile(s, 1e-3):.3g}, min {s.min():.3g} over {s.size} agent-steps; "
              f"below 1e-4: {(s[dead] < 1e-4).sum()} of {dead.sum()} dead, {(s[~dead] < 1e-4).sum()} of {(~dead).sum()} others")
    return 0


def stored_buffer(run_dir: str, seed: int, sequences: int, step: int) -> int:
    import yaml

    from jarob.checkpoint import Checkpointer
    from jarob.config import from_saved
    from jarob.trainer import seed_keys

    with open(os.path.join(run_dir, "config.yaml")) as f:
        cfg = from_saved(yaml.safe_load(f))
    tr = Trainer(cfg)
    lrn = tr.learner
    like = jax.eval_shape(jax.vmap(tr.init), seed_keys(cfg.seed, cfg.seeds))
    state, _ = Checkpointer(os.path.join(run_dir, "checkpoints")).restore(step, like)
    agent = jax.tree.map(lambda x: jnp.asarray(x[seed]), state.learner.params["agent"])
    buffer = jax.tree.map(lambda x: jnp.asarray(x[seed][:sequences]), state.buffer)

    # The unnormalised ("none") step is scaled to move as far as the normalised one does at the
    # median normaliser of the first sequences.
    first = jax.tree.map(lambda x: x[:64], buffer).time_major()
    median = float(jnp.median(ascent_normalisers(lrn, agent, first, jax.random.PRNGKey(3))))
    variants = {
        "Stackelberg, every agent": {},
        "Stackelberg, agents without a choice left out (D = 0, not perturbed)": {"choice_only": True},
        "plain (delta held constant)": {"stackelberg": False},
        "Stackelberg, max|g| held constant in the derivative": {"normaliser": "max_held"},
        f"Stackelberg, unnormalised steps (step size / {median:.3g})": {"normaliser": "none", "step_size": lrn.reg_step_size / median},
        **{f"Stackelberg through the last {u} step(s) (reg.unroll={u})": {"unroll": u} for u in range(1, cfg.reg.steps)},
    }

    def r_sum(a, seq, key, choice_only=False, **ernie):
        _, context = unroll_sequence(agent, seq.hidden, seq, lrn.num_actions, with_context=True)
        if choice_only:
            seq = seq.replace(avail=seq.avail & (seq.avail.sum(-1, keepdims=True) > 1))
        return jnp.sum(lrn.regularizer(a, jax.lax.stop_gradient(context[:-1]), seq, key, **ernie))

    @jax.jit
    @jax.vmap
    def one(item, index):
        """One stored sequence as a batch of one: its normalisers' minima, R, and the norms of R's
        gradient in the agent's parameters under each variant."""
        key = jax.random.fold_in(jax.random.PRNGKey(3), index)
        seq = jax.tree.map(lambda x: x[None], item).time_major()
        dead = seq.avail[:-1].sum(-1) <= 1  # [T, 1, N]
        scales = ascent_normalisers(lrn, agent, seq, key)
        norms = [optax.tree.norm(jax.grad(r_sum)(agent, seq, key, **kw)) for kw in variants.values()]
        return jnp.stack([jnp.min(jnp.where(dead, jnp.inf, scales)), jnp.min(jnp.where(dead, scales, jnp.inf)), r_sum(agent, seq, key), *norms])

    res = np.concatenate([np.asarray(one(jax.tree.map(lambda x: x[i : i + 64], buffer), jnp.arange(i, min(i + 64, sequences)))) for i in range(0, sequences, 64)])
    alive_min, dead_min, r, grads = res[:, 0], res[:, 1], res[:, 2], res[:, 3:]
    g_all, g_choice, g_plain = grads[:, 0], grads[:, 1], grads[:, 2]
    print(f"checkpoint {step}, seed {seed}, {len(res)} stored sequences, each on its own ({cfg.reg.steps} ascent steps, stackelberg={cfg.reg.stackelberg}); "
          f"smallest max|g|: {dead_min.min():.2g} (dead agents), {alive_min.min():.2g} (the others)")
    print(f"R of one sequence: median {np.median(r):.4g}, 99% {np.quantile(r, 0.99):.4g}, max {r.max():.4g}")
    for k, name in enumerate(variants):
        g = grads[:, k]
        fin = g[np.isfinite(g)]
        print(f"|grad R| of one sequence, {name}: median {np.median(fin):.4g}, 99% {np.quantile(fin, 0.99):.4g}, max {fin.max():.4g}, non-finite {np.sum(~np.isfinite(g))}")
    ratio = g_choice / g_all
    print(f"choice-only / every-agent gradient norm: min {np.nanmin(ratio):.4f}, max {np.nanmax(ratio):.4f}")
    print(f"Stackelberg / plain gradient norm: median {np.median(g_all / g_plain):.3g}, max {np.max(g_all / g_plain):.3g}")
    print(f"correlation of log |grad R| with the log smallest max|g| of agents with a choice: {np.corrcoef(np.log(np.stack([alive_min, g_all])))[0, 1]:.3f}, with log R: {np.corrcoef(np.log(np.stack([r, g_all])))[0, 1]:.3f}")
    for label, order in (("largest |grad R|", np.argsort(-g_all)), ("smallest dead max|g|", np.argsort(dead_min)), ("smallest max|g| with a choice", np.argsort(alive_min))):
        print(label + ": " + "; ".join(f"#{j} |grad R| {g_all[j]:.4g} (plain {g_plain[j]:.4g}), R {r[j]:.3g}, max|g| {alive_min[j]:.2g} / {dead_min[j]:.2g} (dead)" for j in order[:4]))
    return 0


def main(argv: list[str]) -> int:
    step = None
    if "--buffer" in argv:
        i = argv.index("--buffer")
        if i + 1 >= len(argv):
            print("--buffer needs a checkpoint step", file=sys.stderr)
            return 2
        step, argv = int(argv[i + 1]), argv[:i] + argv[i + 2 :]
    if not 1 <= len(argv) <= 3:
        print("usage:\n" + "\n".join(USAGE), file=sys.stderr)
        return 2
    run_dir, seed, sequences = argv[0], int(argv[1]) if len(argv) > 1 else 0, int(argv[2]) if len(argv) > 2 else 96
    if step is None:
        return own_play(run_dir, seed, sequences)
    return stored_buffer(run_dir, seed, sequences, step)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
