"""WaveGAN's generator and discriminator (Donahue, McAuley & Puckette, ICLR 2019, Table 2/3).

G: z [B, z_dim] -> Dense(16 * 16d) -> [B, 16, 16d] -> ReLU -> ``layers`` transposed 1-D
convolutions (25 taps, stride 4; widths 8d, 4d, 2d, d, then ``channels``), ReLU between them and
tanh at the end -> waveform [B, 16 * 4**layers, channels] in [-1, 1]. With the paper's 5 layers
and d = 64: 16,384 samples (1.02 s at 16 kHz). Fewer layers give shorter clips (4: 4,096), with
the widths of the last ``layers`` stages (so the generator ends at width d).

``post_filter`` = n > 0 adds the paper's optional learned post-processing filter (its section
on artifacts: a one-channel n-tap convolution, 512 in the paper, that can learn to remove the
transposed convolutions' periodic noise), applied here before the tanh so clips stay in [-1, 1].

D: waveform [B, T, C] -> ``layers`` 1-D convolutions (25 taps, stride 4; widths d, 2d, 4d, 8d,
16d), LeakyReLU(0.2) after each and phase shuffle (n = 2) after each but the last -> flatten ->
Dense(1) logit [B]. No batch norm (WGAN-GP's gradient penalty is per example).

Both networks compute their strided layers in a form XLA's CPU backend runs fast, with the
parameters (names, shapes, initialisers) of ``nn.ConvTranspose`` / ``nn.Conv`` unchanged:
``conv_impl='subpixel'`` (default) runs G's transposed convolutions as stride-1 7-tap
convolutions to 4x the channels then depth-to-space, and D's strided convolutions as
space-to-depth then a stride-1 7-tap convolution, exactly (the 25 taps split into 4 phases); no
dilated convolution is left in the forward or the backward pass. ``'xla'`` is the textbook
lowering, for comparison (tests check both agree).

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
CONV_IMPLS = ("subpixel", "xla")
# Taps of the stride-1 form: the 25 taps, split into 4 phases, span 7 positions (offsets -3..3).
_HALF = 3


def _phase_kernel(kernel: jax.Array, offset) -> jax.Array:
  """[25, Cin, Cout] -> [7, 4, Cin, Cout]: entry (j, r) is tap ``4 (j - 3) + offset(r)`` of
  ``kernel`` (zero where that falls outside 0..24); ``offset`` maps phase r to its tap offset."""
  j = jnp.arange(2 * _HALF + 1)[:, None] - _HALF
  taps = 4 * j + jnp.asarray([offset(r) for r in range(STRIDE)])[None, :]
  valid = (taps >= 0) & (taps < KERNEL)
  return jnp.where(valid[..., None, None], kernel[jnp.clip(taps, 0, KERNEL - 1)], 0)


def _conv1d(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """SAME stride-1 1-D convolution of x [B, T, C] with kernel [7, C, F] -> [B, T, F]."""
  return jax.lax.conv_general_dilated(x, kernel, (1,), [(_HALF, _HALF)],
                                      dimension_numbers=("NWC", "WIO", "NWC"))


class _UpConv(nn.Module):
  """``nn.ConvTranspose(features, (25,), strides=(4,), padding='SAME')``, same parameters."""
  features: int
  impl: str = "subpixel"
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (KERNEL, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    if self.impl == "xla":
      y = jax.lax.conv_transpose(x, kernel, (STRIDE,), "SAME", dimension_numbers=("NWC", "WIO", "NWC"))
      return y + bias
    # lax's SAME transposed conv pads the 4x-dilated input by 14 in front, so output 4q + r
    # reads input q + j through tap 4j + 14 - r.
    k = _phase_kernel(kernel, lambda r: 14 - r)  # [7, 4, Cin, Cout]
    k = jnp.transpose(k, (0, 2, 1, 3)).reshape(k.shape[0], x.shape[-1], STRIDE * self.features)
    y = _conv1d(x, k)  # [B, T, 4 * Cout], phase-major channels
    return y.reshape(x.shape[0], x.shape[1] * STRIDE, self.features) + bias


class _DownConv(nn.Module):
  """``nn.Conv(features, (25,), strides=(4,), padding='SAME')``, same parameters."""
  features: int
  impl: str = "subpixel"
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (KERNEL, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    if self.impl == "xla":
      y = jax.lax.conv_general_dilated(x, kernel, (STRIDE,), "SAME",
                                       dimension_numbers=("NWC", "WIO", "NWC"))
      return y + bias
    if x.shape[1] % STRIDE:
      raise ValueError(f"clip length {x.shape[1]} is not a multiple of {STRIDE}")
    # SAME with stride 4 pads 10 in front: output o reads input 4o + k - 10 = 4(o + j) + r,
    # i.e. space-to-depth row o + j, phase r, through tap 4j + r + 10.
    b, t, c = x.shape
    k = _phase_kernel(kernel, lambda r: r + 10).reshape(2 * _HALF + 1, STRIDE * c, self.features)
    return _conv1d(x.reshape(b, t // STRIDE, STRIDE * c), k) + bias


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
  conv_impl: str = "subpixel"
  post_filter: int = 0  # taps of the learned post-processing filter (0: none; the paper's: 512)

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    del train  # no batch norm, no dropout
    # 8d, 4d, 2d, d, channels for 5 layers: each stage halves the width of the one before
    widths = [self.width * 2 ** k for k in range(self.layers - 2, -1, -1)] + [self.channels]
    x = nn.Dense(16 * 2 * widths[0], dtype=self.dtype)(z)  # 16 x 16d for the paper's 5 layers
    x = nn.relu(x.reshape(z.shape[0], 16, 2 * widths[0]))
    for i, w in enumerate(widths):
      x = _UpConv(w, self.conv_impl, self.dtype, name=f"ConvTranspose_{i}")(x)
      if i < len(widths) - 1:
        x = nn.relu(x)
    if self.post_filter:
      x = nn.Conv(self.channels, (self.post_filter,), padding="SAME", use_bias=False,
                  dtype=self.dtype, name="post_filter")(x)
    return jnp.tanh(x).astype(jnp.float32)


class Discriminator(nn.Module):
  width: int = 64  # d
  layers: int = 5
  shuffle: int = 2  # phase shuffle n
  dtype: Optional[Any] = None
  conv_impl: str = "subpixel"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    for i in range(self.layers):
      x = _DownConv(self.width * 2 ** i, self.conv_impl, self.dtype, name=f"Conv_{i}")(x)
      x = nn.leaky_relu(x, 0.2)
      if i < self.layers - 1 and train and self.has_rng("phase_shuffle"):
        x = phase_shuffle(x, self.make_rng("phase_shuffle"), self.shuffle)
    x = x.reshape(x.shape[0], -1)
    return nn.Dense(1, dtype=self.dtype)(x).reshape(-1).astype(jnp.float32)


def output_length(layers: int) -> int:
  """Samples per generated clip: 16 * 4**layers (16,384 for the paper's 5)."""
  return 16 * STRIDE ** layers
