"""A stop (SIGTERM, Ctrl-C) during a two-process job's start-up, at each phase, on empty data and
cache dirs: every process exits 0 within seconds with one line, and the rerun trains.

Each phase is reached by waiting for its marker file (``multihost.phase``), not a guessed time.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO
from tests.test_reliability import _free_port

pytestmark = pytest.mark.slow  # two-process runs stopped at each start-up phase

LINE = "before the first step: nothing to save; rerun the same command"
# The digits demo (MLP GAN, 28x28) with FCD-digits only at the end: its first start prepares the
# embedded digits and trains the evaluation classifier, the two slow phases before compilation.
FLAGS = ["--config=experiments/configs/dcgan_celeba.py:digits_demo", "--config.num_steps=4",
         "--config.eval_every=100000", "--config.log_every=1", "--config.checkpoint_every=100000",
         "--config.eval_gen.metrics=fcd", "--config.eval_gen.num_samples=64"]


def _start(root, env, port, extra=()):
  # Started as from a terminal: an xdist worker ignores SIGINT and its children would inherit
  # that (a caught signal is reset to the default across exec, an ignored one stays ignored).
  previous = signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    return _popen(root, env, port, extra)
  finally:
    signal.signal(signal.SIGINT, previous)


def _popen(root, env, port, extra):
  procs = []
  for i in range(2):
    log = open(os.path.join(root, f"p{i}.log"), "w")
    procs.append(subprocess.Popen(
        [sys.executable, "-m", "experiments.dcgan_celeba", f"--workdir={root}/run", *FLAGS, *extra],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True,
        env={**env, "JAX_COORDINATOR_ADDRESS": f"localhost:{port}", "JAX_NUM_PROCESSES": "2",
             "JAX_PROCESS_ID": str(i)}))
  return procs


def _logs(root):
  out = []
  for i in range(2):
    with open(os.path.join(root, f"p{i}.log")) as f:
      out.append(f.read())
  return out


def _wait_for(path, procs, root, timeout=400):
  deadline = time.time() + timeout
  while not os.path.exists(path):
    if time.time() > deadline or any(p.poll() is not None for p in procs):
      for p in procs:
        p.kill()
      raise AssertionError(f"phase marker {path} never appeared: {[o[-2000:] for o in _logs(root)]}")
    time.sleep(0.05)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("startup"))
  env = {**os.environ, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu",
         "TFDS_DATA_DIR": os.path.join(root, "tfds"), "GENAI_JAX_CACHE": os.path.join(root, "cache"),
         "GENAI_JAX_STARTUP_MARKERS": os.path.join(root, "markers")}
  return root, env


# (phase marker "<process>.<phase>", signal, which processes receive it). The order matters: each
# start finds what the earlier ones left (nothing prepared, then a prepared dataset, ...).
SCENARIOS = [
    ("0.guarded", signal.SIGTERM, (0, 1)),     # right after launch (before JAX connects)
    ("0.dataset", signal.SIGTERM, (0, 1)),     # process 0 preparing the dataset, 1 waiting for it
    ("0.classifier", signal.SIGTERM, (1,)),    # one process only: JAX's notice stops the other
    ("1.compile", signal.SIGINT, (0,)),        # Ctrl-C on the coordinator while both compile
]
# Which scenarios skip the generator evaluation: the compile phase comes after the classifier's
# training, which the classifier scenario cut off; without evaluation it is reached at once and the
# classifier is trained once, by the rerun.
NO_EVAL = {"1.compile": ["--config.eval_gen.at_end=False"]}


def test_a_stop_at_each_start_up_phase_ends_both_processes_then_the_rerun_trains(job):
  root, env = job
  transcript = []
  for marker, sig, targets in SCENARIOS:
    markers = env["GENAI_JAX_STARTUP_MARKERS"]
    for f in os.listdir(markers) if os.path.isdir(markers) else ():
      os.remove(os.path.join(markers, f))
    procs = _start(root, env, _free_port(), NO_EVAL.get(marker, ()))
    for m in ("0.guarded", "1.guarded", marker):  # a process not yet guarded dies by the signal
      _wait_for(os.path.join(markers, m), procs, root)
    t0 = time.time()
    for i in targets:
      procs[i].send_signal(sig)
    for p in procs:
      try:
        p.wait(timeout=60)
      except subprocess.TimeoutExpired:
        for q in procs:
          q.kill()
        raise AssertionError(f"{marker}: a process was still running 60 s after {sig.name}: "
                             f"{[o[-2000:] for o in _logs(root)]}")
    elapsed = time.time() - t0
    outs = _logs(root)
    last = [[ln for ln in o.splitlines() if ln.strip()][-1] for o in outs]
    transcript.append((marker, sig.name, targets, round(elapsed, 1), [p.returncode for p in procs],
                       last))
    for i, (p, out) in enumerate(zip(procs, outs)):
      assert p.returncode == 0, (marker, i, out[-3000:])
      assert LINE in last[i] and f"(process {i} of 2)" in last[i], (marker, i, out[-3000:])
      assert "Traceback" not in out and "Fatal" not in out, (marker, i, out[-3000:])
    # Nothing half-made is left where the next start looks.
    assert not os.path.exists(os.path.join(root, "run", "checkpoints", "0"))
    cache = env["GENAI_JAX_CACHE"]
    assert not [f for f in os.listdir(cache) if f.endswith(".tmp.npz")] if os.path.isdir(cache) else True
  print("\n".join(map(str, transcript)))  # pytest -s shows the transcript for the issue note

  # The rerun of the same command trains to the end (and evaluates, with the cached classifier).
  procs = _start(root, env, _free_port())
  for p in procs:
    p.wait(timeout=400)
  outs = _logs(root)
  for i, (p, out) in enumerate(zip(procs, outs)):
    assert p.returncode == 0, (i, out[-3000:])
  assert "step 4/4" in outs[0] and "eval_gen step 4 | fcd_digits" in outs[0], outs[0][-3000:]
  assert "done: 4 steps" in outs[0], outs[0][-3000:]
  assert "incomplete." not in " ".join(os.listdir(os.path.join(env["TFDS_DATA_DIR"], "sklearn_digits")))
