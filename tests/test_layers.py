"""The fast 4x4 stride-2 (transposed) convolutions equal the textbook lowering and PyTorch's."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genai_jax.models.layers import down_conv_4x4, up_conv_4x4


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
