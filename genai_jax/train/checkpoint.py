"""The one place that talks to Orbax (its API changes often): save, keep-N, auto-resume,
preemption and the faults a long run meets (interrupted saves, damaged checkpoints, full disks).

Checkpoints live in ``<workdir>/checkpoints/<step>``; each holds the whole train state pytree
(params, optimiser states, batch stats, step, rng), saved asynchronously. Unreadable ones are
moved to ``<workdir>/checkpoints_unreadable/`` (never deleted).
"""

import errno
import os
import shutil
import signal
import sys
import threading
import time
from typing import Any, Optional

from absl import logging
import jax
import orbax.checkpoint as ocp

from genai_jax import multihost
from genai_jax import storage
from genai_jax.errors import CheckpointError

_TMP = ".orbax-checkpoint-tmp"


class _StopSignals:
  """SIGTERM (spot VMs, schedulers) and a first Ctrl-C ask the run to checkpoint and stop.

  One process: the handlers set a flag the loop reads every step. Several processes:
  ``jax.distributed.initialize`` installed JAX's own SIGTERM handler, which tells the
  coordination service so every process reaches the same preemption step (what Orbax's
  ``reached_preemption`` reads); replacing it would make SIGTERM a no-op, so only SIGINT is
  caught, and it is forwarded to that handler as SIGTERM. A second Ctrl-C exits at once.
  """

  def __init__(self):
    self.received = None  # name of the first stop signal, or None
    self._previous = {}

  def install(self) -> None:
    if self._previous or threading.current_thread() is not threading.main_thread():
      return
    self.received = None
    signals = [signal.SIGINT] + ([signal.SIGTERM] if jax.process_count() == 1 else [])
    for s in signals:
      self._previous[s] = signal.signal(s, self._handle)

  def uninstall(self) -> None:
    for s, previous in self._previous.items():
      signal.signal(s, previous)
    self._previous = {}

  def _handle(self, signum, frame):
    del frame
    if multihost.starting_up():
      multihost.hold_if_stopping()
      return  # before the first step the start-up guard ends the run (multihost.StartupGuard)
    if self.received is not None and signum == signal.SIGINT:
      print("interrupted twice: exiting now without a checkpoint", file=sys.stderr, flush=True)
      os._exit(130)
    self.received = signal.Signals(signum).name
    print(f"{self.received} received: saving a checkpoint after this step "
          f"(Ctrl-C again to quit at once)", file=sys.stderr, flush=True)
    if jax.process_count() > 1 and signum == signal.SIGINT:
      os.kill(os.getpid(), signal.SIGTERM)  # JAX's handler: every process stops at one step


def _describe_os_error(e: BaseException) -> tuple[str, str]:
  """(cause, fix) for an exception raised while writing a checkpoint, from its chain."""
  text = ""
  while e is not None:
    if isinstance(e, OSError) and e.errno is not None:
      if e.errno == errno.ENOSPC:
        return "the disk is full", "free space or pass a --workdir on a disk with room"
      if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied", "pass a --workdir you can write to"
      if e.errno == errno.EFBIG:
        return "file too large (ulimit -f)", "raise the file-size limit or use another disk"
    text += f" {e}"
    e = e.__cause__ or e.__context__
  low = text.lower()
  if "no space left" in low or "resource_exhausted" in low or "enospc" in low:
    return "the disk is full", "free space or pass a --workdir on a disk with room"
  if "permission denied" in low or "read-only file system" in low:
    return "permission denied", "pass a --workdir you can write to"
  if "file too large" in low:
    return "file too large (ulimit -f)", "raise the file-size limit or use another disk"
  first = text.strip().splitlines()[0][:200] if text.strip() else "unknown error"
  return first, "check the workdir's storage"


def _is_model_mismatch(e: BaseException) -> bool:
  """Whether a restore failed because the checkpoint holds a different model (not damage)."""
  text = str(e).lower()
  return ("not compatible with the stored shape" in text or "tree structure" in text
          or "do not match" in text)


