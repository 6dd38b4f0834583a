"""DCGAN / MNIST GAN shapes and parameter counts; GAN losses against hand-computed values."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genai_jax.models import dcgan, mlp_gan
from genai_jax.objectives import gan as gan_losses


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_dcgan_parameter_counts_match_the_paper_network():
  g, d = dcgan.Generator(width=64, image_size=64), dcgan.Discriminator(width=64)
  g_vars = jax.eval_shape(lambda: g.init(jax.random.PRNGKey(0), jnp.zeros((2, 100)), train=False))
  d_vars = jax.eval_shape(lambda: d.init(jax.random.PRNGKey(0), jnp.zeros((2, 64, 64, 3)), train=False))
  # PyTorch DCGAN (ngf=ndf=64, nz=100, bias=False): G 3,576,704 and D 2,765,568 parameters.
  assert _count(g_vars["params"]) == 3_576_704
  assert _count(d_vars["params"]) == 2_765_568
  feats = [v["kernel"].shape[-1] for k, v in sorted(g_vars["params"].items()) if k.startswith("up")]
  assert feats == [256, 128, 64]
  assert g_vars["params"]["project"].shape == (4, 4, 100, 512)


# 32 px adds a layer pair, not a code path: in the slow tier (the fast tier's 3 minutes).
@pytest.mark.parametrize("size,width", [pytest.param(32, 8, marks=pytest.mark.slow), (16, 4)])
def test_dcgan_shapes_and_ranges(size, width):
  g, d = dcgan.Generator(width=width, image_size=size, channels=1), dcgan.Discriminator(width=width)
  z = jax.random.normal(jax.random.PRNGKey(0), (4, 100))
  # jitted: one compile per call instead of op-by-op dispatch (the test's cost on a CPU)
  gv = jax.jit(lambda k, z: g.init(k, z, train=False))(jax.random.PRNGKey(1), z)
  x = jax.jit(lambda v, z: g.apply(v, z, train=False))(gv, z)
  chex.assert_shape(x, (4, size, size, 1))
  assert float(jnp.abs(x).max()) <= 1.0
  dv = jax.jit(lambda k, x: d.init(k, x, train=False))(jax.random.PRNGKey(2), x)
  logits = jax.jit(lambda v, x: d.apply(v, x, train=False))(dv, x)
  chex.assert_shape(logits, (4,))
  chex.assert_type(logits, jnp.float32)


def test_dcgan_bfloat16_compute_keeps_float32_params_and_outputs():
  g = dcgan.Generator(width=4, image_size=16, dtype=jnp.bfloat16)
  z = jnp.ones((2, 100))
  v = g.init(jax.random.PRNGKey(0), z, train=False)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(v))
  assert g.apply(v, z, train=False).dtype == jnp.float32


def test_bad_image_size_is_a_clear_error():
  with pytest.raises(ValueError, match="power of two"):
    dcgan.Generator(image_size=48).init(jax.random.PRNGKey(0), jnp.zeros((1, 100)))


@pytest.mark.parametrize("pair", [(mlp_gan.MLPGenerator(), mlp_gan.MLPDiscriminator()),
                                  pytest.param((mlp_gan.ConvGenerator(width=8),
                                                mlp_gan.ConvDiscriminator(width=8)),
                                               marks=pytest.mark.slow)])
def test_mnist_gans_shapes(pair):
  g, d = pair
  z = jnp.ones((3, 100))
  x = g.apply(g.init(jax.random.PRNGKey(0), z, train=False), z, train=False)
  chex.assert_shape(x, (3, 28, 28, 1))
  logits = d.apply(d.init(jax.random.PRNGKey(1), x, train=False), x, train=False)
  chex.assert_shape(logits, (3,))


def test_non_saturating_losses_against_hand_computed_values():
  real, fake = jnp.array([0.0, 2.0]), jnp.array([-1.0, 1.0])
  sig = lambda t: 1 / (1 + math.exp(-t))
  # L_D = -[log D(x) + log(1 - D(G(z)))], each term averaged over the batch.
  want_d = (-(math.log(sig(0)) + math.log(sig(2))) / 2
            - (math.log(1 - sig(-1)) + math.log(1 - sig(1))) / 2)
  want_g = -(math.log(sig(-1)) + math.log(sig(1))) / 2  # L_G = -log D(G(z))
  loss = gan_losses.non_saturating()
  np.testing.assert_allclose(loss.d_loss(real, fake), want_d, rtol=1e-6)
  np.testing.assert_allclose(loss.g_loss(fake), want_g, rtol=1e-6)
  # Written out: (ln 2 + ln(1+e^-2))/2 + (ln(1+e^-1) + ln(1+e))/2 = 0.4100 + 0.8133.
  assert abs(want_d - 1.2233) < 1e-4


def test_losses_are_stable_for_extreme_logits():
  loss = gan_losses.non_saturating()
  big = jnp.array([1e4, -1e4])
  assert jnp.isfinite(loss.d_loss(big, -big)) and jnp.isfinite(loss.g_loss(-big))
  np.testing.assert_allclose(loss.g_loss(jnp.array([-100.0])), 100.0, rtol=1e-6)


def test_hinge_and_least_squares_values():
  real, fake = jnp.array([0.5, 2.0]), jnp.array([-2.0, 0.0])
  h = gan_losses.hinge()
  np.testing.assert_allclose(h.d_loss(real, fake), (0.5 + 0) / 2 + (0 + 1) / 2, rtol=1e-6)
  np.testing.assert_allclose(h.g_loss(fake), 1.0, rtol=1e-6)
  ls = gan_losses.least_squares()
  np.testing.assert_allclose(ls.d_loss(real, fake), 0.5 * (0.25 + 1) / 2 + 0.5 * (4 + 0) / 2, rtol=1e-6)
  np.testing.assert_allclose(ls.g_loss(fake), 0.5 * (9 + 1) / 2, rtol=1e-6)
