"""Preemption (SIGTERM) on one and several processes, Ctrl-C, damaged and interrupted
checkpoints, failed saves, and the one-line errors a user's mistakes end in."""

import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time

import pytest

from genai_jax.train.loop import train_and_evaluate
from tests.conftest import REPO
from tests.helpers import TINY_FLAGS, tiny_gan_config, train_rows as _train_rows

def _free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _wait_for_rows(workdir, at_least, procs, timeout=300):
  """Waits until metrics.jsonl has a train row past step ``at_least``."""
  path, deadline = os.path.join(workdir, "metrics.jsonl"), time.time() + timeout
  while time.time() < deadline and all(p.poll() is None for p in procs):
    if os.path.exists(path):
      try:
        if max(_train_rows(workdir), default=0) > at_least:
          return
      except (json.JSONDecodeError, KeyError):
        pass  # a line being written
    time.sleep(0.2)
  outs = [p.communicate(timeout=30)[0] if p.poll() is not None else "(running)" for p in procs]
  raise AssertionError(f"no train row past step {at_least}: {[o[-2000:] for o in outs]}")


def _start_job(workdir, tfds_dir, steps, overrides):
  port, env = _free_port(), {**os.environ, "TFDS_DATA_DIR": tfds_dir, "PYTHONPATH": REPO}
  return [subprocess.Popen([sys.executable, "-m", "tests.multiprocess_worker", str(i), "2",
                            str(port), workdir, str(steps), json.dumps(overrides)], cwd=REPO,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
          for i in range(2)]


def _saved_steps(procs):
  outs = [p.communicate(timeout=180)[0] for p in procs]
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]
  steps = [re.search(r"preempted: checkpoint (\d+) saved", out) for out in outs]
  assert all(steps), [o[-2000:] for o in outs]
  return [int(m.group(1)) for m in steps], outs


@pytest.mark.slow
def test_sigterm_stops_every_process_of_a_two_process_run_at_one_step(tfds_dir, tmp_path):
  from genai_jax.data import pipelines
  pipelines.get_builder(tiny_gan_config().data)  # prepared once, before the workers start
  workdir, overrides = str(tmp_path / "multi"), {"checkpoint_every": 100000}
  # SIGTERM to both processes (a preempted slice, `launch/tpu.sh stop`).
  procs = _start_job(workdir, tfds_dir, 100000, overrides)
  _wait_for_rows(workdir, 2, procs)
  for p in procs:
    p.send_signal(signal.SIGTERM)
  (n, n_other), _ = _saved_steps(procs)
  assert n == n_other >= 3
  # SIGTERM to one process only: JAX's preemption sync stops the other at the same step.
  procs = _start_job(workdir, tfds_dir, 100000, overrides)
  _wait_for_rows(workdir, n + 2, procs)
  procs[1].send_signal(signal.SIGTERM)
  (m, m_other), outs = _saved_steps(procs)
  assert m == m_other > n + 2
  assert f"resumed from {workdir}/checkpoints/{n}" in outs[0]
  rows = _train_rows(workdir)
  assert min(s for s in rows if s > n) == n + 1  # the rerun's first step was N+1
  # The interrupted run reproduces an uninterrupted one, step for step.
  reference = str(tmp_path / "reference")
  train_and_evaluate(tiny_gan_config(num_steps=m, checkpoint_every=100000), reference)
  want = _train_rows(reference)
  for step in range(1, m + 1):
    assert rows[step] == pytest.approx(want[step], rel=1e-5, abs=1e-6), step


