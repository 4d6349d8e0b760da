# jarob configures XLA's CPU backend when imported; import it before any test starts JAX.
import jarob  # noqa: F401
import pytest  # noqa: E402

# A tiny two-seed training run shared by the training, resume and evaluation tests.
TINY = [
    "env=smax_3m",
    "seeds=2",
    "total_steps=256",
    "eval_every=64",
    "checkpoint_every=64",
    "eval_episodes=4",
    "final_eval_episodes=8",
    "progress=false",
    "tensorboard=false",
    "alg.num_envs=4",
    "alg.rollout_len=8",
    "alg.batch_size=4",
    "alg.buffer_size=32",
    "alg.hidden_dim=16",
    "alg.mixer_embed_dim=8",
    "alg.hypernet_hidden=16",
    "alg.eps_anneal_steps=128",
    "alg.target_update_every=3",
]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    from jarob.train import main

    run_dir = tmp_path_factory.mktemp("ref") / "run"
    assert main(TINY + [f"run_dir={run_dir}"]) == 0
    return run_dir


def last_checkpoint(run_dir, overrides=TINY):
    """The whole training state (every seed) at the last checkpoint of the run in `run_dir`, made
    with the config of `overrides`."""
    import jax

    from jarob.checkpoint import Checkpointer
    from jarob.config import load_config
    from jarob.trainer import Trainer, seed_keys

    cfg = load_config(overrides)
    ckpt = Checkpointer(str(run_dir / "checkpoints"))
    state, _ = ckpt.restore(ckpt.latest_step(), jax.eval_shape(jax.vmap(Trainer(cfg).init), seed_keys(cfg.seed, cfg.seeds)))
    return state
