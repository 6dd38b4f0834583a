"""WaveGAN's networks: the paper's shapes and sizes, and phase shuffle."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genai_jax.models import wavegan


def _count(tree):
  return sum(x.size for x in jax.tree.leaves(tree))


def test_paper_geometry_and_parameter_counts():
  g, d = wavegan.Generator(), wavegan.Discriminator()
  key = jax.random.PRNGKey(0)
  g_vars = jax.eval_shape(g.init, key, jnp.zeros((2, 100)))
  d_vars = jax.eval_shape(d.init, key, jnp.zeros((2, 16_384, 1)))
  assert jax.eval_shape(g.apply, g_vars, jnp.zeros((2, 100))).shape == (2, 16_384, 1)
  assert jax.eval_shape(d.apply, d_vars, jnp.zeros((2, 16_384, 1))).shape == (2,)
  # Dense 100 -> 16*1024, then 25-tap transposed convs 1024 -> 512 -> 256 -> 128 -> 64 -> 1
  widths = [1024, 512, 256, 128, 64, 1]
  g_want = 100 * 16 * 1024 + 16 * 1024 + sum(25 * a * b + b for a, b in zip(widths, widths[1:]))
  d_widths = [1, 64, 128, 256, 512, 1024]
  d_want = sum(25 * a * b + b for a, b in zip(d_widths, d_widths[1:])) + 16 * 1024 + 1
  assert (_count(g_vars), _count(d_vars)) == (g_want, d_want)
  assert wavegan.output_length(4) == 4_096


def test_phase_shuffle_shifts_each_example_with_reflection():
  x = jnp.arange(2 * 8 * 1, dtype=jnp.float32).reshape(2, 8, 1)
  y = np.asarray(wavegan.phase_shuffle(x, jax.random.PRNGKey(3), 2))
  for row, out in zip(np.asarray(x)[..., 0], y[..., 0]):
    padded = np.pad(row, 2, mode="reflect")
    assert any(np.array_equal(out, padded[2 - s:2 - s + 8]) for s in range(-2, 3))
  many = jnp.broadcast_to(x[:1], (64, 8, 1))
  out = np.asarray(wavegan.phase_shuffle(many, jax.random.PRNGKey(0), 2))[:, 4, 0]
  assert set((out - 4).astype(int)) == {-2, -1, 0, 1, 2}  # interior samples move by the shift


def test_small_networks_run_and_d_shuffles_only_with_its_rng():
  g = wavegan.Generator(width=4, layers=2)
  d = wavegan.Discriminator(width=4, layers=2)
  key = jax.random.PRNGKey(0)
  z = jax.random.normal(key, (3, 100))
  g_vars = jax.jit(g.init)(key, z)
  wave = jax.jit(g.apply)(g_vars, z)
  assert wave.shape == (3, 256, 1) and float(jnp.abs(wave).max()) <= 1.0
  d_vars = jax.jit(lambda k, w: d.init(k, w, train=False))(key, wave)
  plain = d.apply(d_vars, wave)
  assert jnp.array_equal(plain, d.apply(d_vars, wave, train=False))  # no rng: identity shuffle
  shuffled = jax.jit(lambda k: d.apply(d_vars, wave, rngs={"phase_shuffle": k}))(key)
  assert not jnp.allclose(shuffled, plain)


@pytest.mark.slow
def test_subpixel_layers_equal_the_textbook_strided_convolutions_with_gradients():
  key = jax.random.PRNGKey(1)
  z = jax.random.normal(key, (2, 100))
  wave = jax.random.uniform(key, (2, 256, 1), minval=-1, maxval=1)
  for make, x in ((lambda impl: wavegan.Generator(width=4, layers=2, conv_impl=impl), z),
                  (lambda impl: wavegan.Discriminator(width=4, layers=2, conv_impl=impl), wave)):
    fast, slow = make("subpixel"), make("xla")
    variables = fast.init(key, x, train=False)
    # Same parameter tree as the textbook layers, so checkpoints do not depend on conv_impl.
    assert jax.tree.structure(variables) == jax.tree.structure(slow.init(key, x, train=False))
    loss = lambda m: lambda v, x: jnp.sum(jnp.sin(3.0 * m.apply(v, x, train=False)))
    (lf, (gf, xf)), (ls, (gs, xs)) = [
        jax.jit(jax.value_and_grad(loss(m), argnums=(0, 1)))(variables, x) for m in (fast, slow)]
    np.testing.assert_allclose(lf, ls, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(xf, xs, rtol=1e-4, atol=1e-5)
    for a, b in zip(jax.tree.leaves(gf), jax.tree.leaves(gs)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_post_filter_adds_one_learned_fir_filter_and_keeps_clips_in_range():
  key = jax.random.PRNGKey(2)
  z = jax.random.normal(key, (2, 100))
  plain, filtered = wavegan.Generator(width=4, layers=2), wavegan.Generator(width=4, layers=2,
                                                                           post_filter=16)
  v_plain, v_filtered = plain.init(key, z), filtered.init(key, z)
  assert _count(v_filtered) - _count(v_plain) == 16  # 16 taps, 1 -> 1 channel, no bias
  wave = filtered.apply(v_filtered, z)
  assert wave.shape == (2, 256, 1) and float(jnp.abs(wave).max()) <= 1.0
