"""The GAN training switches: WGAN-GP, lazy R1, TTUR, n_dis, EMA, labels, conditional plumbing."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genai_jax import samples, tasks
from genai_jax.errors import ConfigError
from genai_jax.models import registry
from genai_jax.objectives import gan as gan_losses
from genai_jax.tasks import gan as gan_task
from tests.helpers import run_steps, tiny_gan_config


def _batch(config, seed=0, labels=False):
  rng = np.random.default_rng(seed)
  s, c = config.model.image_size, config.model.channels
  out = {"image": rng.uniform(-1, 1, (config.batch_size, s, s, c)).astype(np.float32)}
  if labels:
    out["label"] = rng.integers(0, 10, config.batch_size).astype(np.int32)
  return out


def test_gradient_penalty_of_a_linear_critic_is_exact():
  w = jax.random.normal(jax.random.PRNGKey(0), (4, 4, 2))
  critic = lambda x: jnp.einsum("bhwc,hwc->b", x, w)
  real, fake = jnp.ones((8, 4, 4, 2)), -jnp.ones((8, 4, 4, 2))
  gp = gan_losses.gradient_penalty(critic, real, fake, jax.random.PRNGKey(1), 10.0)
  np.testing.assert_allclose(gp, 10.0 * (jnp.linalg.norm(w) - 1) ** 2, rtol=1e-5)


def test_r1_of_a_quadratic_critic_is_exact():
  a = 3.0
  critic = lambda x: 0.5 * a * (x ** 2).sum((1, 2, 3))  # grad = a x
  x = jax.random.normal(jax.random.PRNGKey(0), (6, 3, 3, 1))
  r1 = gan_losses.r1_penalty(critic, x, 4.0)
  np.testing.assert_allclose(r1, 0.5 * 4.0 * (a ** 2 * (x ** 2).sum((1, 2, 3))).mean(), rtol=1e-5)


def test_wgan_loss_and_unknown_loss():
  loss = gan_losses.get("wgan_gp")
  np.testing.assert_allclose(loss.d_loss(jnp.array([1.0, 3.0]), jnp.array([0.5, 0.5])), 0.5 - 2.0)
  np.testing.assert_allclose(loss.g_loss(jnp.array([0.5, 1.5])), -1.0)
  with pytest.raises(ConfigError, match="objective.loss"):
    gan_losses.get("wgan")


def test_ttur_blocks_override_the_shared_optimizer_key_by_key():
  c = tiny_gan_config(**{"optimizer.d.learning_rate": 4e-4, "optimizer.d.b1": 0.0,
                         "optimizer.g.b2": 0.9})
  assert gan_task.optimizer_settings(c.optimizer, "d") == {"learning_rate": 4e-4, "b1": 0.0, "b2": 0.999}
  assert gan_task.optimizer_settings(c.optimizer, "g") == {"learning_rate": 2e-4, "b1": 0.5, "b2": 0.9}


def test_config_errors_name_the_fix():
  for overrides, match in [({"n_dis": 3}, "batch_size"), ({"ema.decay": 1.0}, "ema.decay"),
                           ({"augment.policy": "flip"}, "augment.policy"),
                           ({"model.num_classes": 10}, "data.labels")]:
    with pytest.raises(ConfigError, match=match):
      tasks.get_task(tiny_gan_config(**overrides))


@pytest.mark.slow
def test_n_dis_steps_d_n_times_per_g_step_and_lazy_r1_every_third_d_step():
  config = tiny_gan_config(n_dis=2, **{"objective.r1_weight": 1.0, "objective.r1_every": 3,
                                       "objective.loss": "hinge"})
  _, state, history = run_steps(config, jax.devices()[:2], 2, _batch(config))
  count = lambda opt_state: int(next(s.count for s in jax.tree.leaves(
      opt_state, is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState))
      if isinstance(s, optax.ScaleByAdamState)))
  assert int(state.step) == 2 and count(state.g_opt_state) == 2 and count(state.d_opt_state) == 4
  # The metrics are the last D step's: D step 1 (no R1: 1 % 3), then D step 3 (R1: 3 % 3 == 0).
  assert float(history[0]["r1"]) == 0.0 and float(history[1]["r1"]) > 0.0


@pytest.mark.slow
def test_wgan_gp_trains_and_reports_the_penalty():
  config = tiny_gan_config(**{"objective.loss": "wgan_gp", "augment.policy": "translation,cutout,color"})
  _, state, history = run_steps(config, jax.devices()[:1], 2, _batch(config))
  assert all(np.isfinite(float(m["gp"])) and float(m["gp"]) > 0 for m in history)


@pytest.mark.slow
def test_ema_matches_a_hand_loop_and_sampling_uses_it():
  decay, start = 0.9, 2
  config = tiny_gan_config(**{"ema.decay": decay, "ema.start_step": start})
  task = tasks.get_task(config)
  state = task.init(jax.random.PRNGKey(0))
  step = jax.jit(task.train_step)
  batch = _batch(config)
  ema = None
  for t in range(4):
    state, _ = step(state, batch)
    p = state.g_params
    ema = p if t < start else jax.tree.map(lambda e, q: decay * e + (1 - decay) * q, ema, p)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), state.g_ema, ema)
  assert not np.allclose(jax.tree.leaves(state.g_ema)[0], jax.tree.leaves(state.g_params)[0])
  grid = task.sample(state, None)["samples"].images
  # Sampling reads the EMA weights, not the raw ones.
  garbled = jax.tree.map(lambda x: x + 1.0, state.g_params)
  np.testing.assert_allclose(task.sample(state.replace(g_params=garbled), None)["samples"].images, grid)
  assert not np.allclose(task.sample(state.replace(g_ema=garbled), None)["samples"].images, grid)
  gen = task.generate(state, jax.random.PRNGKey(1), 4).images
  np.testing.assert_allclose(task.generate(state.replace(g_params=garbled), jax.random.PRNGKey(1), 4).images, gen)


class _CondG(nn.Module):
  """A tiny conditional G: label embedding added to z (for the plumbing test only)."""
  size: int
  num_classes: int

  @nn.compact
  def __call__(self, z, y=None, *, train):
    h = z + nn.Embed(self.num_classes, z.shape[-1])(y)
    return jnp.tanh(nn.Dense(self.size * self.size)(h)).reshape(-1, self.size, self.size, 1)


class _CondD(nn.Module):
  num_classes: int

  @nn.compact
  def __call__(self, x, y=None, *, train):
    h = nn.Dense(8)(x.reshape(x.shape[0], -1))
    return nn.Dense(1)(h)[:, 0] + (h * nn.Embed(self.num_classes, 8)(y)).sum(-1)  # projection


def test_conditional_plumbing_labels_reach_g_and_d_and_grid_rows_are_classes(monkeypatch):
  seen = []
  monkeypatch.setitem(gan_task.MODELS, "cond_test", registry.Entry(
      lambda s: (_CondG(s["image_size"], s["num_classes"]), _CondD(s["num_classes"])),
      {"num_classes": 0}))
  config = tiny_gan_config(**{"model.name": "cond_test", "model.num_classes": 10,
                              "data.labels": True, "num_samples": 100})
  config.model.width = None
  task = tasks.get_task(config)
  state = task.init(jax.random.PRNGKey(0))
  state, metrics = jax.jit(task.train_step)(state, _batch(config, labels=True))
  assert np.isfinite(float(metrics["d_loss"]))
  labels = np.asarray(gan_task.fixed_labels(100, 10))
  assert samples.grid_cols(100) == 10
  np.testing.assert_array_equal(labels.reshape(10, 10), np.repeat(np.arange(10), 10).reshape(10, 10))
  # The grid is G(fixed z, fixed labels): changing only a row's label changes only that row.
  grid = np.asarray(task.sample(state, None)["samples"].images)
  g = gan_task.make_models(config)[0]
  fixed_z = jax.random.normal(jax.random.PRNGKey(config.seed + 1), (100, config.model.z_dim))
  direct = g.apply({"params": state.g_params}, fixed_z, y=jnp.asarray(labels), train=False)
  np.testing.assert_allclose(grid, direct, atol=1e-6)
  assert task.discriminate is None  # dacc cannot label held-out images
  del seen