def _cli(workdir, tfds_dir, *flags, preexec_fn=None):
  return subprocess.Popen([sys.executable, "-m", "experiments.dcgan_celeba", f"--workdir={workdir}",
                           *TINY_FLAGS, *flags], cwd=REPO, preexec_fn=preexec_fn,
                          env={**os.environ, "JAX_PLATFORMS": "cpu", "TFDS_DATA_DIR": tfds_dir},
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_ctrl_c_saves_once_and_a_second_ctrl_c_quits_at_once(tfds_dir, tmp_path, capsys):
  workdir = str(tmp_path / "w")
  proc = _cli(workdir, tfds_dir, "--config.num_steps=100000", "--config.checkpoint_every=100000")
  _wait_for_rows(workdir, 2, [proc])
  proc.send_signal(signal.SIGINT)
  out = proc.communicate(timeout=120)[0]
  assert proc.returncode == 0 and "preempted: checkpoint" in out, out[-3000:]
  assert "Traceback" not in out and "KeyboardInterrupt" not in out, out[-3000:]
  saved = int(re.search(r"preempted: checkpoint (\d+) saved", out).group(1))
  # It saved the step it stopped at, as the newest checkpoint, and the next run resumes there
  # (in this process: a third CLI start would only add its start-up time).
  steps = sorted(int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit())
  assert steps[-1] == saved == max(_train_rows(workdir)), (steps, saved)
  capsys.readouterr()
  train_and_evaluate(tiny_gan_config(num_steps=saved + 2, eval_every=100000), workdir)
  assert f"resumed from {workdir}/checkpoints/{saved}" in capsys.readouterr().out
  assert max(_train_rows(workdir)) == saved + 2


@pytest.mark.slow
@pytest.mark.parametrize("first", ["SIGINT", "SIGTERM"])
def test_a_second_ctrl_c_quits_at_once(first):
  # The handler of a one-process training run, alone in a process: the first SIGINT or SIGTERM
  # asks for a checkpoint (the Ctrl-C test above runs that to the end through the CLI), a Ctrl-C
  # after it exits with 130 straight away (no waiting for the save).
  code = ("import os, signal, time\n"
          "from genai_jax.train import checkpoint\n"
          "s = checkpoint._StopSignals(); s.install()\n"
          f"os.kill(os.getpid(), signal.{first}); time.sleep(0.5)\n"
          f"assert s.received == {first!r}\n"
          "os.kill(os.getpid(), signal.SIGINT); time.sleep(30)\n")
  t0 = time.time()
  r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                     env={**os.environ, "JAX_PLATFORMS": "cpu"}, timeout=120)
  assert r.returncode == 130 and "interrupted twice" in r.stderr, r.stderr[-2000:]
  assert time.time() - t0 < 25


def _largest_file(directory):
  files = [os.path.join(r, f) for r, _, fs in os.walk(directory) for f in fs]
  return max(files, key=os.path.getsize)


@pytest.mark.slow
def test_damaged_checkpoint_is_moved_aside_and_its_step_saved_again(tfds_dir, tmp_path, capsys):
  ref, run = str(tmp_path / "ref"), str(tmp_path / "run")
  train_and_evaluate(tiny_gan_config(num_steps=8, checkpoint_every=2), ref)
  train_and_evaluate(tiny_gan_config(num_steps=6, checkpoint_every=2), run)  # 2, 4, 6
  first = _train_rows(run)
  # Damage both ways a disk or a killed copy can: the largest file cut short, every other file
  # overwritten with garbage (its metadata included).
  newest = os.path.join(run, "checkpoints", "6")
  largest = _largest_file(newest)
  for root, _, files in os.walk(newest):
    for name in files:
      with open(os.path.join(root, name), "r+b") as f:
        if os.path.join(root, name) == largest:
          f.truncate(16)
        else:
          f.write(b"\x00garbage")
          f.truncate()
  # And a save that was cut off mid-write (Ctrl-C or kill -9 during a save) leaves this:
  os.makedirs(os.path.join(run, "checkpoints", "7.orbax-checkpoint-tmp-1234", "default"))
  capsys.readouterr()
  train_and_evaluate(tiny_gan_config(num_steps=8, checkpoint_every=2), run)
  out = capsys.readouterr().out
  assert re.search(r"the save of checkpoint 7 was interrupted; removed its unfinished files", out)
  assert re.search(r"checkpoint \S+/6 is unreadable .*moved it to \S+/checkpoints_unreadable/6-\d+"
                   r"-\d+; resuming from step 4", out), out
  assert sorted(os.listdir(os.path.join(run, "checkpoints"))) == ["4", "6", "8"]
  assert len(os.listdir(os.path.join(run, "checkpoints_unreadable"))) == 1
  # Steps 5 and 6 were trained again from checkpoint 4: the same numbers as the first time.
  got = _train_rows(run)
  assert sorted(got) == list(range(1, 9))
  for step in (5, 6):
    assert got[step] == pytest.approx(first[step], rel=1e-6, abs=1e-7), step
  want = _train_rows(ref)  # and the whole recovered run matches an undamaged one
  for step in range(1, 9):
    assert got[step] == pytest.approx(want[step], rel=1e-6, abs=1e-7), step
  # Step 6 was written again, so the next run resumes from 8 without a warning.
  train_and_evaluate(tiny_gan_config(num_steps=9, checkpoint_every=2), run)
  out = capsys.readouterr().out
  assert f"resumed from {run}/checkpoints/8" in out and "warning" not in out, out


