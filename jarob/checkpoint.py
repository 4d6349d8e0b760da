"""Orbax checkpoints of the whole training state (team, optimiser, replay buffer, envs, keys).

Saves are synchronous and atomic (orbax writes to a temporary directory and renames it), so a
run killed at any moment keeps every checkpoint that finished. A checkpoint damaged afterwards
(truncated or emptied files, as after a full disk) fails to restore; `restore_newest_intact`
then falls back to an older one.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
import time

import jax
import orbax.checkpoint as ocp


class NoIntactCheckpoint(Exception):
    """No checkpoint restores; `damaged` lists (step, why its restore failed), newest first."""

    def __init__(self, damaged: list[tuple[int, str]]):
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
        lists (step, why its restore failed) of the newer ones; NoIntactCheckpoint if none
        restores. Running out of memory is not damage and propagates."""
        damaged = []
        with _failed_reads_dropped() as settle:
            for step in self.steps():
                try:
                    state, meta = self.restore(step, like)
                except MemoryError:
                    raise
                except Exception as exc:  # orbax and tensorstore raise many types for damaged files
                    if "RESOURCE_EXHAUSTED" in str(exc):
                        raise
                    damaged.append((step, _reason(exc)))
                else:
                    return step, state, meta, damaged
                settle()  # the exception (and the reads its frames hold) is gone here
        raise NoIntactCheckpoint(damaged)

    def delete(self, step: int) -> None:
        self._mngr.delete(step)

    def close(self) -> None:
        self._mngr.close()


def _reason(exc: BaseException, limit: int = 200) -> str:
    """Why a restore failed: `Type: first line` of the innermost cause (tensorstore's message,
    not orbax's wrapper around it), cut to `limit` characters."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    first = str(exc).strip().partition("\n")[0]
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _from_failed_read(unraisable) -> bool:
    if isinstance(unraisable.exc_value, RuntimeError) and str(unraisable.exc_value) == "Event loop is closed":
        return True
    code = getattr(unraisable.object, "cr_code", None)  # a coroutine
    return code is not None and f"{os.sep}orbax{os.sep}" in code.co_filename


@contextlib.contextmanager
def _failed_reads_dropped(quiet_s: float = 0.5, max_s: float = 10.0):
    """Yields `settle`, to call after a failed restore. Orbax closes its event loop when a restore
    fails without cancelling the reads still in flight: as each finishes it reports 'Event loop is
    closed', and each read never awaited, or task whose error nobody retrieved, reports that error
    when collected: a traceback apiece on stderr (via sys.unraisablehook and the asyncio logger).
    Inside the block those reports are dropped; `settle` collects garbage until none has come for
    `quiet_s` seconds (at most `max_s`)."""
    previous, last = sys.unraisablehook, [0.0]

    def hook(unraisable):
        if _from_failed_read(unraisable):
            last[0] = time.monotonic()
        else:
            previous(unraisable)

    def unretrieved(record: logging.LogRecord) -> bool:  # False drops the record
        if "exception was never retrieved" in str(record.msg):
            last[0] = time.monotonic()
            return False
        return True

    def settle():
        start = last[0] = time.monotonic()
        while time.monotonic() - last[0] < quiet_s and time.monotonic() - start < max_s:
            gc.collect()
            time.sleep(0.05)

    sys.unraisablehook = hook
    logging.getLogger("asyncio").addFilter(unretrieved)
    try:
        yield settle
    finally:
        sys.unraisablehook = previous
        logging.getLogger("asyncio").removeFilter(unretrieved)


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
