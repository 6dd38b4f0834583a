"""The GAN recipe presets: tfds mock data feeds their exact networks; the demos' wiring."""

from unittest import mock

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments.configs import dcgan_celeba
from genai_jax import tasks
from genai_jax.data import pipelines, specs
from genai_jax.eval import runner
from genai_jax.tasks import gan as gan_task

# The sngan_resnet model comes from the architecture branch (ganarch); without it these skip.
needs_sngan = pytest.mark.skipif("sngan_resnet" not in gan_task.MODELS,
                                 reason="needs the ganarch models (sngan_resnet; dcgan spectral_norm)")


@needs_sngan
@pytest.mark.parametrize("preset", ["sngan_cifar10", "sngan_celeba64", "biggan_cifar10_cond"])
def test_tfds_presets_read_their_dataset_and_trace_a_step(tfds_dir, preset):
  """Mock records of the preset's tfds dataset through its pipeline (labels included), and the
  exact network's train step traced on the preset's global batch (not compiled: too big)."""
  config = dcgan_celeba.get_config(preset)
  assert config.data.name == ("celeb_a" if preset == "sngan_celeba64" else "cifar10")
  g = config.eval_gen
  assert (g.every, g.num_samples, g.num_samples_at_end, g.real_split) == (5_000, 10_000, 50_000, "train")
  assert config.batch_size == config.n_dis * 64  # a fresh 64-image real batch per D step
  with tfds.testing.mock_data(num_examples=16), \
       mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", return_value=True):
    batch = next(pipelines.image_batches(config.data, config.data.train_split, 8, train=True, seed=0))
  spec = specs.batch_spec(config.data, 8)
  assert {k: (v.shape, v.dtype) for k, v in batch.items()} == {k: (v.shape, v.dtype) for k, v in spec.items()}
  if config.model.num_classes:
    assert batch["label"].min() >= 0 and batch["label"].max() < config.model.num_classes
  task = tasks.get_task(config)
  state = jax.eval_shape(task.init, jax.random.PRNGKey(0))
  new_state, metrics = jax.eval_shape(task.train_step, state,
                                      specs.batch_spec(config.data, config.batch_size))
  assert all(m.shape == () for m in jax.tree.leaves(metrics))
  assert jax.tree.structure(new_state) == jax.tree.structure(state)
  grid = jax.eval_shape(task.sample, state, None)["samples"].images
  assert grid.shape == (config.num_samples, config.model.image_size, config.model.image_size, 3)


@needs_sngan
@pytest.mark.parametrize("preset", ["cond_digits_demo", "demo_fewshot"])
def test_demo_presets_build_and_trace(preset):
  config = dcgan_celeba.get_config(preset)
  task = tasks.get_task(config)
  state = jax.eval_shape(task.init, jax.random.PRNGKey(0))
  _, metrics = jax.eval_shape(task.train_step, state, specs.batch_spec(config.data, config.batch_size))
  assert "d_loss" in metrics
  if preset == "cond_digits_demo":
    labels = np.asarray(gan_task.fixed_labels(config.num_samples, config.model.num_classes))
    np.testing.assert_array_equal(labels.reshape(10, 10)[:, 0], np.arange(10))  # row r: class r
    assert (labels.reshape(10, 10) == np.arange(10)[:, None]).all()


def test_the_last_evaluation_uses_num_samples_at_end(monkeypatch):
  from tests.helpers import tiny_gan_config
  config = tiny_gan_config(**{"eval_gen.num_samples": 10, "eval_gen.num_samples_at_end": 30})
  built = []

  def fake_make_evaluator(config, mesh=None, task=None, **overrides):
    n = overrides.get("num_samples") or config.eval_gen.num_samples
    built.append(n)
    return lambda state, seed: {"n": float(n)}
  monkeypatch.setattr(runner, "make_evaluator", fake_make_evaluator)
  monkeypatch.setattr(runner, "_LOOP_EVALUATORS", {})
  assert runner.evaluate_in_loop(config, None, None, 3) == {"n": 10.0}
  assert runner.evaluate_in_loop(config, None, None, config.num_steps) == {"n": 30.0}
  assert runner.evaluate_in_loop(config, None, None, 3) == {"n": 10.0} and built == [10, 30]