class Checkpoints:
  """Async Orbax checkpoints of a state pytree, keeping the newest ``keep``.

  ``create=True`` is a training run's writer: it creates the directory, cleans up saves that
  were interrupted, and turns SIGTERM / Ctrl-C into a checkpoint and a clean stop until
  ``close()``. ``create=False`` only reads.
  """

  def __init__(self, workdir: str, keep: int = 3, create: bool = True):
    self.directory = os.path.join(os.path.abspath(workdir) if "://" not in workdir else workdir,
                                  "checkpoints")
    self._writer = create
    self._signals = _StopSignals()
    self._failed = None  # the CheckpointError of a failed async save, once raised
    if create:
      self._clean_interrupted_saves()
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=create,
                                           enable_async_checkpointing=True)
    self._manager = ocp.CheckpointManager(self.directory, options=options)
    self._saving = None  # step of the save in flight (for error messages)
    if create:
      self._signals.install()

  # -- reading -----------------------------------------------------------------------------

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def restore(self, abstract_state: Any, step: Optional[int] = None) -> Any:
    """Restores ``step`` (default: latest) into the structure, dtypes and shardings of
    ``abstract_state`` (a pytree of ``jax.ShapeDtypeStruct`` with ``.sharding``)."""
    step = self.latest_step() if step is None else step
    try:
      return self._manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
    except Exception as e:  # Orbax raises many types; turn them into one actionable message.
      if _is_model_mismatch(e):
        detail = str(e).split(". ")[0][:200]
        raise CheckpointError(
            f"checkpoint {self.directory}/{step} holds a different model ({detail}); resume "
            f"with the config it was trained with, or pass a new --workdir") from None
      raise CheckpointError(
          f"could not read checkpoint {self.directory}/{step} ({type(e).__name__}: "
          f"{str(e).splitlines()[0][:200] if str(e) else ''}); it may be damaged") from e

  def restore_or_init(self, abstract_state: Any, init_fn) -> tuple[Any, int]:
    """(state, step) from the newest readable checkpoint, else ``(init_fn(), 0)``.

    Checkpoints that cannot be read (truncated by a crash, disk trouble) are moved aside to
    ``checkpoints_unreadable/`` with a warning, falling back to the one before; if none is
    readable nothing is moved and the error is raised. A checkpoint of a different model
    raises at once: that is the wrong workdir, not damage.
    """
    steps = sorted(self.all_steps(), reverse=True)
    unreadable = []
    for step in steps:
      try:
        state = self.restore(abstract_state, step)
      except CheckpointError as e:
        if "holds a different model" in str(e):
          raise
        unreadable.append((step, e))
        continue
      for bad, err in unreadable:
        moved = self._move_aside(bad)
        cause = str(err).split("(", 1)[-1].split(")")[0][:120]
        print(f"warning: checkpoint {self.directory}/{bad} is unreadable ({cause}); moved it to "
              f"{moved}; resuming from step {step}", flush=True)
      logging.info("Resuming from checkpoint %s/%d", self.directory, step)
      return state, step
    if unreadable:
      step, err = unreadable[0]
      raise CheckpointError(f"none of the {len(steps)} checkpoints in {self.directory} can be "
                            f"read (newest: {err}); restore them from a backup or pass a new "
                            f"--workdir") from None
    return init_fn(), 0

  # -- writing -----------------------------------------------------------------------------

  def save(self, step: int, state: Any, force: bool = False) -> bool:
    """Starts an async save of ``state`` at ``step``; returns whether a save started. Raises
    ``CheckpointError`` if an earlier async save failed."""
    self.check()
    try:
      started = self._manager.save(step, args=ocp.args.StandardSave(state), force=force)
    except Exception as e:  # the previous save's failure surfaces here, or this one's setup
      raise self._save_error(self._saving if self._saving is not None else step, e) from None
    if started:
      self._saving = step
    return started

  def check(self) -> None:
    """Raises ``CheckpointError`` (one line: cause, fix, last good step) at the first sign
    that an async save failed; cheap enough to call every step."""
    if self._failed is not None:
      raise self._failed
    try:
      self._manager.check_for_errors()
    except Exception as e:
      raise self._save_error(self._saving, e) from None

  def _save_error(self, step, e: BaseException) -> CheckpointError:
    cause, fix = _describe_os_error(e)
    self._manager.reload()
    good = [s for s in self.all_steps() if s != step]
    last = (f"The last good checkpoint is {self.directory}/{max(good)}; rerun to resume from it"
            if good else "There is no earlier checkpoint")
    self._failed = CheckpointError(f"checkpoint {step} could not be written to {self.directory}: "
                                   f"{cause}; {fix}. {last}")
    return self._failed

  def reached_preemption(self, step: int) -> bool:
    """True once this job was asked to stop (SIGTERM or Ctrl-C; on several processes, JAX's
    preemption sync); every process agrees on the step."""
    if jax.process_count() > 1:
      return self._manager.reached_preemption(step)
    return self._signals.received is not None

  def wait(self) -> None:
    """Blocks until the save in flight is on disk; raises ``CheckpointError`` if it failed."""
    try:
      self._manager.wait_until_finished()
      self._manager.check_for_errors()
    except Exception as e:
      raise self._save_error(self._saving, e) from None

  def close(self) -> None:
    """Waits for the save in flight (raising ``CheckpointError`` if it failed) and restores
    the signal handlers."""
    self._signals.uninstall()
    try:
      if self._failed is None:
        self.wait()
    finally:
      try:
        self._manager.close()
      except Exception:  # a failed save already reported; closing must not hide that message
        logging.exception("closing the checkpoint manager")

  # -- repairs -----------------------------------------------------------------------------

  def _clean_interrupted_saves(self) -> None:
    """Removes ``<step>.orbax-checkpoint-tmp*`` left by a save that was cut off, saying so.
    Process 0 removes; every process then meets at one barrier (unconditionally: the others
    may list the directory after the removal and see nothing)."""
    if jax.process_index() == 0 and storage.isdir(self.directory):
      for name in [n for n in storage.listdir(self.directory) if _TMP in n]:
        path = os.path.join(self.directory, name)
        print(f"warning: the save of checkpoint {name.split('.')[0]} was interrupted; removed "
              f"its unfinished files {path}", flush=True)
        storage.rmtree(path)
    _barrier("genai_jax_clean_interrupted_saves")

  def _move_aside(self, step: int) -> str:
    """Renames an unreadable checkpoint out of Orbax's sight (so a later save of that step
    works) into ``<workdir>/checkpoints_unreadable/<step>-<time>``; returns the new path."""
    src = os.path.join(self.directory, str(step))
    dst_root = self.directory.rstrip("/") + "_unreadable"
    dst = os.path.join(dst_root, f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
    if jax.process_index() == 0:
      if "://" in src:  # object stores have no directory rename: copy, then delete
        for root, _, files in storage.walk(src):
          rel = os.path.relpath(root, src)
          storage.makedirs(os.path.join(dst, rel))
          for f in files:
            storage.copy(os.path.join(root, f), os.path.join(dst, rel, f))
        storage.rmtree(src)
      else:
        os.makedirs(dst_root, exist_ok=True)
        shutil.move(src, dst)
    _barrier("genai_jax_move_aside")
    self._manager.reload()
    return dst


def _barrier(name: str) -> None:
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)
