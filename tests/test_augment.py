"""DiffAugment: shapes, differentiability, cutout's area, the identity policy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genai_jax import augment
from genai_jax.errors import ConfigError


def _images(b=16, s=16, c=3, seed=0):
  return jax.random.uniform(jax.random.PRNGKey(seed), (b, s, s, c), minval=-1, maxval=1)


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "translation,cutout,color"])
def test_shapes_dtype_and_gradients_flow(policy):
  x = _images()
  y = augment.apply(jax.random.PRNGKey(1), x, policy)
  assert y.shape == x.shape and y.dtype == x.dtype
  assert not np.allclose(y, x)
  g = jax.grad(lambda v: (augment.apply(jax.random.PRNGKey(1), v, policy) ** 2).sum())(x)
  assert np.isfinite(g).all() and np.abs(g).sum() > 0  # G's gradient reaches the images


def test_empty_policy_is_the_identity_and_unknown_ops_are_config_errors():
  x = _images()
  np.testing.assert_array_equal(augment.apply(jax.random.PRNGKey(0), x, ""), x)
  with pytest.raises(ConfigError, match="augment.policy"):
    augment.apply(jax.random.PRNGKey(0), x, "translation,rotate")


def test_cutout_zeroes_a_half_side_box_with_the_expected_mean_area():
  s, n = 16, 4096
  x = jnp.ones((n, s, s, 1))
  zero = np.asarray(augment.cutout(jax.random.PRNGKey(3), x) == 0)[..., 0]
  # Every zeroed region is one box, at most 8x8 (half the side), fully 8x8 when not clipped.
  rows, cols = zero.any(2).sum(1), zero.any(1).sum(1)
  np.testing.assert_array_equal(zero.sum((1, 2)), rows * cols)
  assert rows.max() == cols.max() == 8 and (zero.sum((1, 2)) == 64).any()
  # The official centre offsets are uniform in [0, s + 1 - size % 2): the expected clipped side.
  size = 8
  sides = [min(o - size // 2 + size, s) - max(o - size // 2, 0) for o in range(s + 1)]
  expected = np.mean(sides) ** 2 / s**2  # rows and columns drawn independently
  assert abs(zero.mean() - expected) < 0.01, (zero.mean(), expected)


def test_translation_shifts_by_whole_pixels_with_zero_fill():
  x = _images(b=64, s=16, c=1)
  y = np.asarray(augment.translation(jax.random.PRNGKey(5), x))
  xs = np.asarray(x)
  for i in range(len(xs)):  # each output is a shifted copy of its input by at most 2 pixels
    found = any(
        np.array_equal(y[i], np.pad(xs[i], ((2, 2), (2, 2), (0, 0)))[2 - dy:18 - dy, 2 - dx:18 - dx])
        for dy in range(-2, 3) for dx in range(-2, 3))
    assert found, i


def test_color_keeps_the_per_image_mean_under_contrast_only():
  x = _images()
  y = augment.contrast(jax.random.PRNGKey(0), x)
  np.testing.assert_allclose(y.mean((1, 2, 3)), x.mean((1, 2, 3)), atol=1e-5)
