"""launch/: the Cloud TPU and SLURM scripts' --dry-run commands and their input checks.

gcloud is replaced by a stub that records any call: a dry run must never reach it.
"""

import os
import shlex
import subprocess

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # the launch scripts run as subprocesses

NAME, ZONE = "genai-v4", "us-central2-b"
WHERE = [f"--name={NAME}", f"--zone={ZONE}"]
RUN = ["run", *WHERE, "--accelerator-type=v4-32", "experiments.dcgan_celeba",
       "--workdir=gs://bkt/runs/dcgan", "--data-dir=gs://bkt/tfds"]


@pytest.fixture
def sh(tmp_path):
  stub = tmp_path / "gcloud"
  called = tmp_path / "gcloud_called"
  stub.write_text(f"#!/bin/sh\ntouch {called}\nexit 99\n")
  stub.chmod(0o755)
  env = {k: v for k, v in os.environ.items() if not k.startswith(("GENAI_TPU_", "SLURM_"))}
  env.update(GCLOUD=str(stub), TMPDIR=str(tmp_path))

  def run(script, *args):
    p = subprocess.run(["bash", f"launch/{script}", *args], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=30)
    assert not called.exists(), "a --dry-run or a rejected command called gcloud"
    return p
  return run


def _commands(out):
  return [shlex.split(line) for line in out.splitlines() if line and not line.startswith("#")]


def test_create_install_run_logs_stop_delete_dry_run(sh, tmp_path):
  p = sh("tpu.sh", "create", *WHERE, "--accelerator-type=v4-32", "--spot", "--dry-run")
  assert p.returncode == 0, p.stderr
  (create,) = _commands(p.stdout)
  assert create[1:6] == ["compute", "tpus", "tpu-vm", "create", NAME]
  assert {f"--zone={ZONE}", "--accelerator-type=v4-32", "--version=tpu-ubuntu2204-base",
          "--spot"} <= set(create)

  p = sh("tpu.sh", "install", *WHERE, "--dry-run")
  assert p.returncode == 0, p.stderr
  archive, scp, ssh = _commands(p.stdout)
  assert archive[:3] == ["git", "-C", REPO] and archive[-1] == "HEAD"
  assert not list(tmp_path.glob("genai_jax-*.tar.gz"))  # nothing ran
  assert scp[4] == "scp" and "--worker=all" in scp and scp[5] == archive[-2]
  assert ssh[4:6] == ["ssh", NAME] and "--worker=all" in ssh
  remote = next(a for a in ssh if a.startswith("--command="))
  assert "pip install -q -e \".[tpu,gcs]\"" in remote and "python3.11 -m venv .venv" in remote

  p = sh("tpu.sh", *RUN, "--dry-run", "--", "--config.batch_size=256", "--config.model.dtype=bfloat16")
  assert p.returncode == 0, p.stderr
  (ssh,) = _commands(p.stdout)
  assert ssh[4:6] == ["ssh", NAME] and "--worker=all" in ssh
  remote = next(a for a in ssh if a.startswith("--command="))[len("--command="):]
  subprocess.run(["bash", "-n", "-c", remote], check=True)  # the remote script parses
  py = shlex.split(remote.split("setsid nohup ")[1].split(" > ")[0])
  assert py == [".venv/bin/python", "-m", "experiments.dcgan_celeba", "--workdir=gs://bkt/runs/dcgan",
                "--config.batch_size=256", "--config.model.dtype=bfloat16"]
  assert "TFDS_DATA_DIR=gs://bkt/tfds setsid nohup" in remote
  assert "logs/dcgan_celeba.$(hostname).log" in remote

  p = sh("tpu.sh", "logs", *WHERE, "--lines=5", "--dry-run")
  (ssh,) = _commands(p.stdout)
  assert "--worker=all" in ssh and "tail -n 5" in ssh[-1]
  p = sh("tpu.sh", "stop", *WHERE, "experiments.dcgan_celeba", "--dry-run")
  assert "kill -TERM" in _commands(p.stdout)[0][-1]
  p = sh("tpu.sh", "delete", *WHERE, "--dry-run")
  (delete,) = _commands(p.stdout)
  assert delete[4:6] == ["delete", NAME] and f"--zone={ZONE}" in delete and "--quiet" in delete


def test_single_host_allows_a_local_workdir_with_a_warning(sh):
  p = sh("tpu.sh", "run", *WHERE, "--accelerator-type=v6e-8", "experiments.dcgan_celeba",
         "--workdir=/tmp/w", "--dry-run")
  assert p.returncode == 0, p.stderr
  assert "warning: local --workdir" in p.stdout


@pytest.mark.parametrize("args, says", [
    (["run", *WHERE, "--accelerator-type=v5litepod-16", "experiments.dcgan_celeba",
      "--workdir=/tmp/w"], "--workdir=gs://"),
    ([*RUN[:-1], "--data-dir=/data/tfds"], "--data-dir=gs://"),
    (["create", *WHERE, "--accelerator-type=v4_8"], "--accelerator-type="),
    (["create", *WHERE, "--accelerator-type=tpu-8"], "--accelerator-type="),
    (["create", *WHERE], "--accelerator-type="),
    (["create", "--name=Bad_Name", f"--zone={ZONE}", "--accelerator-type=v4-8"], "--name="),
    (["create", f"--name={NAME}", "--zone=uscentral", "--accelerator-type=v4-8"], "--zone="),
    (["run", *WHERE, "--accelerator-type=v4-8", "experiments.nope", "--workdir=gs://b/w"],
     "experiments.dcgan_celeba"),
    (["run", *WHERE, "--accelerator-type=v4-8", "experiments.dcgan_celeba"], "--workdir="),
    ([*RUN, "--", "batch_size=3"], "--config.KEY=VALUE"),
    (["launch", *WHERE], "create install run logs stop delete"),
    (["create", *WHERE, "--acelerator-type=v4-8"], "unknown option"),
])
def test_bad_inputs_fail_with_one_line_naming_the_fix(sh, args, says):
  p = sh("tpu.sh", *args, "--dry-run")
  assert p.returncode == 2, p.stdout + p.stderr
  assert p.stdout == "" and p.stderr.count("\n") == 1 and p.stderr.startswith("error: ")
  assert says in p.stderr, p.stderr


def test_slurm_recipe_dry_run(sh):
  p = sh("slurm_gpu.sbatch", "--dry-run", "experiments.dcgan_celeba", "--workdir=/shared/runs/x")
  assert p.returncode == 0, p.stderr
  assert 'export JAX_NUM_PROCESSES="$SLURM_NTASKS"' in p.stdout
  assert "export JAX_COORDINATOR_ADDRESS=" in p.stdout
  srun = _commands(p.stdout)[-1]
  assert srun[:3] == ["srun", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
  assert 'JAX_PROCESS_ID="$SLURM_PROCID"' in srun[5]
  assert srun[-2:] == ["experiments.dcgan_celeba", "--workdir=/shared/runs/x"]
  p = sh("slurm_gpu.sbatch", "experiments.dcgan_celeba", "--workdir=/shared/runs/x")
  assert p.returncode == 2 and "not inside a SLURM job" in p.stderr
