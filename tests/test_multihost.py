"""``genai_jax.multihost`` in one process: work done once (with a fake coordination service) and
the start-up guard's response to a stop signal."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from genai_jax import multihost
from genai_jax.errors import UserError
from tests.conftest import REPO


class FakeClient:
  """The key-value calls of JAX's coordination-service client, on a dict."""

  def __init__(self, kv=None, later=None, polls=0):
    self.kv = dict(kv or {})
    self.later, self.polls = dict(later or {}), polls  # ``later`` appears after ``polls`` polls

  def key_value_set(self, key, value):
    if key in self.kv:
      raise RuntimeError(f"ALREADY_EXISTS: {key}")
    self.kv[key] = value

  def blocking_key_value_get(self, key, timeout_ms):
    self.polls -= 1
    if self.polls < 0:
      self.kv.update(self.later)
    if key not in self.kv:
      time.sleep(timeout_ms / 1000)
      raise RuntimeError("DEADLINE_EXCEEDED: timed out")
    return self.kv[key]


@pytest.fixture
def as_process(monkeypatch):
  """``use(index, client)``: this process plays process ``index`` of 2."""
  def use(index, client):
    monkeypatch.setattr(multihost, "_client", lambda: client)
    monkeypatch.setattr(multihost, "_process", lambda: (index, 2))
  return use


KEY = multihost._ONCE_PREFIX + "dataset d"


def test_process_0_does_the_work_and_says_so(as_process):
  client = FakeClient()
  as_process(0, client)
  assert multihost.leader_first("dataset d", lambda: 7) == 7
  assert client.kv == {KEY: "done"}
  assert multihost.leader_first("dataset d", lambda: 9) == 9  # again: posted once, no error


def test_the_others_wait_for_process_0_then_run(as_process):
  ran = []
  client = FakeClient(later={KEY: "done"}, polls=3)
  as_process(1, client)
  assert multihost.leader_first("dataset d", lambda: ran.append(1) or 8, poll_s=0.01) == 8
  assert ran == [1] and client.polls < 0  # it waited (three timed-out polls), then ran


def test_a_failure_on_process_0_reaches_the_others_as_one_line(as_process):
  client = FakeClient()
  as_process(0, client)
  with pytest.raises(ValueError):
    multihost.leader_first("dataset d", lambda: (_ for _ in ()).throw(ValueError("disk full")))
  assert client.kv == {KEY: "error: disk full"}
  as_process(1, client)  # process 1 reads that instead of repeating the work
  with pytest.raises(UserError, match="process 0 failed while preparing dataset d: disk full"):
    multihost.leader_first("dataset d", lambda: pytest.fail("repeated the failed work"))


def test_save_npz_is_atomic_and_leaves_no_temporary_file(tmp_path):
  path = str(tmp_path / "sub" / "stats.npz")
  multihost.save_npz(path, a=np.arange(3))
  with np.load(path) as f:
    np.testing.assert_array_equal(f["a"], np.arange(3))
  assert os.listdir(tmp_path / "sub") == ["stats.npz"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_stop_during_start_up_ends_the_process_at_once_with_one_line(sig):
  # The main thread is busy (here: in a long sleep; in a run: XLA compiling, a dataset being
  # written): the watcher acts on the signal, the process exits 0 with the one line.
  code = ("import os, signal, time\n"
          "signal.signal(signal.SIGINT, signal.default_int_handler)\n"  # as in a fresh Python
          "from genai_jax import multihost\n"
          "multihost.guard_startup()\n"
          f"os.kill(os.getpid(), signal.{sig})\n"
          "time.sleep(60)\n"
          "print('still running')\n")
  t0 = time.time()
  r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                     env={**os.environ, "JAX_PLATFORMS": "cpu"}, timeout=120)
  what = "preempted" if sig == "SIGTERM" else "interrupted"
  assert r.returncode == 0, r.stderr[-2000:]
  assert r.stdout.strip() == f"{what} before the first step: nothing to save; rerun the same command"
  assert time.time() - t0 < 30


@pytest.mark.slow
def test_after_start_up_the_signals_behave_as_before():
  # Disarmed (the loop's first step), SIGINT is a KeyboardInterrupt and SIGTERM ends the process
  # with the default action, as without the guard.
  # (SIGINT's handler set as in a fresh Python: an xdist worker's children inherit SIG_IGN.)
  code = ("import os, signal, time\n"
          "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
          "from genai_jax import multihost\n"
          "multihost.guard_startup(); multihost.startup_done()\n"
          "try:\n"
          "  os.kill(os.getpid(), signal.SIGINT); time.sleep(5)\n"
          "except KeyboardInterrupt:\n"
          "  print('KeyboardInterrupt', flush=True)\n"
          "os.kill(os.getpid(), signal.SIGTERM); time.sleep(5)\n")
  r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                     timeout=60)
  assert r.stdout.strip() == "KeyboardInterrupt", r.stdout + r.stderr[-2000:]
  assert r.returncode == -signal.SIGTERM
