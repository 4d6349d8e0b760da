"""Smoke-run budgets: hydra overrides that shrink a run to a few hundred env steps on tiny networks.

A run with them checks that a pipeline works end to end, in seconds once compiled: the test suite
uses them, and so does the notebooks' `tiny` budget (CI). The numbers such a run reports mean
nothing. Each is a tuple of overrides, to be spread into an argument list:

    train(["env=smax_3m", *TINY_TEAM, *QUIET, "run_dir=runs/smoke"])
    attack(["victim=runs/smoke", "adv=paad", *TINY_LOOP, *TINY_DIRECTOR, *QUIET, "run_dir=runs/smoke_paad"])
"""

from __future__ import annotations

# The run's length, its greedy evaluations and checkpoints: for `jarob.train` and `jarob.attack`.
TINY_LOOP = ("total_steps=256", "eval_every=64", "checkpoint_every=64", "eval_episodes=4", "final_eval_episodes=8")

# A value-decomposition team (`alg=qmix`, `vdn`, `iql`): two seeds, four envs, small networks.
TINY_TEAM = (
    "seeds=2",
    *TINY_LOOP,
    "alg.num_envs=4",
    "alg.rollout_len=8",
    "alg.batch_size=4",
    "alg.buffer_size=32",
    "alg.hidden_dim=16",
    "alg.mixer_embed_dim=8",
    "alg.hypernet_hidden=16",
    "alg.eps_anneal_steps=128",
    "alg.target_update_every=3",
)

# A MAPPO team (`alg=mappo`): two seeds, four envs of 8-step rollouts, small networks.
TINY_MAPPO = (
    "alg=mappo",
    "seeds=2",
    *TINY_LOOP,
    "alg.num_envs=4",
    "alg.rollout_len=8",
    "alg.minibatches=2",
    "alg.epochs=2",
    "alg.hidden_dim=16",
    "alg.critic_hidden_dim=16",
)

# A DOP team (`alg=dop`): likewise, with a short exploration anneal and frequent target copies.
TINY_DOP = (
    "alg=dop",
    "seeds=2",
    *TINY_LOOP,
    "alg.num_envs=4",
    "alg.rollout_len=8",
    "alg.minibatches=2",
    "alg.hidden_dim=16",
    "alg.critic_hidden_dim=16",
    "alg.mixer_hidden_dim=8",
    "alg.eps_anneal_steps=128",
    "alg.target_update_every=4",
)

# A director-based adversary's own learner (`adv=paad`, `atsa`, `rap`).
TINY_DIRECTOR = ("adv.director.hidden_dim=16", "adv.director.batch_size=4", "adv.director.buffer_size=32")

# No progress bar, no TensorBoard events: for runs inside a test or a notebook.
QUIET = ("progress=false", "tensorboard=false")
