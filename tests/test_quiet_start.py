"""A first run prints no start-up alarms: the native libraries' log lines are dropped, nothing else."""

import os
import subprocess
import sys

import pytest

from genai_jax import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALARMS = ("Unable to load CUDA", "Traceback", "RuntimeError", "cudart_stub", "InitializeLog",
          "oneDNN", "TPU_WORKER_HOSTNAMES", "plugin configuration error")


def test_only_the_native_start_up_lines_are_dropped(capfd):
  noise = (b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
           b"I0000 00:00:1796426922.523854   18261 cudart_stub.cc:31] Could not find cuda drivers "
           b"on your machine, GPU will not be used.\n"
           b"I0000 00:00:1796427011.386381   20790 port.cc:153] oneDNN custom operations are on. "
           b"You may see slightly different numerical results.\n")
  with cli.native_noise_dropped():
    os.write(2, b"E0000 a real native error\n" + noise + b"a warning\n")
  with pytest.raises(ValueError):  # what the block raises passes through, its output kept
    with cli.native_noise_dropped():
      os.write(2, noise + b"last words\n")
      raise ValueError("failed")
  assert capfd.readouterr().err == "E0000 a real native error\na warning\nlast words\n"


@pytest.mark.parametrize("argv,verbose", [
    ([], False), (["--verbosity=1"], True), (["--verbosity", "2"], True), (["-v=0"], False),
    (["--config.verbosity=1"], False), (["-v", "tests/"], False)])
def test_verbosity_one_asks_for_the_library_logs(argv, verbose, monkeypatch):
  monkeypatch.delenv("GENAI_JAX_TRACEBACK", raising=False)
  assert cli.verbose_requested(argv) is verbose


@pytest.mark.slow
def test_a_cli_start_up_loads_jax_and_tensorflow_without_alarms():
  """As an entry point starts in a fresh shell (no JAX_PLATFORMS): JAX with its first backend,
  then TensorFlow (which preparing a dataset loads)."""
  env = {k: v for k, v in os.environ.items() if k not in ("JAX_PLATFORMS", "TF_CPP_MIN_LOG_LEVEL")}
  env["PYTHONPATH"] = os.pathsep.join([REPO] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
  code = ("from genai_jax import cli\nimport jax\nprint(jax.devices()[0].platform)\n"
          "import importlib.util\n"
          "if importlib.util.find_spec('tensorflow'):\n  import tensorflow\n")
  run = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=300)
  assert run.returncode == 0, run.stderr
  alarms = [line for line in run.stderr.splitlines() if any(a in line for a in ALARMS)]
  assert not alarms, "\n".join(alarms)
