"""CycleGAN: the paper's networks (parameter counts, shapes, the 70x70 receptive field), the
history pool, the losses' wiring, the unpaired data (tfds cycle_gan mocked, the embedded faces
<-> edges) and a train + resume run on the shared loop."""

import json
import os
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments.configs import cyclegan as cyclegan_config
from genai_jax.data import pipelines
from genai_jax.errors import ConfigError
from genai_jax.models import cyclegan as models
from genai_jax.objectives import cyclegan as losses
from genai_jax.tasks import cyclegan
from genai_jax.train.loop import train_and_evaluate
from tests.helpers import override, run_steps


def _conv(k, cin, cout):  # a k x k conv with bias (the official code keeps biases under IN)
  return k * k * cin * cout + cout


def _paper_generator_params(c, ngf, blocks):
  """c7s1-ngf, d(2ngf), d(4ngf), R(4ngf) x blocks (two 3x3 convs each), u(2ngf), u(ngf), c7s1-c."""
  return (_conv(7, c, ngf) + _conv(3, ngf, 2 * ngf) + _conv(3, 2 * ngf, 4 * ngf)
          + blocks * 2 * _conv(3, 4 * ngf, 4 * ngf)
          + _conv(3, 4 * ngf, 2 * ngf) + _conv(3, 2 * ngf, ngf) + _conv(7, ngf, c))


def _paper_patchgan_params(c, ndf):
  """C64-C128-C256-C512 (4x4) and a 4x4 conv to one channel."""
  return (_conv(4, c, ndf) + _conv(4, ndf, 2 * ndf) + _conv(4, 2 * ndf, 4 * ndf)
          + _conv(4, 4 * ndf, 8 * ndf) + _conv(4, 8 * ndf, 1))


def _count(module, size, c=3):
  params = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), jnp.zeros((1, size, size, c))))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))


def test_parameter_counts_and_shapes_are_the_papers():
  config = cyclegan_config.get_config()  # horse2zebra: 256x256 RGB, the paper's networks
  gen, disc = cyclegan.make_models(config)
  assert gen.res_blocks == 9 and disc.layers == 3
  n_g, n_d = _count(gen, 256), _count(disc, 256)
  assert n_g == _paper_generator_params(3, 64, 9)
  assert n_d == _paper_patchgan_params(3, 64)
  # The official PyTorch code prints "Total number of parameters : 11.378 M" and "2.765 M".
  assert round(n_g / 1e6, 3) == 11.378 and round(n_d / 1e6, 3) == 2.765
  # 128x128 images: the paper's 6 residual blocks.
  small = override(cyclegan_config.get_config(), {"model.image_size": 128, "data.image_size": 128})
  gen128, _ = cyclegan.make_models(small)
  assert _count(gen128, 128) == _paper_generator_params(3, 64, 6)

  x = jnp.zeros((2, 256, 256, 3))
  g_vars = jax.eval_shape(lambda: gen.init(jax.random.PRNGKey(0), x))
  d_vars = jax.eval_shape(lambda: disc.init(jax.random.PRNGKey(0), x))
  assert jax.eval_shape(gen.apply, g_vars, x).shape == (2, 256, 256, 3)
  logits = jax.eval_shape(disc.apply, d_vars, x)
  assert logits.shape == (2, 30, 30) == (2, models.patch_grid(256, 3), models.patch_grid(256, 3))
  assert logits.dtype == jnp.float32


@pytest.mark.parametrize("layers", [3, 2])
def test_patchgan_receptive_field_measured_from_gradients(layers):
  """One logit's gradient w.r.t. the input is non-zero on exactly a receptive_field-sized square
  (norms off: instance norm couples every pixel)."""
  disc = models.PatchDiscriminator(width=2, layers=layers, norm="none")
  x = jax.random.normal(jax.random.PRNGKey(0), (1, 128, 128, 1))
  params = disc.init(jax.random.PRNGKey(1), x)
  mid = disc.apply(params, x).shape[1] // 2
  grad = jax.jit(jax.grad(lambda x: disc.apply(params, x)[0, mid, mid]))(x)[0, :, :, 0]
  rows, cols = np.nonzero(np.asarray(grad))
  height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
  assert rows.min() > 0 and rows.max() < 127  # not clipped by the image border
  assert height == width == models.receptive_field(layers)
  assert models.receptive_field(3) == 70


