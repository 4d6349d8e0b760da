"""Orbax checkpoints of the whole training state (team, optimiser, replay buffer, envs, keys).

Saves are synchronous and atomic (orbax writes to a temporary directory and renames it), so a
run killed at any moment keeps every checkpoint that finished.
"""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp


class Checkpointer:
    def __init__(self, directory: str, max_to_keep: int = 2):
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False)
        self._mngr = ocp.CheckpointManager(os.path.abspath(directory), options=options)

    def latest_step(self) -> int | None:
        return self._mngr.latest_step()

    def save(self, step: int, state, meta: dict) -> None:
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        self._mngr.save(step, args=args, force=True)
        self._mngr.wait_until_finished()

    def restore(self, step: int, like):
        """Restore (state, meta) saved at `step`; `like` gives the state's structure and shapes."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
        restored = self._mngr.restore(step, args=args)
        return restored.state, restored.meta

    def close(self) -> None:
        self._mngr.close()


def has_checkpoint(directory: str) -> bool:
    return os.path.isdir(directory) and Checkpointer(directory).latest_step() is not None


# -- trained parameters, for evaluation --------------------------------------------------

TEAM_FILE = "team.msgpack"  # the trained team's agent parameters
ADVERSARY_FILE = "adversary.msgpack"  # a learned adversary's acting parameters


def save_params(run_dir: str, filename: str, params) -> None:
    """Parameters (every leaf [seeds, ...]) for `jarob.evaluate`, written atomically
    (temporary file + rename)."""
    from flax import serialization

    path = os.path.join(run_dir, filename)
    with open(path + ".tmp", "wb") as f:
        f.write(serialization.msgpack_serialize(jax.device_get(params)))
    os.replace(path + ".tmp", path)


def load_params(run_dir: str, filename: str):
    """The parameters `save_params` wrote (nested dicts of numpy arrays)."""
    from flax import serialization

    with open(os.path.join(run_dir, filename), "rb") as f:
        return serialization.msgpack_restore(f.read())
