"""The fast (transposed) convolutions equal the textbook lowering, flax's layers and PyTorch's:
the 4x4 stride-2 pair (DCGAN) and conv_transpose / conv_strided for any kernel and stride."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genai_jax.models.layers import (SubpixelConv, SubpixelConvTranspose, conv_strided,
                                     conv_transpose, down_conv_4x4, up_conv_4x4)


@pytest.mark.parametrize("fn", [up_conv_4x4, down_conv_4x4])
@pytest.mark.parametrize("hw", [(4, 4), (6, 10)])
@pytest.mark.parametrize("cin,cout", [(5, 7), (20, 24), (3, 20), (20, 3)])  # both code paths
def test_subpixel_equals_xla_values_and_grads(fn, hw, cin, cout):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(3, *hw, cin)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(4, 4, cin, cout)), jnp.float32)
  chex.assert_trees_all_close(fn(x, w, "subpixel"), fn(x, w, "xla"), atol=1e-5, rtol=1e-5)
  loss = lambda impl: lambda x, w: jnp.sum(jnp.sin(fn(x, w, impl)))
  g_fast = jax.grad(loss("subpixel"), argnums=(0, 1))(x, w)
  g_ref = jax.grad(loss("xla"), argnums=(0, 1))(x, w)
  chex.assert_trees_all_close(g_fast, g_ref, atol=1e-4, rtol=1e-4)


def test_output_shapes():
  x = jnp.zeros((2, 8, 8, 3))
  chex.assert_shape(up_conv_4x4(x, jnp.zeros((4, 4, 3, 6))), (2, 16, 16, 6))
  chex.assert_shape(down_conv_4x4(x, jnp.zeros((4, 4, 3, 6))), (2, 4, 4, 6))


def test_up_conv_matches_hand_computed_1d_case():
  # One channel, 1x2 input, kernel with distinct entries: out[o] = sum_i x[i] * w[o + 1 - 2i].
  w1 = jnp.arange(1.0, 5.0)  # w[0..3] = 1, 2, 3, 4
  w = (w1[:, None] * jnp.array([0.0, 1.0, 0.0, 0.0])[None, :])[:, :, None, None]  # only kw=1
  x = jnp.array([10.0, 100.0]).reshape(1, 2, 1, 1) * jnp.ones((1, 2, 1, 1))
  y = up_conv_4x4(x, w)[0, :, 0, 0]  # column 0 of the output uses kernel column kw=1
  # o=0: x0*w1=20; o=1: x0*w2 + x1*w0=30+100; o=2: x0*w3 + x1*w1=40+200; o=3: x1*w2=300
  np.testing.assert_allclose(y, [20.0, 130.0, 240.0, 300.0], rtol=1e-6)


def test_matches_pytorch_if_available():
  torch = pytest.importorskip("torch")
  rng = np.random.default_rng(1)
  x = rng.normal(size=(2, 6, 6, 20)).astype(np.float32)
  w = rng.normal(size=(4, 4, 20, 24)).astype(np.float32)
  tx = torch.tensor(x).permute(0, 3, 1, 2)
  up = torch.nn.functional.conv_transpose2d(tx, torch.tensor(w).permute(2, 3, 0, 1), stride=2, padding=1)
  down = torch.nn.functional.conv2d(tx, torch.tensor(w).permute(3, 2, 0, 1), stride=2, padding=1)
  np.testing.assert_allclose(up_conv_4x4(x, w), up.permute(0, 2, 3, 1).numpy(), atol=1e-4)
  np.testing.assert_allclose(down_conv_4x4(x, w), down.permute(0, 2, 3, 1).numpy(), atol=1e-4)


# --- any kernel size and stride: conv_transpose / conv_strided ------------------------------------

def _close(a, b, scale):
  chex.assert_trees_all_close(a, b, atol=1e-5 * scale, rtol=1e-5)


def _check_against_xla(fn, x, w, strides, padding):
  """Values and both gradients of ``fn`` ('subpixel') equal the plain lax op ('xla')."""
  def both(impl):  # one compiled program per case: far quicker than op-by-op here
    f = lambda x, w: fn(x, w, strides, padding, impl=impl)
    out, vjp = jax.vjp(f, x, w)
    return out, vjp(jnp.cos(jnp.arange(out.size, dtype=jnp.float32)).reshape(out.shape))
  (out, g), (ref, g_ref) = jax.jit(lambda x, w: (both("subpixel"), both("xla")))(x, w)
  assert out.shape == ref.shape
  _close(out, ref, float(jnp.max(jnp.abs(ref))) + 1.0)
  for a, b in zip(g, g_ref):
    _close(a, b, float(jnp.max(jnp.abs(b))) + 1.0)


@pytest.mark.parametrize("k", range(1, 7))
@pytest.mark.parametrize("s", range(1, 4))
def test_conv_transpose_equals_lax_for_every_kernel_and_stride(k, s):
  rng = np.random.default_rng(k * 10 + s)
  for padding in ("SAME", "VALID"):
    for i, hw in enumerate(((5, 4), (3, 6))):  # odd and even sizes
      # Both matmul forms (few input channels: the views concatenated), in turn.
      cin, cout = ((3, 4), (20, 6))[(i + k + s) % 2]
      x = jnp.asarray(rng.normal(size=(2, *hw, cin)), jnp.float32)
      w = jnp.asarray(rng.normal(size=(k, k, cin, cout)), jnp.float32)
      _check_against_xla(conv_transpose, x, w, (s, s), padding)


@pytest.mark.parametrize("k", range(1, 7))
@pytest.mark.parametrize("s", range(1, 4))
def test_conv_strided_equals_lax_for_every_kernel_and_stride(k, s):
  rng = np.random.default_rng(k * 10 + s)
  for padding in ("SAME", "VALID"):
    for i, hw in enumerate(((7, 6), (9, 8))):  # odd and even sizes, every output non-empty
      cin, cout = ((3, 4), (20, 6))[(i + k + s) % 2]
      x = jnp.asarray(rng.normal(size=(2, *hw, cin)), jnp.float32)
      w = jnp.asarray(rng.normal(size=(k, k, cin, cout)), jnp.float32)
      _check_against_xla(conv_strided, x, w, (s, s), padding)


def test_conv_strided_few_output_channels():
  """The stride-1 head form (few outputs, many inputs: one wide matmul, a shifted sum, a
  hand-written gradient) equals the lax op in values and both gradients: an unequal 2-D kernel
  and a 1-D one with explicit (also negative) padding; test_conv_strided_equals_lax_... covers
  SAME and VALID at k = 1..6 (its 20 -> 6 cases at stride 1)."""
  rng = np.random.default_rng(13)
  for shape, kernel, cout, padding in [((2, 9, 11, 20), (7, 4), 1, "SAME"),
                                       ((2, 9, 20), (3,), 2, ((2, -1),))]:
    x = jnp.asarray(rng.normal(size=shape), jnp.float32)
    w = jnp.asarray(rng.normal(size=(*kernel, shape[-1], cout)), jnp.float32)
    _check_against_xla(conv_strided, x, w, (1,) * len(kernel), padding)


@pytest.mark.parametrize("kernel,strides,padding", [
    ((5, 3), (2, 3), "SAME"), ((2, 4), (3, 1), "VALID"),  # unequal per dim
    ((4, 4), (2, 2), ((2, 2), (2, 2))),  # PyTorch k=4, s=2, p=1 (DCGAN), kernel flipped
    ((5, 5), (2, 2), ((2, 3), (2, 3))),  # PyTorch k=5, s=2, p=2, output_padding=1
    ((3, 3), (2, 2), ((0, 1), (3, 0))),  # arbitrary explicit pairs
])
def test_conv_transpose_unequal_dims_and_explicit_padding(kernel, strides, padding):
  rng = np.random.default_rng(7)
  x = jnp.asarray(rng.normal(size=(2, 5, 4, 6)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(*kernel, 6, 5)), jnp.float32)
  _check_against_xla(conv_transpose, x, w, strides, padding)


def test_conv_transpose_1d():
  rng = np.random.default_rng(8)
  x = jnp.asarray(rng.normal(size=(2, 9, 20)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(25, 20, 7)), jnp.float32)  # WaveGAN's 25-tap kernels, stride 4
  _check_against_xla(conv_transpose, x, w, (4,), "SAME")


def test_conv_transpose_matches_the_4x4_layer():
  """up_conv_4x4 (PyTorch semantics) is conv_transpose with the kernel flipped, padding (2, 2)."""
  rng = np.random.default_rng(9)
  x = jnp.asarray(rng.normal(size=(2, 5, 6, 20)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(4, 4, 20, 24)), jnp.float32)
  _close(conv_transpose(x, w[::-1, ::-1], (2, 2), ((2, 2), (2, 2))), up_conv_4x4(x, w), 100.0)


def test_subpixel_modules_are_drop_ins_for_flax():
  """Same parameter tree (names, shapes, initial values) and outputs as nn.ConvTranspose and
  nn.Conv, so checkpoints move between them."""
  rng = np.random.default_rng(10)
  x = jnp.asarray(rng.normal(size=(2, 7, 7, 12)), jnp.float32)
  for ours, theirs in [
      (SubpixelConvTranspose(16, (5, 5), (2, 2), "SAME"),
       nn.ConvTranspose(16, (5, 5), (2, 2), "SAME")),
      (SubpixelConv(16, (5, 5), (2, 2), "SAME"), nn.Conv(16, (5, 5), (2, 2), "SAME"))]:
    key = jax.random.PRNGKey(0)
    p_ours, p_theirs = ours.init(key, x), theirs.init(key, x)
    chex.assert_trees_all_equal(p_ours, p_theirs)
    _close(ours.apply(p_ours, x), theirs.apply(p_theirs, x), 10.0)


def test_conv_transpose_matches_pytorch_if_available():
  torch = pytest.importorskip("torch")
  rng = np.random.default_rng(11)
  x = rng.normal(size=(2, 7, 7, 16)).astype(np.float32)
  w = rng.normal(size=(5, 5, 16, 8)).astype(np.float32)  # PyTorch weight[ci, co, kh, kw]
  ref = torch.nn.functional.conv_transpose2d(
      torch.tensor(x).permute(0, 3, 1, 2), torch.tensor(w).permute(2, 3, 0, 1), stride=2,
      padding=2, output_padding=1).permute(0, 2, 3, 1).numpy()
  out = conv_transpose(jnp.asarray(x), jnp.asarray(w)[::-1, ::-1], (2, 2), ((2, 3), (2, 3)))
  np.testing.assert_allclose(out, ref, atol=1e-4, rtol=1e-5)


def test_bad_impl_is_one_line():
  x, w = jnp.zeros((1, 3, 3, 2)), jnp.zeros((3, 3, 2, 2))
  with pytest.raises(ValueError, match="unknown conv impl 'fast'"):
    conv_transpose(x, w, (2, 2), impl="fast")


@pytest.mark.slow  # ~6 s; the few-output conv it relies on is checked fast above
def test_keras_conv_generator_same_params_and_outputs_either_impl():
  from genai_jax.models.mlp_gan import KerasConvGenerator
  z = jnp.asarray(np.random.default_rng(12).normal(size=(3, 10)), jnp.float32)
  fast, plain = (KerasConvGenerator(width=8, image_size=8, conv_impl=i)
                 for i in ("subpixel", "xla"))
  variables = fast.init(jax.random.PRNGKey(0), z)
  chex.assert_trees_all_equal(variables, plain.init(jax.random.PRNGKey(0), z))
  assert "ConvTranspose_1" in variables["params"]  # flax's names: checkpoints carry over
  _close(fast.apply(variables, z, train=False), plain.apply(variables, z, train=False), 1.0)


@pytest.mark.slow  # the forms themselves are checked in the fast tier (test_conv_strided_...)
def test_keras_conv_discriminator_same_params_outputs_and_grads_either_impl():
  from genai_jax.models.mlp_gan import KerasConvDiscriminator
  x = jnp.asarray(np.random.default_rng(14).normal(size=(2, 8, 8, 1)), jnp.float32)
  fast, plain = (KerasConvDiscriminator(width=24, conv_impl=i) for i in ("subpixel", "xla"))
  variables = fast.init(jax.random.PRNGKey(0), x)
  chex.assert_trees_all_equal(variables, plain.init(jax.random.PRNGKey(0), x))
  assert {"Conv_0", "Conv_1"} <= set(variables["params"])  # nn.Conv's names
  loss = lambda d: lambda v, x: jnp.sum(jnp.sin(d.apply(v, x)))  # noqa: E731
  (out, grads), (ref, ref_grads) = jax.jit(lambda v, x: (
      (fast.apply(v, x), jax.grad(loss(fast), argnums=(0, 1))(v, x)),
      (plain.apply(v, x), jax.grad(loss(plain), argnums=(0, 1))(v, x))))(variables, x)
  _close(out, ref, 1.0)
  _close(grads, ref_grads, 1.0)  # the second conv's input gradient is the sub-pixel one


def test_keras_conv_bad_impl_names_the_key():
  from genai_jax.errors import ConfigError
  from genai_jax.models.mlp_gan import KerasConvGenerator
  with pytest.raises(ConfigError, match="model.conv_impl 'fast'") as e:
    KerasConvGenerator(width=8, image_size=8, conv_impl="fast").init(
        jax.random.PRNGKey(0), jnp.zeros((1, 4)))
  assert e.value.keys == ("model.conv_impl",)
