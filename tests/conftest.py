"""Tests run on CPU with 8 fake devices, so sharded code paths are exercised everywhere."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8)

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
  """A private TFDS data dir where the embedded datasets get prepared (once per session)."""
  path = str(tmp_path_factory.mktemp("tfds"))
  os.environ["TFDS_DATA_DIR"] = path
  return path


def tiny_gan_config(**overrides):
  """The demo preset shrunk so a train step compiles and runs in about a second."""
  from experiments.configs import dcgan_celeba
  c = dcgan_celeba.get_config("demo")
  c.model.update(width=8, image_size=16)
  c.data.update(image_size=16)
  c.update(batch_size=16, num_steps=6, log_every=1, eval_every=3, checkpoint_every=3,
           num_samples=16, eval_batches=1)
  for k, v in overrides.items():
    node = c
    *path, last = k.split(".")
    for p in path:
      node = node[p]
    node[last] = v
  return c