def test_subpixel_transposed_conv_matches_the_textbook_one():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 6, 3))
  w = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 3, 4))
  out = models.up_conv_3x3(x, w, "subpixel")
  assert out.shape == (2, 10, 12, 4)
  np.testing.assert_allclose(out, models.up_conv_3x3(x, w, "xla"), atol=1e-5)
  # PyTorch's definition, output pixel o = 2 i - 1 + k, written out for one output pixel.
  want = x[0, 1, 2] @ w[2, 2] + x[0, 1, 3] @ w[2, 0] + x[0, 2, 2] @ w[0, 2] + x[0, 2, 3] @ w[0, 0]
  np.testing.assert_allclose(out[0, 3, 5], want, atol=1e-5)


def _ids(values):
  return jnp.asarray(values, jnp.float32).reshape(-1, 1, 1, 1)


def test_history_pool_fills_first_then_shows_a_half_and_half_mix():
  pool, fill = jnp.zeros((50, 1, 1, 1)), jnp.int32(0)
  first = _ids(np.arange(1, 31))
  pool, fill, shown = cyclegan.pool_query(pool, fill, first, jax.random.PRNGKey(0))
  np.testing.assert_array_equal(shown, first)  # filling: every new fake is shown and stored
  assert int(fill) == 30 and np.array_equal(pool[:30], first) and not np.any(pool[30:])
  pool, fill, shown = cyclegan.pool_query(pool, fill, _ids(np.arange(31, 51)), jax.random.PRNGKey(1))
  assert int(fill) == 50 and set(np.asarray(pool).ravel()) == set(range(1, 51))

  new = np.arange(1000, 3000)
  before = set(np.asarray(pool).ravel())
  pool, fill, shown = cyclegan.pool_query(pool, fill, _ids(new), jax.random.PRNGKey(2))
  shown = np.asarray(shown).ravel().astype(int)
  from_pool = shown != new  # an older fake shown instead of the new one
  assert 0.45 < from_pool.mean() < 0.55, from_pool.mean()  # the official p = 1/2
  assert int(fill) == 50
  # Nothing is lost or duplicated: what was in the pool plus what arrived is what is shown plus
  # what is now stored.
  after = np.asarray(pool).ravel().astype(int)
  assert sorted([*before, *new]) == sorted([*shown, *after])
  assert len(set(after)) == 50

  empty = jnp.zeros((0, 1, 1, 1))
  np.testing.assert_array_equal(cyclegan.pool_query(empty, jnp.int32(0), first,
                                                    jax.random.PRNGKey(3))[2], first)


def test_losses_on_a_trivial_case():
  x = jnp.zeros((2, 4, 4, 1))
  assert float(losses.l1(x + 0.25, x)) == pytest.approx(0.25)
  np.testing.assert_allclose(losses.psnr(x + 0.1, x), 10 * np.log10(4 / 0.01), rtol=1e-5)
  lsgan = losses.adversarial("least_squares")
  ones, zeros = jnp.ones((2, 3, 3)), jnp.zeros((2, 3, 3))
  assert float(lsgan.d_loss(ones, zeros)) == 0.0 and float(lsgan.g_loss(ones)) == 0.0
  assert float(lsgan.d_loss(zeros, ones)) == pytest.approx(1.0)  # 0.5 * (1 + 1)
  assert float(lsgan.g_loss(zeros)) == pytest.approx(1.0)  # not halved, as the official code


