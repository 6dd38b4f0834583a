"""A real two-process run on localhost (CPU collectives, 4 devices each) against one process."""

import json
import os
import socket
import subprocess
import sys

import pytest

from genai_jax.data import pipelines
from genai_jax.train.loop import train_and_evaluate
from tests.conftest import REPO
from tests.helpers import tiny_gan_config

pytestmark = pytest.mark.slow  # two JAX processes train and cross-restore


def _free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _two_processes(workdir, steps, tfds_dir):
  port = _free_port()
  env = {**os.environ, "TFDS_DATA_DIR": tfds_dir, "PYTHONPATH": REPO}
  procs = [subprocess.Popen([sys.executable, "-m", "tests.multiprocess_worker", str(i), "2",
                             str(port), workdir, str(steps)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for i in range(2)]
  outs = [p.communicate(timeout=400)[0] for p in procs]
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]


def _losses(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  return {r["step"]: (r["d_loss"], r["g_loss"]) for r in rows if r["split"] == "train"}


def _assert_same(got, want, steps):
  for step in steps:
    assert got[step] == pytest.approx(want[step], rel=1e-5, abs=1e-6), step


def test_two_processes_match_one_and_checkpoints_cross_restore(tfds_dir, tmp_path):
  multi, single = str(tmp_path / "multi"), str(tmp_path / "single")
  pipelines.get_builder(tiny_gan_config().data)  # prepare the embedded data once, up front
  _two_processes(multi, 3, tfds_dir)
  train_and_evaluate(tiny_gan_config(num_steps=3), single)  # this process: 8 devices
  _assert_same(_losses(multi), _losses(single), range(1, 4))

  # A checkpoint written by two processes resumes in one...
  train_and_evaluate(tiny_gan_config(num_steps=6), multi)
  # ...and one written by one process resumes in two.
  _two_processes(single, 6, tfds_dir)
  _assert_same(_losses(multi), _losses(single), range(1, 7))
