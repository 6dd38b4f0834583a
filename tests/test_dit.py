"""The DiT backbone (adaLN-Zero at init, learning, FSDP equals one device, one-line config errors)
and the diffusion paper presets (parameter counts by hand, mock tfds data through one step)."""

import math
from unittest import mock

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments.configs import diffusion as diffusion_configs
from genai_jax import tasks
from genai_jax.data import pipelines, specs
from genai_jax.errors import ConfigError
from genai_jax.models import dit
from genai_jax.train import sharding
from genai_jax.train import state as state_lib
from tests.helpers import override, run_steps
from tests.test_diffusion import _batch


def tiny_dit_config(**overrides):
  """:digits_cond (class-conditional flow, guidance) on 8x8 images with a 2-block DiT of width 64
  (16 tokens of 2x2 patches), one Euler sampling step."""
  c = diffusion_configs.get_config("digits_cond")
  c.model.update(name="dit", image_size=8, patch_size=2, hidden=64, depth=2, num_heads=4,
                 mlp_ratio=4, width=None, channel_mult=None, num_res_blocks=None,
                 attention_res=None, dropout=None)
  c.data.update(image_size=8, shards=8)
  c.sampler.update(name="euler", steps=1)
  c.optimizer.update(warmup=1, learning_rate=3e-3)
  c.update(batch_size=16, num_samples=4)
  return override(c, overrides)


def _count(params) -> int:
  return sum(math.prod(x.shape) for x in jax.tree.leaves(nn.unbox(params)))


# --- the network ---------------------------------------------------------------------------------

def test_patchify_inverts_and_position_embedding_is_sincos():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
  p = dit.patchify(x, 2)
  assert p.shape == (2, 16, 12)
  np.testing.assert_array_equal(p[0, 1], np.asarray(x[0, 0:2, 2:4]).reshape(-1))  # row-major
  np.testing.assert_array_equal(dit.unpatchify(p, 2, 3), x)
  pos = dit.sincos_2d(4, 8)  # 16 patches; features [sin, cos](col w), [sin, cos](row w)
  assert pos.shape == (16, 8) and pos.dtype == np.float32
  w = np.array([1.0, 0.01])
  np.testing.assert_allclose(pos[6], np.concatenate([np.sin(2 * w), np.cos(2 * w),
                                                     np.sin(1 * w), np.cos(1 * w)]), rtol=1e-6)


@pytest.mark.parametrize("dtype", [None, pytest.param(jnp.bfloat16, marks=pytest.mark.slow)])
def test_dit_shapes_and_adaln_zero_start(dtype):
  model = dit.DiT(channels=3, image_size=8, patch_size=2, hidden=32, depth=2, num_heads=4,
                  num_classes=10, dtype=dtype)
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 8, 8, 3))
  t, y = jnp.array([1.0, 10.0, 100.0, 999.0]), jnp.array([0, 3, 9, 10])  # 10: the null label
  params = model.init(jax.random.PRNGKey(1), x, t, y)["params"]
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(nn.unbox(params)))
  out = model.apply({"params": params}, x, t, y)
  assert out.shape == x.shape and out.dtype == jnp.float32
  np.testing.assert_array_equal(out, 0.0)  # zero-initialised final layer
  # Every block is the identity at init (its gates come from a zero-initialised Dense) ...
  h = jax.random.normal(jax.random.PRNGKey(2), (4, 16, 32)).astype(dtype or jnp.float32)
  c = jax.random.normal(jax.random.PRNGKey(3), (4, 32))
  block = dit.Block(num_heads=4, dtype=dtype)
  block_params = block.init(jax.random.PRNGKey(4), h, c)
  np.testing.assert_array_equal(block.apply(block_params, h, c), h)
  # ... and is not once its modulation is non-zero (the check can fail).
  moved = jax.tree.map(lambda a: a + 0.1, nn.unbox(block_params))
  assert float(jnp.abs(block.apply(moved, h, c).astype(jnp.float32) - h).max()) > 1e-2
  # With the final layer and its modulation non-zero the output depends on the input, the noise
  # level and the class (at init the conditioning reaches nothing: every path from c is zero).
  params = nn.unbox(params)
  for i, name in enumerate(("final", "final_adaLN")):
    k = params[name]["kernel"]
    params[name]["kernel"] = jax.random.normal(jax.random.PRNGKey(5 + i), k.shape)
  outs = [model.apply({"params": params}, *a) for a in ((x, t, y), (x, t + 1, y), (x, t, y - 1))]
  assert float(jnp.abs(outs[0]).max()) > 1e-2
  assert float(jnp.abs(outs[0] - outs[1]).max()) > 1e-4
  assert float(jnp.abs(outs[0][:3] - outs[2][:3]).max()) > 1e-4


