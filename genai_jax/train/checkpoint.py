"""The one place that talks to Orbax (its API changes often): save, keep-N, auto-resume.

Checkpoints live in ``<workdir>/checkpoints/<step>``; each holds the whole train state pytree
(params, optimiser states, batch stats, step, rng), saved asynchronously.
"""

import os
import signal
import threading
from typing import Any, Optional

from absl import logging
import jax
import orbax.checkpoint as ocp

from genai_jax.errors import CheckpointError


class _SigtermFlag:
  """Records SIGTERM (what spot VMs and schedulers send before killing) instead of dying."""

  def __init__(self):
    self.received = False
    self._installed = False

  def install(self) -> None:
    if self._installed or threading.current_thread() is not threading.main_thread():
      return
    def handler(signum, frame):
      del signum, frame
      self.received = True
    signal.signal(signal.SIGTERM, handler)
    self._installed = True


_sigterm = _SigtermFlag()


class Checkpoints:
  """Async Orbax checkpoints of a state pytree, keeping the newest ``keep``."""

  def __init__(self, workdir: str, keep: int = 3, create: bool = True):
    self.directory = os.path.join(os.path.abspath(workdir) if "://" not in workdir else workdir,
                                  "checkpoints")
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=create,
                                           enable_async_checkpointing=True)
    self._manager = ocp.CheckpointManager(self.directory, options=options)
    if create:  # a training run; readers (eval, sampling) keep the default signal handling
      _sigterm.install()

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, state: Any, force: bool = False) -> bool:
    """Starts an async save of ``state`` at ``step``; returns whether a save started."""
    return self._manager.save(step, args=ocp.args.StandardSave(state), force=force)

  def restore(self, abstract_state: Any, step: Optional[int] = None) -> Any:
    """Restores ``step`` (default: latest) into the structure, dtypes and shardings of
    ``abstract_state`` (a pytree of ``jax.ShapeDtypeStruct`` with ``.sharding``)."""
    step = self.latest_step() if step is None else step
    try:
      return self._manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
    except Exception as e:  # Orbax raises many types; turn them into one actionable message.
      raise CheckpointError(
          f"could not restore checkpoint {step} from {self.directory} ({type(e).__name__}: {e}). "
          f"If it was written by a different config, use a new --workdir; if it is corrupt, "
          f"delete {self.directory}/{step}") from e

  def restore_or_init(self, abstract_state: Any, init_fn) -> tuple[Any, int]:
    """(state, step) from the newest readable checkpoint, else ``(init_fn(), 0)``.

    A checkpoint that fails to restore (e.g. truncated by a crash in an older Orbax or by disk
    trouble) is skipped with a warning, falling back to the one before it.
    """
    steps = sorted(self.all_steps(), reverse=True)
    for i, step in enumerate(steps):
      try:
        state = self.restore(abstract_state, step)
      except CheckpointError as e:
        if i + 1 == len(steps):
          raise
        logging.warning("Checkpoint %d is unreadable, falling back to %d: %s", step, steps[i + 1], e)
        print(f"warning: checkpoint {self.directory}/{step} is unreadable; "
              f"falling back to step {steps[i + 1]}", flush=True)
        continue
      logging.info("Resuming from checkpoint %s/%d", self.directory, step)
      return state, step
    return init_fn(), 0

  def reached_preemption(self, step: int) -> bool:
    """True once this job was asked to stop (SIGTERM, or the cluster's preemption notice on
    every host); all processes agree on the step."""
    if jax.process_count() > 1:
      return self._manager.reached_preemption(step)
    return _sigterm.received

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()

