"""A compact ADM-style U-Net (Dhariwal & Nichol 2021) for diffusion and flow matching.

``UNet(x [B, S, S, C], noise_label float [B], y int32 [B] or None) -> float [B, S, S, C]``: the
network output (eps, v, EDM's F or a velocity; the task decides). Residual blocks take a
time embedding (sinusoidal features of the noise label, then an MLP) plus, for a class-conditional
net, a learned class embedding; the embedding sets each block's GroupNorm scale and shift (ADM's
use_scale_shift_norm) or, with ``scale_shift=False``, is added to the block's activations before
that norm (DDPM). Self-attention at the resolutions in ``attention_res``; dropout inside the
residual blocks. Upsampling is nearest-neighbour then a 3x3 conv (no conv_transpose: slow
gradients on XLA CPU). The last conv of each residual branch, of attention and of the output is
zero-initialised, so the net starts as a near-identity stack.

Parameters are float32; ``dtype`` (e.g. bfloat16) is the compute dtype; attention softmax and
the output run in float32. Class index ``num_classes`` is the null label of classifier-free
guidance (label dropout in training), so the class table has num_classes + 1 rows.
"""

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def timestep_embedding(t: jax.Array, dim: int, max_period: float = 10_000.0) -> jax.Array:
  """float32 [B] -> float32 [B, dim]: [cos(t f_i), sin(t f_i)], f_i = max_period^(-i / (dim/2))."""
  half = dim // 2
  freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
  args = t.astype(jnp.float32)[:, None] * freqs[None]
  return jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)


def _groups(channels: int) -> int:
  return math.gcd(32, channels)


class ResBlock(nn.Module):
  """x [B, H, W, Cin], emb [B, E] -> [B, H, W, out_channels]. ``scale_shift``: the embedding sets
  the second GroupNorm's scale and shift (ADM); else it is added before that norm (DDPM)."""
  out_channels: int
  dropout: float = 0.0
  dtype: Any = None
  scale_shift: bool = True

  @nn.compact
  def __call__(self, x, emb, train: bool):
    h = nn.silu(nn.GroupNorm(_groups(x.shape[-1]), dtype=self.dtype)(x))
    h = nn.Conv(self.out_channels, (3, 3), dtype=self.dtype)(h)
    if self.scale_shift:
      mod = nn.Dense(2 * self.out_channels, dtype=self.dtype)(nn.silu(emb))
      scale, shift = jnp.split(mod, 2, -1)
      h = nn.GroupNorm(_groups(self.out_channels), dtype=self.dtype)(h)
      h = h * (1 + scale[:, None, None]) + shift[:, None, None]
    else:
      h = h + nn.Dense(self.out_channels, dtype=self.dtype)(nn.silu(emb))[:, None, None]
      h = nn.GroupNorm(_groups(self.out_channels), dtype=self.dtype)(h)
    h = nn.Dropout(self.dropout, deterministic=not train)(nn.silu(h))
    h = nn.Conv(self.out_channels, (3, 3), kernel_init=nn.initializers.zeros, dtype=self.dtype)(h)
    if x.shape[-1] != self.out_channels:
      x = nn.Conv(self.out_channels, (1, 1), dtype=self.dtype, name="skip")(x)
    return x + h


class Attention(nn.Module):
  num_heads: int = 1
  dtype: Any = None

  @nn.compact
  def __call__(self, x):
    b, h, w, c = x.shape
    qkv = nn.Dense(3 * c, dtype=self.dtype)(nn.GroupNorm(_groups(c), dtype=self.dtype)(x))
    q, k, v = jnp.split(qkv.reshape(b, h * w, 3, self.num_heads, c // self.num_heads), 3, axis=2)
    q, k, v = (a[:, :, 0] for a in (q, k, v))  # [B, HW, heads, d]
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k).astype(jnp.float32) / math.sqrt(c // self.num_heads)
    out = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits, -1).astype(v.dtype), v)
    out = nn.Dense(c, kernel_init=nn.initializers.zeros, dtype=self.dtype)(out.reshape(b, h, w, c))
    return x + out


class UNet(nn.Module):
  """See the module docstring. Resolution halves after each level of ``channel_mult`` but the
  last (image_size must be divisible by 2^(len(channel_mult) - 1))."""
  channels: int = 3
  width: int = 64
  channel_mult: Sequence[int] = (1, 2, 2)
  num_res_blocks: int = 2
  attention_res: Sequence[int] = (16,)
  dropout: float = 0.0
  num_heads: int = 1
  num_classes: int = 0
  dtype: Any = None
  scale_shift: bool = True  # ADM's embedding as GroupNorm scale and shift; False: DDPM's addition

  @nn.compact
  def __call__(self, x, noise_label, y=None, train: bool = False):
    cast = (lambda a: a) if self.dtype is None else (lambda a: a.astype(self.dtype))
    emb_dim = 4 * self.width
    emb = timestep_embedding(noise_label, self.width)
    emb = nn.Dense(emb_dim, dtype=self.dtype)(emb)
    emb = nn.Dense(emb_dim, dtype=self.dtype)(nn.silu(emb))
    if self.num_classes:
      if y is None:
        raise ValueError("a class-conditional UNet needs labels y (num_classes is the null label)")
      emb = emb + nn.Embed(self.num_classes + 1, emb_dim, dtype=self.dtype)(y)

    h = nn.Conv(self.width, (3, 3), dtype=self.dtype)(cast(x))
    skips = [h]
    res = x.shape[1]
    for level, mult in enumerate(self.channel_mult):
      for _ in range(self.num_res_blocks):
        h = ResBlock(self.width * mult, self.dropout, self.dtype, self.scale_shift)(h, emb, train)
        if res in self.attention_res:
          h = Attention(self.num_heads, self.dtype)(h)
        skips.append(h)
      if level != len(self.channel_mult) - 1:
        h = nn.Conv(h.shape[-1], (3, 3), strides=(2, 2), dtype=self.dtype)(h)
        res //= 2
        skips.append(h)

    h = ResBlock(h.shape[-1], self.dropout, self.dtype, self.scale_shift)(h, emb, train)
    h = Attention(self.num_heads, self.dtype)(h)
    h = ResBlock(h.shape[-1], self.dropout, self.dtype, self.scale_shift)(h, emb, train)

    for level, mult in reversed(list(enumerate(self.channel_mult))):
      for _ in range(self.num_res_blocks + 1):
        h = jnp.concatenate([h, skips.pop()], axis=-1)
        h = ResBlock(self.width * mult, self.dropout, self.dtype, self.scale_shift)(h, emb, train)
        if res in self.attention_res:
          h = Attention(self.num_heads, self.dtype)(h)
      if level:
        h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)
        h = nn.Conv(h.shape[-1], (3, 3), dtype=self.dtype)(h)
        res *= 2

    h = nn.silu(nn.GroupNorm(_groups(h.shape[-1]), dtype=self.dtype)(h))
    out = nn.Conv(self.channels, (3, 3), kernel_init=nn.initializers.zeros, dtype=self.dtype)(h)
    return out.astype(jnp.float32)
