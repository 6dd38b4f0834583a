"""The VAE family: exact objectives, bounds that behave, learning, sharding, and the loop end to end."""

import json
import math
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import vae_mnist
from genai_jax import tasks
from genai_jax.data import pipelines
from genai_jax.errors import ConfigError, DatasetMissingError
from genai_jax.models import vae as vae_models
from genai_jax.objectives import vae as vae_obj
from genai_jax.train.loop import train_and_evaluate
from tests.helpers import override, run_steps


def tiny_vae_config(preset="demo", **overrides):
  """The digits demo shrunk so a step compiles in about a second (8 fake devices: batch 16)."""
  c = vae_mnist.get_config(preset)
  c.model.latent_size = 4
  c.objective.update(iw_samples=16, iw_chunk=8)
  c.data.update(shards=8)
  c.update(batch_size=16, num_steps=6, log_every=1, eval_every=3, checkpoint_every=3,
           num_samples=16, eval_batches=1)
  c.eval_gen.update(at_end=False)  # tests opt in to generator metrics
  c = override(c, overrides)
  # Shrink only the chosen model's own keys: a key the model does not read is an error.
  if c.model.name == "conv":
    c.model.update(width=4, dense=16, hidden=None)
  else:
    c.model.hidden = (32,)
  return c


def _digits_batch(n=16, size=8, seed=0):
  """Digit-like images in [-1, 1]: a ring with per-example noise (no dataset needed)."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:size, :size] / (size - 1) - 0.5
  ring = np.exp(-((np.hypot(yy, xx) - 0.3) / 0.1) ** 2)
  images = ring[None, :, :, None] * rng.uniform(0.6, 1.0, (n, 1, 1, 1))
  images = images + 0.1 * rng.uniform(size=(n, size, size, 1))
  return {"image": (np.clip(images, 0, 1) * 2 - 1).astype(np.float32)}


# --- objectives --------------------------------------------------------------------------------

def test_closed_form_kl_matches_monte_carlo():
  mean = jnp.array([[0.0, 0.0, 0.0], [1.5, -0.7, 0.2]])
  logvar = jnp.array([[0.0, 0.0, 0.0], [-1.2, 0.8, -3.0]])
  exact = vae_obj.gaussian_kl(mean, logvar)
  np.testing.assert_allclose(exact[0], 0.0, atol=1e-7)
  z = vae_obj.reparameterize(jax.random.PRNGKey(0), mean, logvar, num_samples=400_000)
  mc = (vae_obj.gaussian_log_density(z, mean, logvar)
        - vae_obj.standard_normal_log_density(z)).mean(axis=0)
  # Hand check of the second row: 0.5 * sum(exp(lv) + m^2 - 1 - lv).
  lv, m = np.array([-1.2, 0.8, -3.0]), np.array([1.5, -0.7, 0.2])
  assert float(exact[1]) == pytest.approx(0.5 * np.sum(np.exp(lv) + m**2 - 1 - lv), rel=1e-6)
  np.testing.assert_allclose(mc, exact, atol=0.01)


def test_bernoulli_log_likelihood_is_stable_and_exact():
  logits = jnp.array([[-100.0, 0.0, 3.0, 100.0]])
  x = jnp.array([[0.0, 1.0, 1.0, 1.0]])
  ll = vae_obj.bernoulli_log_likelihood(logits, x, event_dims=1)
  want = np.log(1 - 1 / (1 + np.exp(100))) + np.log(0.5) + np.log(1 / (1 + np.exp(-3.0))) + 0.0
  assert float(ll[0]) == pytest.approx(want, rel=1e-6)
  assert np.isfinite(vae_obj.bernoulli_log_likelihood(logits, 1 - x, event_dims=1)).all()


def test_iwae_bound_is_below_the_exact_log_likelihood_and_tightens_with_k():
  # Linear-Gaussian model with exact evidence: p(z) = N(0, 1), p(x|z) = N(z, s2), so
  # p(x) = N(0, 1 + s2); q(z|x) = N(0.5 x, 0.5) is off the true posterior N(0.8 x, 0.2).
  s2, x = 0.25, jnp.linspace(-2.0, 2.0, 1024)[:, None]
  exact = float(jnp.mean(-0.5 * (math.log(2 * math.pi * (1 + s2)) + x[:, 0] ** 2 / (1 + s2))))
  mean, logvar = 0.5 * x, jnp.full_like(x, math.log(0.5))
  expected_log_lik = -0.5 * (math.log(2 * math.pi * s2) + ((x[:, 0] - mean[:, 0]) ** 2 + 0.5) / s2)
  elbo = float(jnp.mean(expected_log_lik - vae_obj.gaussian_kl(mean, logvar)))

  def log_lik(z, xx):
    return vae_obj.gaussian_log_likelihood(z, jnp.full_like(z, math.log(s2)), xx, event_dims=1)

  # One draw of k = 1000; the first 1, 10, 100 of its samples are the smaller-k estimators.
  log_w, log_px = jax.jit(lambda key: vae_obj.importance_log_weights(
      key, x, mean, logvar, log_lik, 1000, chunk=250))(jax.random.PRNGKey(0))
  assert log_w.shape == log_px.shape == (1000, 1024)
  bounds = {}
  for k in (1, 10, 100, 1000):
    iw = vae_obj.iwae_bound(log_w[:k])
    assert bool(jnp.all(iw >= log_w[:k].mean(axis=0) - 1e-5))  # Jensen, on the same samples
    bounds[k] = float(iw.mean())
  # Averaged over 1024 examples the Monte Carlo noise is below ~0.002 nats for k >= 10.
  assert bounds[1] == pytest.approx(elbo, abs=0.06)  # k = 1 estimates the ELBO
  assert exact - elbo > 0.5  # the ELBO is loose here
  assert bounds[1] < bounds[10] - 0.3 and bounds[10] < bounds[100] < exact
  assert abs(bounds[1000] - exact) < 0.003  # and the k-sample bound nearly tight


def test_logvar_is_soft_bounded():
  raw = jnp.array([-1e6, -5.0, 0.0, 5.0, 1e6])
  out = vae_models.bound_logvar(raw)
  np.testing.assert_allclose(out[np.array([0, 2, 4])], [-10.0, 0.0, 10.0], atol=1e-6)
  assert abs(float(out[3]) - 5.0) < 0.4  # close to the identity in the working range
  grad = jax.grad(lambda r: vae_models.bound_logvar(r).sum())(raw)
  assert bool(jnp.all(grad[1:4] > 0.7))  # no dead gradient where training happens
  kl = vae_obj.gaussian_kl(jnp.zeros(5), out)
  assert np.isfinite(float(kl))


# --- models and task ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_mlp():
  """A tiny MLP VAE (2-D latent) after 25 steps on a fixed batch: (config, task, state, history)."""
  config = tiny_vae_config(**{"model.latent_size": 2, "objective.iw_samples": 64,
                              "optimizer.learning_rate": 3e-3})
  task, state, history = run_steps(config, jax.devices()[:1], 25, _digits_batch())
  return config, task, state, history


def test_train_steps_lower_the_loss(trained_mlp):
  _, _, state, history = trained_mlp
  losses = [float(m["loss"]) for m in history]
  assert np.mean(losses[-5:]) < 0.85 * losses[0], losses
  assert float(history[0]["loss"]) == pytest.approx(
      float(history[0]["kl"]) + float(history[0]["recon"]), rel=1e-5)
  assert int(state.step) == 25


def test_eval_nll_k_is_at_most_neg_elbo(trained_mlp):
  _, task, state, _ = trained_mlp
  eval_step = jax.jit(task.eval_step)
  m = jax.device_get(eval_step(state, _digits_batch(seed=1)))
  assert m["neg_elbo"] == pytest.approx(m["kl"] + m["recon"], rel=1e-5)
  assert m["kl"] > 0.1  # the posterior moved off the prior, so there is a gap to close
  assert 0 < m["nll_k"] < m["neg_elbo"], m
  m2 = jax.device_get(eval_step(state, _digits_batch(seed=1)))
  assert m2 == m  # deterministic: fixed binarization and importance samples


def _check_sample_sets(sets, manifold, binary=True):
  from genai_jax import samples
  assert all(isinstance(v, samples.Images) for v in sets.values())
  sets = {k: v.images for k, v in sets.items()}
  want = {"samples": (16, 8, 8, 1), "reconstructions": (16, 8, 8, 1),
          "interpolations": (64, 8, 8, 1)}
  if manifold:
    want["manifold"] = (225, 8, 8, 1)
  assert {k: v.shape for k, v in sets.items()} == want
  for images in sets.values():
    assert images.dtype == jnp.float32 and float(images.min()) >= -1 and float(images.max()) <= 1
  # Reconstruction grid (4 columns): rows of inputs alternate with rows of reconstructions.
  rec = np.asarray(sets["reconstructions"]).reshape(2, 2, 4, 8, 8, 1)
  if binary:
    assert set(np.unique(rec[:, 0])) <= {-1.0, 1.0}
  assert len(np.unique(rec[:, 1])) > 2


def test_mlp_shapes_and_sample_sets(trained_mlp):
  config, task, state, _ = trained_mlp
  model = tasks.vae.make_model(config)
  mean, logvar = model.apply({"params": state.params}, jnp.zeros((5, 8, 8, 1)), method="encode")
  assert mean.shape == logvar.shape == (5, 2) and mean.dtype == jnp.float32
  logits = model.apply({"params": state.params}, jnp.zeros((3, 5, 2)), method="decode")
  assert logits.shape == (3, 5, 8, 8, 1)
  _check_sample_sets(jax.jit(task.sample)(state, _digits_batch()), manifold=True)


@pytest.mark.slow
def test_conv_vae_with_gaussian_likelihood_trains_and_samples():
  config = tiny_vae_config(**{"model.name": "conv", "objective.likelihood": "gaussian",
                              "objective.binarize": "none", "optimizer.learning_rate": 3e-3})
  task, state, history = run_steps(config, jax.devices()[:1], 25, _digits_batch())
  losses = [float(m["loss"]) for m in history]
  assert all(np.isfinite(losses)) and np.mean(losses[-3:]) < losses[0] - 5, losses
  model = tasks.vae.make_model(config)
  out = model.apply({"params": state.params}, jnp.zeros((3, 5, 4)), method="decode")
  assert out.shape == (3, 5, 8, 8, 2)  # per pixel: mean and log-variance
  sets = jax.jit(task.sample)(state, _digits_batch())
  _check_sample_sets(sets, manifold=False, binary=False)
  rec = np.asarray(sets["reconstructions"].images).reshape(2, 2, 4, 8, 8, 1)
  np.testing.assert_allclose(rec[:, 0].reshape(8, 8, 8, 1), _digits_batch()["image"][:8], atol=1e-6)


def test_step_sharded_over_8_devices_equals_1_device(trained_mlp):
  config, _, _, hist1 = trained_mlp  # dynamic binarization: randomness must not depend on sharding
  assert len(jax.devices()) == 8
  _, state8, hist8 = run_steps(config, jax.devices(), 3, _digits_batch())
  chex.assert_trees_all_close(hist8, hist1[:3], atol=1e-4, rtol=1e-5)
  _, state1, _ = run_steps(config, jax.devices()[:1], 3, _digits_batch())  # compiled already
  chex.assert_trees_all_close(jax.device_get(state8.params), jax.device_get(state1.params),
                              atol=1e-5, rtol=1e-4)


def test_fsdp_step_equals_1_device(trained_mlp):
  """Params and Adam moments sharded 4 ways, weights gathered where used, gradients
  reduce-scattered: the same steps as one device."""
  config, _, _, hist1 = trained_mlp
  _, state, hist = run_steps(config, jax.devices(), 3, _digits_batch(), fsdp=4)
  kernel = state.params["encoder"]["hidden0"]["kernel"]  # [64, 32]: 64 split 4 ways
  assert "fsdp" in kernel.sharding.spec
  chex.assert_trees_all_close(hist, hist1[:3], atol=1e-4, rtol=1e-5)


def test_config_errors_name_the_fix():
  with pytest.raises(ConfigError, match="binarize=static or dynamic"):
    tasks.get_task(tiny_vae_config(**{"objective.binarize": "none"}))
  with pytest.raises(ConfigError, match=r"model.name to one of \['conv', 'mlp'\]"):
    tasks.get_task(tiny_vae_config(**{"model.name": "resnet"}))
  with pytest.raises(ConfigError, match="iw_samples=0 must be at least 1"):
    tasks.get_task(tiny_vae_config(**{"objective.iw_samples": 0}))


def test_missing_mnist_names_how_to_prepare_it_and_the_demo(tmp_path):
  for preset, name in (("", "binarized_mnist"), ("dynamic", "mnist")):
    cfg = vae_mnist.get_config(preset).data
    cfg.data_dir = str(tmp_path)
    with pytest.raises(DatasetMissingError, match=rf"tfds build {name} .*vae_mnist.py:demo"):
      pipelines.get_builder(cfg)


def test_binary_pixels_map_to_plus_minus_one():
  cfg = vae_mnist.get_config().data  # binarized_mnist stores 0/1
  image = np.zeros((28, 28, 1), np.uint8)
  image[5:20, 10:15] = 1
  out = pipelines._preprocess_image(image, cfg)
  np.testing.assert_array_equal(out, np.where(image == 1, 1.0, -1.0))


# --- the loop end to end -----------------------------------------------------------------------

def _train_losses(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  return {r["step"]: r["loss"] for r in rows if r["split"] == "train"}


@pytest.mark.slow
def test_heldout_evaluates_a_checkpoint_as_the_loop_does(tfds_dir, tmp_path):
  """genai_jax.eval.heldout: the loop's last 'eval' again from the checkpoint (same batches, same
  numbers); other settings (more batches, a larger k) change only what they should."""
  from genai_jax.errors import ConfigError
  from genai_jax.eval import heldout
  workdir = str(tmp_path / "run")
  config = tiny_vae_config(num_steps=3)
  result = train_and_evaluate(config, workdir)
  step, metrics = heldout.evaluate(config, workdir)
  assert step == 3
  for k in ("neg_elbo", "nll_k", "kl", "recon"):
    assert metrics[k] == pytest.approx(result[f"eval/{k}"], rel=1e-5), k
  _, tighter = heldout.evaluate(override(config, {"objective.iw_samples": 64}), workdir)
  assert tighter["nll_k"] < metrics["nll_k"] <= metrics["neg_elbo"]
  _, two = heldout.evaluate(config, workdir, split=config.data.train_split, num_batches=2)
  assert set(two) == set(metrics) and two != metrics
  with pytest.raises(ConfigError, match="batches=0 must be at least 1"):
    heldout.evaluate(config, workdir, num_batches=0)


@pytest.mark.slow
def test_loop_writes_grids_checkpoints_metrics_and_resumes_exactly(tfds_dir, tmp_path):
  full, split = str(tmp_path / "full"), str(tmp_path / "split")
  result = train_and_evaluate(tiny_vae_config(**{"model.latent_size": 2}), full)
  assert {"loss", "kl", "recon", "eval/neg_elbo", "eval/nll_k"} <= set(result)
  assert 0 < result["eval/nll_k"] <= result["eval/neg_elbo"]
  assert sorted(os.listdir(os.path.join(full, "checkpoints"))) == ["3", "6"]
  for name in ("samples", "reconstructions", "interpolations", "manifold"):
    assert os.path.getsize(os.path.join(full, name, "latest.png")) > 100, name
    assert os.path.exists(os.path.join(full, name, "step_0000003.png")), name

  train_and_evaluate(tiny_vae_config(num_steps=3, **{"model.latent_size": 2}), split)
  train_and_evaluate(tiny_vae_config(**{"model.latent_size": 2}), split)  # resumes at 3
  want, got = _train_losses(full), _train_losses(split)
  assert sorted(got) == list(range(1, 7))
  for step in range(1, 7):
    assert got[step] == pytest.approx(want[step], rel=1e-6, abs=1e-6), step
