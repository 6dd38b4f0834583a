"""Start-up of a job of several processes: work done once, and a stop during start-up that ends
every process cleanly.

Every process of a multi-process job (a TPU slice, GPU nodes) runs the same command, and the
first start of a job is long (preparing an embedded dataset, training an evaluation classifier,
compiling). Two things went wrong there before this module:

* Work each process repeated raced on one shared directory: both prepared the same dataset and
  wrote the same cache file under one temporary name. ``leader_first`` runs such work on process
  0 while the others wait (polling in Python, so a signal still reaches them), then on the
  others, which find the result (a shared directory) or make their own (a host-local one).
  ``save_npz`` writes under a name no other process uses, then renames.
* ``jax.distributed.initialize`` replaces SIGTERM's handler with JAX's own, which only posts a
  preemption notice to the coordination service for the training loop to act on at a step
  boundary. Before the first step nothing acted on it: a preempted job went on starting up for
  minutes, and a process that did exit took the others down with it (the coordinator's clients
  abort when it vanishes; a client that leaves waits in JAX's shutdown barrier for the others).
  ``StartupGuard`` watches from launch to the loop's first step for a stop -- a signal to this
  process, JAX's notice or a stop posted by another process -- and ends every process alike: one
  line, a clean disconnect from the coordination service (its shutdown barrier, which every
  process reaches because every process sees the stop), exit 0.
"""

import _thread
import os
import select
import signal
import sys
import tempfile
import threading
import time
from typing import Callable, Optional, TypeVar

T = TypeVar("T")

NOTICE_KEY = "RECEIVED_PREEMPTION_NOTICE"  # posted by JAX's preemption sync manager on SIGTERM
STOP_KEY = "genai_jax/stop_before_first_step"  # posted by a process stopped by a signal
_ONCE_PREFIX = "genai_jax/once/"
_DISCONNECT_TIMEOUT_S = 30.0


def _state():
  """JAX's distributed state (``jax._src.distributed.global_state``) if that module has been
  imported, else None. Never imports: the watcher thread must not import JAX while the main
  thread may be importing it (a concurrent import fails as a circular one)."""
  module = sys.modules.get("jax._src.distributed")
  return getattr(module, "global_state", None)


_connected = False  # set once jax.distributed.initialize has returned (``connected()``)


def connected() -> None:
  """Says ``jax.distributed.initialize`` has connected this process: from here the watcher may
  use the client (any failed call on a client still connecting aborts the process)."""
  global _connected
  _connected = True


def _client():
  """This process's coordination-service client, or None (one process, or not connected yet)."""
  state = _state()
  return state.client if _connected and state is not None else None


def _process() -> tuple[int, int]:
  """(process index, process count) as connected, without initialising JAX's backends."""
  state = _state()
  if _client() is None:
    return 0, 1
  return int(state.process_id), int(state.num_processes)


def _process_from_env() -> tuple[int, int]:
  """(process index, count) as connected, else as the job's environment describes it
  (``JAX_PROCESS_ID``, ``JAX_NUM_PROCESSES``: before ``jax.distributed.initialize``), else (0, 1)."""
  if _client() is not None:
    return _process()
  try:
    return int(os.environ["JAX_PROCESS_ID"]), int(os.environ["JAX_NUM_PROCESSES"])
  except (KeyError, ValueError):
    return 0, 1


def _try_get(client, key: str) -> Optional[str]:
  try:
    return client.key_value_try_get(key)
  except Exception:  # NOT_FOUND (the usual answer), or the service going away
    return None


# -- work done once ----------------------------------------------------------------------------

