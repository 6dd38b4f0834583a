"""Surviving preemption: SIGTERM saves and exits, and the next run resumes there. (Damaged and
half-written checkpoints: tests/test_reliability.py.)"""

import os
import signal
import subprocess
import sys
import time

from genai_jax.train.loop import train_and_evaluate
from tests.conftest import REPO
from tests.helpers import TINY_FLAGS, tiny_gan_config, train_rows as _train_rows

def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tfds_dir, tmp_path):
  workdir = str(tmp_path / "w")
  cmd = [sys.executable, "-m", "experiments.dcgan_celeba", f"--workdir={workdir}", *TINY_FLAGS,
         "--config.num_steps=100000", "--config.checkpoint_every=100000"]
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "TFDS_DATA_DIR": tfds_dir}
  proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  metrics = os.path.join(workdir, "metrics.jsonl")
  deadline = time.time() + 240
  while time.time() < deadline and proc.poll() is None:
    if os.path.exists(metrics) and len(open(metrics).read().splitlines()) >= 3:
      break
    time.sleep(0.5)
  proc.send_signal(signal.SIGTERM)
  out = proc.communicate(timeout=120)[0]
  assert proc.returncode == 0, out[-3000:]
  assert "preempted: checkpoint" in out, out[-3000:]
  saved = [int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit()]
  assert len(saved) == 1 and saved[0] >= 3
  # Resuming continues from the preemption checkpoint.
  result = train_and_evaluate(tiny_gan_config(num_steps=saved[0] + 2, eval_every=100000), workdir)
  assert max(_train_rows(workdir)) == saved[0] + 2 and "d_loss" in result

