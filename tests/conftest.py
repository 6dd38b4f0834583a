"""Tests run on CPU with 8 fake devices, so sharded code paths are exercised everywhere."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["JAX_PLATFORMS"] = "cpu"

from genai_jax import cli  # noqa: E402

cli.quiet_native_imports()  # as every CLI does: no native start-up lines when JAX/TF load

from genai_jax import host_memory  # noqa: E402

host_memory.configure_for_cpu()  # as every CPU run does (genai_jax/cli.py); before any computation

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8)

import pytest  # noqa: E402

from tests.helpers import tiny_gan_config  # noqa: E402,F401  (re-exported for tests)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
  """A private TFDS data dir where the embedded datasets get prepared (once per session)."""
  path = str(tmp_path_factory.mktemp("tfds"))
  os.environ["TFDS_DATA_DIR"] = path
  return path
