import atexit
import os
import shutil
import tempfile

# The suite's time is almost all XLA compiling (tiny configs run in well under a second), so before
# JAX starts (these reach the CLI tests' subprocesses too):
# - LLVM's optimisation level 0 for the suite: about half the compile time of the default;
# - XLA's MLIR fusion emitters off (fusions go through the elemental LLVM emitter): a further third
#   off compiling a training iteration (ATSA's: 22-25 s -> 13-15 s on the 2-core CPU), and LLVM's
#   expensive passes skipped;
# - one persistent compilation cache for the session: a program compiled twice (the same config
#   trained again, resumed, or evaluated by a second test) is compiled once.
# A user's own settings are kept; the cache is the session's own and removed at exit.
for _flag, _value in (
    ("--xla_backend_optimization_level", "0"),
    ("--xla_cpu_use_fusion_emitters", "false"),
    ("--xla_llvm_disable_expensive_passes", "true"),
):
    if _flag not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_flag}={_value}".strip()
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="jarob-test-xla-cache-")
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)

# jarob configures XLA's CPU backend when imported; import it before any test starts JAX.
import jarob  # noqa: E402, F401
import jax  # noqa: E402
import pytest  # noqa: E402

# The environment variable is read when JAX is imported, and a plugin may have imported it first.
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])

# A tiny two-seed training run shared by the training, resume and evaluation tests (the notebooks'
# `tiny` budget trains the same team, so the compilation cache serves both).
from jarob.budgets import QUIET, TINY_TEAM  # noqa: E402

TINY = ["env=smax_3m", *TINY_TEAM, *QUIET]


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