def leader_first(name: str, fn: Callable[[], T], poll_s: float = 0.2) -> T:
  """``fn()`` on process 0 first; the other processes wait until it has finished, then call
  ``fn()`` themselves, which finds the result in a shared directory or makes its own copy in a
  host-local one. ``fn`` must be idempotent that way (check, else make, writing atomically).

  One process: just ``fn()``. ``name`` identifies the result ("dataset mnist"): process 0 posts
  it as done (or failed) in the coordination service once, and a later call for the same name
  finds it posted; so every process may call this any number of times, but process 0 must call
  it whenever another process may (call it unconditionally, not behind a check of your own). If
  ``fn`` raises on process 0, the others raise a ``UserError`` with its message instead of
  repeating the work.
  """
  index, count = _process()
  if count == 1:
    return fn()
  client = _client()
  key = _ONCE_PREFIX + name
  if index == 0:
    try:
      result = fn()
    except BaseException as e:
      _post(client, key, f"error: {e}" if str(e) else f"error: {type(e).__name__}")
      raise
    _post(client, key, "done")
    return result
  while True:  # short polls: the main thread stays in Python, where signals are handled
    try:
      status = client.blocking_key_value_get(key, int(poll_s * 1000))
      break
    except Exception as e:  # DEADLINE_EXCEEDED: not yet
      if "deadline" not in str(e).lower() and "timed out" not in str(e).lower():
        hold_if_stopping()  # the client is closing because the job is stopping
        raise
  if status.startswith("error: "):
    from genai_jax.errors import UserError
    raise UserError(f"process 0 failed while preparing {name}: {status[len('error: '):]}")
  return fn()


def _post(client, key: str, value: str) -> None:
  try:
    client.key_value_set(key, value)
  except Exception as e:  # posted by an earlier call for the same result
    if "already" not in str(e).lower() and "exists" not in str(e).lower():
      hold_if_stopping()
      raise


def save_npz(path: str, **arrays) -> None:
  """``np.savez(path, **arrays)``, atomically: written under a name private to this process and
  renamed, so no reader (or concurrent writer) ever sees part of a file, and a process stopped
  mid-write leaves only its own temporary file."""
  import numpy as np
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp.npz", dir=directory)
  try:
    with os.fdopen(fd, "wb") as f:
      np.savez(f, **arrays)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


# -- stops during start-up ---------------------------------------------------------------------