def _limit_file_size():
  signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
  # The test prepares the dataset beforehand (its ArrayRecord files are 128 kB), and the limit is
  # well below the tiny GAN's largest OCDBT data file (~100-220 kB; how Orbax splits the state
  # across files varies from save to save, so a limit near that size picked the failing save
  # at random).
  resource.setrlimit(resource.RLIMIT_FSIZE, (80_000, 80_000))


@pytest.mark.slow
def test_a_failed_checkpoint_save_stops_the_run_with_one_line(tfds_dir, tmp_path):
  # A file-size limit makes the async checkpoint write fail like a full disk would.
  from genai_jax.data import pipelines
  pipelines.get_builder(tiny_gan_config().data)  # prepared here, without the limit
  workdir = tmp_path / "w"
  proc = _cli(str(workdir), tfds_dir, "--config.num_steps=60",
              "--config.checkpoint_every=5", preexec_fn=_limit_file_size)
  out = proc.communicate(timeout=300)[0]
  assert proc.returncode == 1, out[-3000:]
  assert "Traceback" not in out and "step 60/" not in out, out[-3000:]
  errors = [line for line in out.splitlines() if line.startswith("error:")]
  assert len(errors) == 1 and "file too large" in errors[0], out[-3000:]
  # Whichever save hit the limit, the line must name it and point at the last good one.
  failed = int(re.search(r"checkpoint (\d+) could not be written", errors[0]).group(1))
  assert failed % 5 == 0 and "raise the file-size limit" in errors[0], errors[0]
  saved = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
  if failed == 5:
    assert "There is no earlier checkpoint" in errors[0], errors[0]
  else:
    last_good = workdir / "checkpoints" / str(failed - 5)
    assert f"The last good checkpoint is {last_good};" in errors[0], errors[0]
    assert saved and saved[-1] == failed - 5, (saved, errors[0])
  assert failed not in saved, (saved, errors[0])  # no half-written step left to resume from


def _run_cli(module, *args, env=None):
  t0 = time.time()
  r = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True,
                     text=True, timeout=300,
                     env={**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})})
  return r, time.time() - t0


def _one_error_line(r, *needles):
  lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
  assert r.returncode != 0 and len(lines) == 1, r.stderr[-3000:]
  assert "Traceback" not in r.stderr, r.stderr[-3000:]
  for n in needles:
    assert n in lines[0], lines[0]
  return lines[0]


@pytest.mark.slow
def test_cli_mistakes_end_in_one_line_without_creating_directories(tmp_path):
  typo = tmp_path / "no_such_run"
  r, seconds = _run_cli("genai_jax.eval", f"--workdir={typo}", "--metrics=fcd")
  _one_error_line(r, "no such directory")
  assert seconds < 60 and not typo.exists()  # fails before the digit classifier is trained
  r, _ = _run_cli("genai_jax.eval", f"--workdir={typo}", "--metrics=fcd",
                  "--config=experiments/configs/dcgan_celeba.py:digits_demo")
  _one_error_line(r, "no checkpoints in")
  assert not typo.exists()
  r, _ = _run_cli("genai_jax.sample_lm", f"--workdir={typo}", "--num_tokens=-5",
                  "--config=experiments/configs/gpt_shakespeare.py:demo")
  _one_error_line(r, "--num_tokens=-5 must be positive")
  assert not typo.exists()
  r, _ = _run_cli("experiments.dcgan_celeba", "--config=experiments/configs/dcgan_celeba.py:nope")
  line = _one_error_line(r, "unknown preset 'nope'")
  assert "File " not in line and "line " not in line
  afile = tmp_path / "afile"
  afile.write_text("x")
  r, _ = _run_cli("experiments.dcgan_celeba", *TINY_FLAGS, f"--workdir={afile}")
  _one_error_line(r, "is a file, not a directory")


