"""The GAN train step: it learns, and sharding it over 8 devices does not change the numbers."""

import chex
import jax
import numpy as np
import pytest

from genai_jax import tasks
from genai_jax.train import sharding
from genai_jax.train import state as state_lib
from tests.helpers import run_steps, tiny_gan_config


def _fixed_batch(config, seed=0):
  rng = np.random.default_rng(seed)
  s, c = config.model.image_size, config.model.channels
  # Smooth "images" in [-1, 1]: real data D can learn to separate from G's noise.
  base = np.sin(np.linspace(0, 3, s))[:, None] * np.cos(np.linspace(0, 2, s))[None, :]
  images = base[None, :, :, None] + 0.1 * rng.normal(size=(config.batch_size, s, s, c))
  return {"image": np.clip(images, -1, 1).astype(np.float32)}


def _run(config, devices, steps, batch):
  _, state, history = run_steps(config, devices, steps, batch)
  return jax.device_get(state), history


@pytest.mark.slow
def test_train_steps_lower_d_loss_on_a_fixed_batch():
  config = tiny_gan_config()
  batch = _fixed_batch(config)
  _, history = _run(config, jax.devices()[:1], 8, batch)
  d_losses = [float(m["d_loss"]) for m in history]
  # Each step's d_loss is measured before that step's update, so it reflects the previous steps.
  assert all(b < a for a, b in zip(d_losses, d_losses[1:])), d_losses
  assert d_losses[-1] < 0.9 * d_losses[0], d_losses
  assert float(history[-1]["d_real"]) > float(history[0]["d_real"])


@pytest.mark.slow
def test_step_sharded_over_8_devices_equals_1_device():
  config = tiny_gan_config()
  assert len(jax.devices()) == 8
  batch = _fixed_batch(config, seed=1)
  state1, hist1 = _run(config, jax.devices()[:1], 3, batch)
  state8, hist8 = _run(config, jax.devices(), 3, batch)
  # BatchNorm statistics are over the global batch, so the runs agree up to float reordering.
  chex.assert_trees_all_close(hist8, hist1, atol=1e-5, rtol=1e-4)
  chex.assert_trees_all_close(state8.g_params, state1.g_params, atol=1e-5, rtol=1e-4)
  chex.assert_trees_all_close(state8.d_batch_stats, state1.d_batch_stats, atol=1e-5, rtol=1e-4)
  assert int(state8.step) == 3


@pytest.mark.slow
def test_fsdp_layout_shards_params_and_matches():
  config = tiny_gan_config()
  batch = _fixed_batch(config, seed=2)
  mesh = sharding.make_mesh(data=2, fsdp=4)
  task = tasks.get_task(config)
  spec = state_lib.sharded_init(task, mesh)
  state = spec.init(jax.random.PRNGKey(0))
  kernel = state.d_params["down1"]["kernel"]  # [4, 4, 8, 16]: the 16 output channels split 4 ways
  assert kernel.sharding.spec == jax.sharding.PartitionSpec(None, None, None, "fsdp")
  state, metrics = state_lib.compile_train_step(task, mesh, spec.shardings)(state, sharding.global_batch(batch, mesh))
  _, hist1 = _run(config, jax.devices()[:1], 1, batch)
  chex.assert_trees_all_close(jax.device_get(metrics), hist1[0], atol=1e-5, rtol=1e-4)
