"""WaveGAN's generator and discriminator (Donahue, McAuley & Puckette, ICLR 2019, Table 2/3).

G: z [B, z_dim] -> Dense(16 * 16d) -> [B, 16, 16d] -> ReLU -> ``layers`` transposed 1-D
convolutions (25 taps, stride 4; widths 8d, 4d, 2d, d, then ``channels``), ReLU between them and
tanh at the end -> waveform [B, 16 * 4**layers, channels] in [-1, 1]. With the paper's 5 layers
and d = 64: 16,384 samples (1.02 s at 16 kHz). Fewer layers give shorter clips (4: 4,096), with
the widths of the last ``layers`` stages (so the generator ends at width d).

D: waveform [B, T, C] -> ``layers`` 1-D convolutions (25 taps, stride 4; widths d, 2d, 4d, 8d,
16d), LeakyReLU(0.2) after each and phase shuffle (n = 2) after each but the last -> flatten ->
Dense(1) logit [B]. No batch norm (WGAN-GP's gradient penalty is per example).

Phase shuffle shifts each example's feature map in time by a uniform integer in [-n, n], filling
with the reflection of the signal, so D cannot key on the periodic artifacts of transposed
convolutions. It draws from the ``'phase_shuffle'`` rng stream in training; without that stream
(evaluation, or a caller that passes none) it is the identity.
"""

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

KERNEL, STRIDE = 25, 4


def phase_shuffle(x: jax.Array, rng: jax.Array, n: int) -> jax.Array:
  """x float [B, T, C] -> each example shifted by its own uniform integer in [-n, n] (reflect
  padding), same shape."""
  if n == 0:
    return x
  shifts = jax.random.randint(rng, (x.shape[0],), -n, n + 1)
  padded = jnp.pad(x, ((0, 0), (n, n), (0, 0)), mode="reflect")
  take = lambda row, s: jax.lax.dynamic_slice_in_dim(row, n - s, x.shape[1], axis=0)
  return jax.vmap(take)(padded, shifts)


class Generator(nn.Module):
  width: int = 64  # d
  layers: int = 5
  channels: int = 1
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    del train  # no batch norm, no dropout
    # 8d, 4d, 2d, d, channels for 5 layers: each stage halves the width of the one before
    widths = [self.width * 2 ** k for k in range(self.layers - 2, -1, -1)] + [self.channels]
    x = nn.Dense(16 * 2 * widths[0], dtype=self.dtype)(z)  # 16 x 16d for the paper's 5 layers
    x = nn.relu(x.reshape(z.shape[0], 16, 2 * widths[0]))
    for i, w in enumerate(widths):
      x = nn.ConvTranspose(w, (KERNEL,), strides=(STRIDE,), padding="SAME", dtype=self.dtype)(x)
      x = jnp.tanh(x) if i == len(widths) - 1 else nn.relu(x)
    return x.astype(jnp.float32)


class Discriminator(nn.Module):
  width: int = 64  # d
  layers: int = 5
  shuffle: int = 2  # phase shuffle n
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    for i in range(self.layers):
      x = nn.Conv(self.width * 2 ** i, (KERNEL,), strides=(STRIDE,), padding="SAME",
                  dtype=self.dtype)(x)
      x = nn.leaky_relu(x, 0.2)
      if i < self.layers - 1 and train and self.has_rng("phase_shuffle"):
        x = phase_shuffle(x, self.make_rng("phase_shuffle"), self.shuffle)
    x = x.reshape(x.shape[0], -1)
    return nn.Dense(1, dtype=self.dtype)(x).reshape(-1).astype(jnp.float32)


def output_length(layers: int) -> int:
  """Samples per generated clip: 16 * 4**layers (16,384 for the paper's 5)."""
  return 16 * STRIDE ** layers
