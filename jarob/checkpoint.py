"""Orbax checkpoints of the whole training state (team, optimiser, replay buffer, envs, keys).

Saves are synchronous and atomic (orbax writes to a temporary directory and renames it), so a
run killed at any moment keeps every checkpoint that finished. A checkpoint damaged afterwards
(truncated or emptied files, as after a full disk) fails to restore; `restore_newest_intact`
then falls back to an older one.
"""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp


class NoIntactCheckpoint(Exception):
    """No checkpoint restores; `damaged` lists (step, the exception its restore raised), newest first."""

    def __init__(self, damaged: list[tuple[int, Exception]]):
        super().__init__(damaged)
        self.damaged = damaged


class Checkpointer:
    def __init__(self, directory: str, max_to_keep: int = 2):
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False)
        self._mngr = ocp.CheckpointManager(os.path.abspath(directory), options=options)

    def steps(self) -> list[int]:
        """The saved steps, newest first (a damaged step directory is listed too)."""
        return sorted(self._mngr.all_steps(), reverse=True)

    def latest_step(self) -> int | None:
        steps = self.steps()
        return steps[0] if steps else None

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

    def restore_newest_intact(self, like):
        """(step, state, meta, damaged) of the newest checkpoint that restores, where `damaged`
        lists (step, exception) of the newer ones whose restore raised; NoIntactCheckpoint if none
        restores. Running out of memory is not damage and propagates."""
        damaged = []
        for step in self.steps():
            try:
                state, meta = self.restore(step, like)
            except MemoryError:
                raise
            except Exception as exc:  # orbax and tensorstore raise many types for damaged files
                if "RESOURCE_EXHAUSTED" in str(exc):
                    raise
                damaged.append((step, exc))
            else:
                return step, state, meta, damaged
        raise NoIntactCheckpoint(damaged)

    def delete(self, step: int) -> None:
        self._mngr.delete(step)

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