@pytest.mark.slow
def test_resuming_with_a_different_model_names_the_keys(tfds_dir, tmp_path):
  from genai_jax.errors import ConfigError
  workdir = str(tmp_path / "w")
  train_and_evaluate(tiny_gan_config(num_steps=3), workdir)
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["model"]["width"] == 8
  with pytest.raises(ConfigError, match=r"model.width: 8 -> 16.*pass a new --workdir"):
    train_and_evaluate(tiny_gan_config(num_steps=6, **{"model.width": 16}), workdir)
  # Settings that leave the state's shapes alone may change on resume.
  train_and_evaluate(tiny_gan_config(num_steps=4, **{"optimizer.learning_rate": 1e-4}), workdir)
  assert max(_train_rows(workdir)) == 4


@pytest.mark.slow
def test_a_non_finite_eval_metric_stops_the_run(tfds_dir, tmp_path, monkeypatch):
  import dataclasses
  import jax.numpy as jnp
  from genai_jax import tasks
  from genai_jax.errors import NonFiniteLossError
  make = tasks.get_task
  def diverged(config):  # a model whose held-out loss overflowed while training looked fine
    task = make(config)
    return dataclasses.replace(task, eval_step=lambda state, batch: {"d_loss": jnp.float32(jnp.inf)})
  monkeypatch.setattr(tasks, "get_task", diverged)
  workdir = str(tmp_path / "w")
  with pytest.raises(NonFiniteLossError, match="eval d_loss became inf at step 3"):
    train_and_evaluate(tiny_gan_config(num_steps=6), workdir)
  assert not os.path.isdir(os.path.join(workdir, "checkpoints", "3"))  # the bad state is not saved


def test_a_damaged_record_names_the_file(tfds_dir, tmp_path):
  import shutil
  from genai_jax.data import pipelines
  from genai_jax.errors import DataError
  config = tiny_gan_config()
  src = pipelines.get_builder(config.data).data_dir
  copy = tmp_path / "tfds" / os.path.relpath(src, tfds_dir)
  shutil.copytree(src, copy)
  record = sorted(p for p in os.listdir(copy) if "train.array_record" in p)[0]
  with open(copy / record, "r+b") as f:  # flip bytes inside the first chunk's payload
    f.seek(200)
    f.write(b"\xff" * 16)
  config.data.data_dir = str(tmp_path / "tfds")
  with pytest.raises(DataError, match=rf"is damaged .* in file \S+{record}; delete"):
    for _ in zip(range(12), pipelines.batches(config.data, "train", 16, train=True)):
      pass  # 12 batches of 16 cover an epoch of the 90 faces: the damaged one among them


def test_orbax_failures_logged_by_asyncio_are_dropped_and_others_kept():
  import logging as py_logging
  from genai_jax import cli
  # An exception raised in a file under .../orbax/... like a failed OCDBT write.
  fake = {}
  exec(compile("def write():\n  raise ValueError('OUT_OF_RANGE: File too large')\n",
               "/site-packages/orbax/checkpoint/serialization.py", "exec"), fake)
  try:
    fake["write"]()
  except ValueError:
    exc_info = sys.exc_info()

  def record(msg, exc_info=None, pathname="/usr/lib/python3.11/asyncio/base_events.py"):
    return py_logging.LogRecord("asyncio", py_logging.ERROR, pathname, 1, msg, None, exc_info)

  drop = cli._DropLibraryTracebacks()
  assert not drop.filter(record("_GatheringFuture exception was never retrieved", exc_info))
  assert not drop.filter(record("Task exception was never retrieved\nfuture: <Task coro=<x() "
                                "at /site-packages/orbax/checkpoint/a.py:3>>"))
  assert not drop.filter(record("save failed", pathname="/site-packages/orbax/checkpoint/b.py"))
  try:
    raise ValueError("ours")
  except ValueError:
    ours = sys.exc_info()
  assert drop.filter(record("_GatheringFuture exception was never retrieved", ours))
  assert drop.filter(record("Orbax is only named in a message"))
  warning = record("x", exc_info)
  warning.levelno = py_logging.WARNING
  assert drop.filter(warning)