def _tiny_config(**overrides):
  """The horse2zebra preset with tiny networks and images (every test shares its compilations:
  a constant learning rate makes the task independent of num_steps)."""
  c = cyclegan_config.get_config()
  # The textbook transposed conv compiles faster than the sub-pixel one (tested equal above).
  c.model.update(image_size=16, g_width=4, d_width=4, res_blocks=1, d_layers=1,
                 upsample_impl="xla")
  c.data.update(image_size=16, load_size=20, shards=8)
  c.optimizer.decay_fraction = 0.0
  # Checkpoints at the last step only: tfds' mock_data redirects paths an async mid-run save
  # still writes to.
  c.update(batch_size=8, num_steps=4, log_every=1, eval_every=2, checkpoint_every=100,
           eval_batches=1, num_samples=6)
  return override(c, overrides)


@pytest.mark.slow
def test_train_step_wires_cycle_and_identity_losses_to_the_right_generators():
  config = _tiny_config()
  rng = np.random.default_rng(0)
  batch = {k: rng.uniform(-1, 1, (8, 16, 16, 3)).astype(np.float32) for k in ("image_a", "image_b")}
  task, state, history = run_steps(config, jax.devices(), 1, batch)
  assert int(state.step) == 1 and np.asarray(state.pool_fill).tolist() == [8, 8]
  fresh = task.init(jax.random.PRNGKey(config.seed))  # the parameters step 1 saw
  gen, disc = cyclegan.make_models(config)
  G = jax.jit(lambda k, x: gen.apply({"params": fresh.g_params[k]}, x), static_argnums=0)  # noqa: E731
  a, b = batch["image_a"], batch["image_b"]
  m = history[0]
  np.testing.assert_allclose(m["cycle_a"], np.abs(G("ba", G("ab", a)) - a).mean(), rtol=1e-4)
  np.testing.assert_allclose(m["cycle_b"], np.abs(G("ab", G("ba", b)) - b).mean(), rtol=1e-4)
  np.testing.assert_allclose(m["idt_b"], np.abs(G("ab", b) - b).mean(), rtol=1e-4)
  np.testing.assert_allclose(m["idt_a"], np.abs(G("ba", a) - a).mean(), rtol=1e-4)
  d_b = jax.jit(disc.apply)({"params": fresh.d_params["b"]}, G("ab", a))
  np.testing.assert_allclose(m["adv_ab"], ((d_b - 1) ** 2).mean(), rtol=1e-4)
  want = (m["adv_ab"] + m["adv_ba"] + 10 * (m["cycle_a"] + m["cycle_b"])
          + 0.5 * 10 * (m["idt_a"] + m["idt_b"]))
  np.testing.assert_allclose(m["g_loss"], want, rtol=1e-5)
  # The pool was empty: D saw exactly this step's fakes, which the pool now holds.
  np.testing.assert_allclose(state.pool_b[:8], G("ab", a), atol=1e-5)


def test_learning_rate_is_constant_then_decays_linearly_to_zero():
  schedule = cyclegan.learning_rate(cyclegan_config.get_config().optimizer, 1000)
  np.testing.assert_allclose([schedule(s) for s in (0, 499, 500, 750, 1000)],
                             [2e-4, 2e-4, 2e-4, 1e-4, 0.0], atol=1e-10)


def _mock_tfds(num_examples=16):
  # mock_data fakes the records but not the "prepared" marker files, so say they are there.
  return tfds.testing.mock_data(num_examples=num_examples), \
      mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", return_value=True)


def test_horse2zebra_reads_both_domains_under_mock_data(tfds_dir):
  cfg = cyclegan_config.get_config().data
  assert cfg.name == "cycle_gan/horse2zebra" and cfg.kind == "unpaired"
  mock_data, prepared = _mock_tfds()
  with mock_data, prepared:
    batch = next(pipelines.batches(cfg, "train", 2, train=True, seed=0))
    held_out = next(pipelines.batches(cfg, "test", 2, train=False))
  assert set(batch) == {"image_a", "image_b"}
  for x in (*batch.values(), *held_out.values()):
    assert x.shape == (2, 256, 256, 3) and x.dtype == np.float32
    assert -1 <= x.min() and x.max() <= 1 and x.std() > 0.05
  assert not np.array_equal(batch["image_a"], batch["image_b"])
  assert jax.tree.map(lambda s: s.shape, pipelines.batch_spec(cfg, 2)) == \
      {"image_a": (2, 256, 256, 3), "image_b": (2, 256, 256, 3)}