def test_dit_params_carry_logical_axes_and_fsdp_shards_the_width():
  config = tiny_dit_config()
  task = tasks.get_task(config)
  mesh = sharding.make_mesh(fsdp=8)
  spec = state_lib.sharded_init(task, mesh)
  boxed = jax.tree.leaves(spec.abstract.params, is_leaf=lambda x: isinstance(x, nn.Partitioned))
  assert boxed and all(isinstance(b, nn.LogicallyPartitioned) for b in boxed)
  qkv = spec.shardings.params["block_0"]["qkv"]["kernel"]  # [embed 64, heads 192]
  assert qkv.value.spec == jax.sharding.PartitionSpec("fsdp", None)


@pytest.mark.slow
def test_dit_learns_and_fsdp_equals_single_device():
  config = tiny_dit_config(**{"ema.decay": 0.0})
  batch = _batch()
  task, state1, hist1 = run_steps(config, jax.devices()[:1], 3, batch)
  _, fresh, _ = run_steps(config, jax.devices()[:1], 0, batch)
  eval_step = jax.jit(task.eval_step)
  before, after = float(eval_step(fresh, batch)["loss"]), float(eval_step(state1, batch)["loss"])
  assert after < before, (before, after)
  _, state8, hist8 = run_steps(config, jax.devices(), 3, batch, fsdp=8)
  np.testing.assert_allclose([h["loss"] for h in hist8], [h["loss"] for h in hist1], rtol=1e-4)
  leaves = lambda state: jax.tree.leaves(nn.unbox(state.params))
  for a, b in zip(leaves(state8), leaves(state1)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("overrides,message", [
    ({"model.patch_size": 3}, r"model.image_size=8 must be divisible by model.patch_size=3"),
    ({"model.num_heads": 5}, r"model.hidden=64 must be divisible by model.num_heads=5"),
    ({"model.hidden": 66, "model.num_heads": 3}, r"model.hidden=66 must be divisible by 4"),
    ({"model.width": 32}, r"model.width=32 does not apply to the diffusion model 'dit'"),
])
def test_bad_dit_settings_are_one_line_config_errors(overrides, message):
  config = tiny_dit_config(**overrides)
  with pytest.raises(ConfigError, match=message) as err:
    tasks.validate(config)
    tasks.get_task(config)
  assert "\n" not in str(err.value)


# --- the paper presets: parameters by hand ------------------------------------------------------

def dit_params_by_hand(channels, patch, d, depth, mlp_ratio=4, num_classes=0, freq=256,
                       out_channels=None) -> int:
  """DiT's parameters layer by layer (Dense: in * out + out); out_channels defaults to channels
  (the paper's learned variance doubles them)."""
  p = patch * patch * channels
  p_out = patch * patch * (out_channels or channels)
  n = p * d + d  # patch embedding (the stride-p conv as a Dense)
  n += freq * d + d + d * d + d  # noise-level MLP on 256 sinusoidal features
  n += (num_classes + 1) * d if num_classes else 0  # class table with the null row
  block = ((3 * d * d + 3 * d) + (d * d + d)  # attention: qkv and output, 4d^2 + 4d
           + (d * mlp_ratio * d + mlp_ratio * d) + (mlp_ratio * d * d + d)  # MLP
           + 6 * d * (d + 1))  # adaLN-Zero: shift, scale, gate for both branches
  final = 2 * d * (d + 1) + (d * p_out + p_out)  # adaLN shift/scale, then the linear to patches
  return n + depth * block + final


def unet_params_by_hand(ch, mult, blocks, attn_res, size, in_ch=3, scale_shift=False) -> int:
  """The U-Net's parameters layer by layer: conv k*k*in*out + out, Dense in*out + out, GroupNorm
  2c; time MLP ch -> 4ch -> 4ch; residual blocks add the embedding (scale_shift: 2x wider)."""
  emb = 4 * ch
  conv = lambda cin, cout, k=3: k * k * cin * cout + cout
  dense = lambda cin, cout: cin * cout + cout

  def res(cin, cout):
    n = 2 * cin + conv(cin, cout) + dense(emb, (2 if scale_shift else 1) * cout)
    n += 2 * cout + conv(cout, cout)
    return n + (conv(cin, cout, 1) if cin != cout else 0)  # 1x1 skip when the width changes

  attn = lambda c: 2 * c + dense(c, 3 * c) + dense(c, c)
  n = dense(ch, emb) + dense(emb, emb) + conv(in_ch, ch)
  c, r, skips = ch, size, [ch]
  for level, m in enumerate(mult):  # down
    for _ in range(blocks):
      n += res(c, ch * m) + (attn(ch * m) if r in attn_res else 0)
      c = ch * m
      skips.append(c)
    if level != len(mult) - 1:
      n += conv(c, c)
      r //= 2
      skips.append(c)
  n += 2 * res(c, c) + attn(c)  # middle
  for level, m in reversed(list(enumerate(mult))):  # up: one more block per level, skip concat
    for _ in range(blocks + 1):
      n += res(c + skips.pop(), ch * m) + (attn(ch * m) if r in attn_res else 0)
      c = ch * m
    if level:
      n += conv(c, c)
      r *= 2
  return n + 2 * c + conv(c, in_ch)


def _preset_params(preset):
  config = diffusion_configs.get_config(preset)
  state = jax.eval_shape(tasks.get_task(config).init, jax.random.PRNGKey(0))  # nothing computed
  return config, _count(state.params)


def test_paper_preset_parameter_counts_match_the_hand_arithmetic():
  config, n = _preset_params("cifar10_ddpm")
  m = config.model
  assert n == unet_params_by_hand(m.width, m.channel_mult, m.num_res_blocks, m.attention_res, 32)
  assert n == pytest.approx(35.7e6, rel=0.005)  # Ho et al. 2020: 35.7M
  config, n = _preset_params("cifar10_edm")
  m = config.model
  assert n == unet_params_by_hand(m.width, m.channel_mult, m.num_res_blocks, m.attention_res, 32)
  assert n == pytest.approx(56e6, rel=0.1)  # EDM's DDPM++: ~56M (our backbone: docstring)
  config, n = _preset_params("dit_s2_celeba64")
  m = config.model
  assert n == dit_params_by_hand(m.channels, m.patch_size, m.hidden, m.depth, m.mlp_ratio)
  # The same arithmetic for the paper's DiT-S/2 (4 latent channels in, 8 out for the learned
  # variance, 1,000 classes + null) gives its 33.0M (DiT Table 4); ours has 32.5M.
  paper = dit_params_by_hand(4, 2, 384, 12, num_classes=1000, out_channels=8)
  assert paper == pytest.approx(33.0e6, rel=0.005)
  # The scale-shift U-Net (ADM's, the default) by the same arithmetic: the formula tracks the flag.
  config = diffusion_configs.get_config("demo")
  m = config.model
  _, n = _preset_params("demo")
  assert n == unet_params_by_hand(m.width, m.channel_mult, m.num_res_blocks, m.attention_res, 32,
                                  in_ch=1, scale_shift=True)


# --- the paper presets and mnist_cond: mock data through one step ----------------------------------------------

SMALL = {"cifar10_ddpm": {"model.width": 32, "model.num_res_blocks": 1},
         "cifar10_edm": {"model.width": 32, "model.num_res_blocks": 1},
         "dit_s2_celeba64": {"model.hidden": 64, "model.depth": 2, "model.num_heads": 2},
         "mnist_cond": {"model.width": 32, "model.num_res_blocks": 1}}


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(SMALL))
def test_paper_presets_read_mock_data_and_take_a_step(tfds_dir, preset):
  """The preset's tfds dataset (mock records) through its pipeline into one compiled train step
  at 16x16 with a narrower backbone (objective, sampler, optimizer and EMA as the preset); the
  full-size step traced (shapes only) on the preset's global batch."""
  full = diffusion_configs.get_config(preset)
  task = tasks.get_task(full)
  abstract = jax.eval_shape(task.init, jax.random.PRNGKey(0))
  new, metrics = jax.eval_shape(task.train_step, abstract,
                                specs.batch_spec(full.data, full.batch_size))
  assert jax.tree.structure(new) == jax.tree.structure(abstract)
  assert {k: v.shape for k, v in metrics.items()} == {"loss": (), "grad_norm": ()}

  small = {"model.image_size": 16, "data.image_size": 16, "batch_size": 8, **SMALL[preset]}
  config = override(diffusion_configs.get_config(preset), small)
  with tfds.testing.mock_data(num_examples=16), \
       mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", return_value=True):
    batch = next(pipelines.image_batches(config.data, config.data.train_split, 8, train=True,
                                         seed=0))
  assert batch["image"].shape == (8, 16, 16, config.data.channels)
  assert batch["image"].std() > 0.01  # not constant
  if config.data.labels:
    assert batch["label"].shape == (8,) and batch["label"].dtype == np.int32
  _, state, history = run_steps(config, jax.devices()[:1], 1, batch)
  assert int(state.step) == 1 and np.isfinite(history[0]["loss"])
  assert history[0]["grad_norm"] > 0