class StartupGuard:
  """Ends the process (and, through the coordination service, every process of the job) cleanly
  on SIGTERM or SIGINT from ``install()`` until ``disarm()`` (the loop's first step).

  The signal handlers do nothing themselves: Python writes each signal's number to a wakeup pipe
  at once, even while the main thread is inside a long C++ call (XLA compiling, a dataset being
  written), and a watcher thread acts on it. After ``jax.distributed.initialize``, JAX's own
  SIGTERM handler replaces ours and posts ``NOTICE_KEY``; the watcher polls for it.
  """

  def __init__(self, poll_s: float = 0.5):
    self._poll_s = poll_s
    self._lock = threading.Lock()
    self._armed = False
    self._stopping = False
    self._previous = {}
    self._old_wakeup_fd = -1
    self._pipe = None
    self._thread = None

  def install(self) -> None:
    if self._armed or threading.current_thread() is not threading.main_thread():
      return
    r, w = os.pipe()
    os.set_blocking(w, False)
    self._pipe = (r, w)
    self._old_wakeup_fd = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    for s in (signal.SIGTERM, signal.SIGINT):
      if signal.getsignal(s) != signal.SIG_IGN:  # an ignored signal (nohup, `cmd &`) stays so
        self._previous[s] = signal.signal(s, self._handle)
    self._armed = True
    self._thread = threading.Thread(target=self._watch, name="genai_jax-startup-guard", daemon=True)
    self._thread.start()

  @property
  def armed(self) -> bool:
    return self._armed

  def disarm(self) -> None:
    """Hands stops over to the training loop (main thread only). If a stop is being carried
    out, this waits for it to end the process."""
    with self._lock:
      stopping = self._stopping
      self._armed = False
    if stopping:
      while True:
        time.sleep(1)
    if threading.current_thread() is threading.main_thread() and self._pipe is not None:
      signal.set_wakeup_fd(self._old_wakeup_fd)
      os.close(self._pipe[1])  # ends the watcher's wait
      self._pipe = None

  @property
  def stopping(self) -> bool:
    return self._stopping

  def _handle(self, signum, frame):
    # Start-up: the watcher acts (it read the number from the wakeup pipe). Afterwards, where a
    # later handler did not replace this one, behave as the handler we replaced.
    hold_if_stopping()
    if self._armed:
      return
    previous = self._previous.get(signum)
    if callable(previous):
      previous(signum, frame)
    elif previous == signal.SIG_DFL:
      signal.signal(signum, signal.SIG_DFL)
      os.kill(os.getpid(), signum)

  def _watch(self) -> None:
    r = self._pipe[0]
    try:
      while self._armed:
        ready, _, _ = select.select([r], [], [], self._poll_s)
        if not self._armed:
          return
        if ready:
          data = os.read(r, 64)
          if not data:
            return  # disarmed: the write end was closed
          for signum in data:
            if signum in (signal.SIGTERM, signal.SIGINT):
              self._stop(signal.Signals(signum), local=True)
          continue
        client = _client()
        if client is not None:
          if _try_get(client, NOTICE_KEY) is not None:
            self._stop(signal.SIGTERM, local=False)
          elif (reason := _try_get(client, STOP_KEY)) is not None:
            self._stop(signal.Signals[reason] if reason in signal.Signals.__members__
                       else signal.SIGTERM, local=False)
    finally:
      os.close(r)

  def _stop(self, sig: signal.Signals, local: bool) -> None:
    with self._lock:
      if self._stopping or not self._armed:
        return
      self._stopping = True
    client = _client()
    index, count = _process()
    if local and client is not None:
      try:  # tell the other processes (JAX posts its notice itself for a SIGTERM it caught)
        client.key_value_set(STOP_KEY, sig.name)
      except Exception:
        pass  # another process posted it first
    if count == 1:  # not connected yet: the job's environment may still say which process
      index, count = _process_from_env()
    what = "preempted" if sig == signal.SIGTERM else "interrupted"
    where = f" (process {index} of {count})" if count > 1 else ""
    print(f"{what} before the first step: nothing to save; rerun the same command{where}",
          flush=True)
    # Park the main thread (in the SIGINT handler, at its next bytecode) before the client
    # closes: its calls into JAX would fail and end in a traceback and interpreter teardown.
    _thread.interrupt_main(signal.SIGINT)
    if client is not None:
      time.sleep(0.3)
      self._disconnect()
    sys.stderr.flush()
    os._exit(0)

  def _disconnect(self) -> None:
    """``jax.distributed.shutdown()``: its barrier lets every process leave together, so the
    coordinator (process 0) goes last and no client is left talking to a vanished service. Bounded:
    a process that never arrives (killed) must not keep this one."""
    def shutdown():
      try:
        _state().shutdown()  # what jax.distributed.shutdown() does
      except Exception:
        pass
    t = threading.Thread(target=shutdown, daemon=True)
    t.start()
    t.join(_DISCONNECT_TIMEOUT_S)


_guard: Optional[StartupGuard] = None
MARKERS_ENV = "GENAI_JAX_STARTUP_MARKERS"


def phase(name: str) -> None:
  """Marks the start of a start-up phase ('dataset', 'classifier', 'compile', ...): with
  ``$GENAI_JAX_STARTUP_MARKERS`` set to a directory, creates ``<dir>/<process>.<name>`` there, so
  a test or an operator can act at a known phase instead of after a guessed time."""
  directory = os.environ.get(MARKERS_ENV)
  if directory:
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, f"{_process_from_env()[0]}.{name}"), "w"):
      pass


def guard_startup() -> None:
  """Installs the start-up guard (an entry point's first act, before ``jax.distributed``)."""
  global _guard
  if _guard is None:
    _guard = StartupGuard()
  _guard.install()
  phase("guarded")


def hold_if_stopping() -> None:
  """Blocks for good if the start-up guard is ending the process (called on the main thread,
  whose work is moot then, so that nothing it does races the exit)."""
  if _guard is not None and _guard.stopping:
    while True:
      time.sleep(1)


def starting_up() -> bool:
  """Whether the start-up guard is installed and still in charge of stop signals."""
  return _guard is not None and _guard.armed


def startup_done() -> None:
  """The training loop's first step: stops are the loop's from here (no-op without a guard)."""
  if _guard is not None:
    _guard.disarm()