def test_demo_domains_are_edge_maps_and_faces_of_disjoint_images(tfds_dir):
  import skimage.transform
  from genai_jax.data.builders import embedded_images
  cfg = cyclegan_config.get_config("faces_edges_demo").data
  builder = pipelines.get_builder(cfg)
  splits = {k: builder.info.splits[k].num_examples for k in ("trainA", "trainB", "testA", "testB")}
  assert splits == {"trainA": 42, "trainB": 42, "testA": 8, "testB": 8}
  # Match every stored image to the lfw_subset face it was made from (a photo in A, the Sobel
  # sketch of one in B): each matches one face almost exactly, and no face is in both domains.
  faces = [skimage.transform.resize(f, (32, 32), order=3, anti_aliasing=False)
           for f in embedded_images._lfw_faces()]
  photos = np.stack([np.clip(f, 0, 1) * 255 for f in faces])
  sketches = np.stack([embedded_images.sobel_sketch(f) for f in faces]).astype(np.float64)
  def sources(split, refs):
    images = np.stack([ex["image"][..., 0] for ex in builder.as_data_source(split)])
    dist = np.abs(images[:, None].astype(np.float64) - refs[None]).mean(axis=(2, 3))
    assert dist.min(axis=1).max() < 1.0  # an exact source (up to rounding) for every image
    return set(dist.argmin(axis=1).tolist())
  a = sources("trainA", photos) | sources("testA", photos)
  b = sources("trainB", sketches) | sources("testB", sketches)
  assert len(a) == 50 and len(b) == 50 and not a & b
  batch = next(pipelines.batches(cfg, "train", 8, train=False))
  # Sketches are mostly white paper with dark strokes; faces are mid-grey photographs.
  assert np.median(batch["image_b"]) > np.median(batch["image_a"]) + 0.4


@pytest.mark.slow
def test_horse2zebra_trains_and_resumes_under_mock_data(tfds_dir, tmp_path):
  """The tfds preset, shrunk to tiny widths, through the shared loop: 2 steps, then a resumed
  run to 4 that matches an uninterrupted one; evals log the held-out cycle error."""
  config = _tiny_config()
  mock_data, prepared = _mock_tfds()
  full, split = str(tmp_path / "full"), str(tmp_path / "split")
  with mock_data, prepared:
    result = train_and_evaluate(config, full)
    train_and_evaluate(_tiny_config(num_steps=2), split)  # "interrupted" after step 2
    train_and_evaluate(config, split)
  assert {"eval/cycle_l1", "eval/cycle_psnr_a", "eval/idt_l1_b", "g_loss", "d_a"} <= set(result)
  assert all(np.isfinite(v) for v in result.values()), result
  assert sorted(os.listdir(os.path.join(split, "checkpoints"))) == ["2", "4"]
  assert os.path.getsize(os.path.join(full, "cycles", "latest.png")) > 100
  def rows(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      return {r["step"]: r for r in map(json.loads, f) if r["split"] == "train"}
  want, got = rows(full), rows(split)
  assert sorted(got) == [1, 2, 3, 4]
  for step in (3, 4):  # same data position, rng, pools and state: the same numbers
    for k in ("g_loss", "d_loss", "cycle_a", "d_b"):
      assert got[step][k] == pytest.approx(want[step][k], rel=1e-5), (step, k)
  # No unconditional samples: the generator evaluation says so in one line.
  from genai_jax.eval import runner
  from genai_jax.train import workdir as workdir_lib
  with pytest.raises(ConfigError, match="this task cannot draw samples"):
    runner.evaluate_checkpoint(workdir_lib.load_config(full), full)


def test_cycle_grid_rows_fit_the_square_grid_writer():
  for n in range(1, 9):
    rows = cyclegan.sample_rows(n)
    assert rows >= min(n, 6) and int(np.ceil(np.sqrt(6 * rows))) % 3 == 0  # whole triplets per row
