"""DiT, the diffusion transformer (Peebles & Xie 2023), on pixels or any [S, S, C] input.

``DiT(x [B, S, S, C], noise_label float [B], y int32 [B] or None) -> float32 [B, S, S, C]``: the
same interface as ``unet.UNet`` (the task decides whether the output is eps, v, EDM's F or a
velocity). The image is cut into (S / p)^2 patches of p x p x C, each linearly embedded to
``hidden`` (the paper's stride-p conv, written as a reshape and a Dense: the same map), plus a
fixed 2-D sin-cos position embedding. The conditioning c is an MLP of the noise label's
sinusoidal features (256 of them, as the paper) plus, for a class-conditional net, a learned
class embedding whose row ``num_classes`` is the null label of classifier-free guidance. Each of
``depth`` blocks is adaLN-Zero: from c, a zero-initialised Dense gives shift, scale and gate for
the attention and the MLP branch, x + gate * branch(LN(x) * (1 + scale) + shift), so every block
starts as the identity; the final layer (adaLN shift/scale, then a zero-initialised Dense to
p * p * C) starts at output zero, and unpatchify puts the patches back. The paper's learned
variance (2C output channels, VLB loss) is not built: the objectives here need C channels.

Parameters are float32 and carry logical axis names ('embed' is the model width, the axis FSDP
shards: ``train.sharding.LOGICAL_RULES``); ``dtype`` (e.g. bfloat16) is the compute dtype;
attention scores, the softmax and the output are float32. The residual stream is named
('batch', 'length', 'act_embed'), so under FSDP XLA splits every block over the batch.
"""

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from genai_jax.models import backend
from genai_jax.models.unet import timestep_embedding

FREQUENCY_DIM = 256  # sinusoidal features of the noise label (the paper's frequency_embedding_size)


def sincos_2d(grid: int, dim: int) -> np.ndarray:
  """float32 [grid * grid, dim] fixed position embedding of a grid x grid patch layout (MAE/DiT):
  the first dim / 2 features encode the patch's column, the rest its row, each as
  [sin(pos w_i), cos(pos w_i)] with w_i = 10000^(-i / (dim / 4)). ``dim`` must be divisible by 4."""
  omega = 1.0 / 10_000 ** (np.arange(dim // 4, dtype=np.float64) / (dim / 4))
  rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")

  def one(pos):  # [grid * grid] -> [grid * grid, dim / 2]
    args = pos.reshape(-1)[:, None] * omega[None]
    return np.concatenate([np.sin(args), np.cos(args)], axis=1)
  return np.concatenate([one(cols), one(rows)], axis=1).astype(np.float32)


def patchify(x: jax.Array, p: int) -> jax.Array:
  """[B, S, S, C] -> [B, (S/p)^2, p * p * C], patches in row-major order."""
  b, s, _, c = x.shape
  g = s // p
  return x.reshape(b, g, p, g, p, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, g * g, p * p * c)


def unpatchify(x: jax.Array, p: int, c: int) -> jax.Array:
  """[B, (S/p)^2, p * p * C] -> [B, S, S, C]: ``patchify``'s inverse."""
  b, t, _ = x.shape
  g = math.isqrt(t)
  return x.reshape(b, g, g, p, p, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, g * p, g * p, c)


def _xavier(names):
  return nn.with_logical_partitioning(nn.initializers.xavier_uniform(), names)


def _normal(names, std=0.02):
  return nn.with_logical_partitioning(nn.initializers.normal(std), names)


def _zeros(names):
  return nn.with_logical_partitioning(nn.initializers.zeros_init(), names)


def _dense(features, names, dtype, name, kernel_init=None):
  """A Dense on [N, D] with logical names (in, out) for its kernel and (out,) for its bias."""
  return nn.Dense(features, dtype=dtype, kernel_init=kernel_init or _xavier(names),
                  bias_init=_zeros(names[1:]), name=name)


def _constrain(x):
  """The residual stream [B, T, D] split over the batch (as ``transformer._constrain``)."""
  return nn.with_logical_constraint(x, ("batch", "length", "act_embed"))


def _layer_norm(dtype, name=None):
  return nn.LayerNorm(epsilon=1e-6, use_scale=False, use_bias=False, dtype=dtype, name=name)


def _modulate(x, shift, scale):
  """x [B, T, D] * (1 + scale) + shift, shift/scale [B, D]."""
  return x * (1 + scale[:, None]) + shift[:, None]


def attention_impl(dtype, head_dim: int) -> str:
  """cuDNN's fused attention on a GPU for bfloat16/float16 heads of at most 128 (a multiple of
  8), XLA's elsewhere (as ``transformer.attention_kernel``; an AOT compile for a GPU from a CPU
  host counts XLA's)."""
  if (backend.target() == "gpu" and dtype in (jnp.bfloat16, jnp.float16)
      and head_dim % 8 == 0 and head_dim <= 128):
    return "cudnn"
  return "xla"


class Block(nn.Module):
  """adaLN-Zero block: x [B, T, D], c [B, D] -> [B, T, D]; the identity at initialisation."""
  num_heads: int
  mlp_ratio: int = 4
  dtype: Any = None

  @nn.compact
  def __call__(self, x, c):
    b, t, d = x.shape
    n = self.num_heads
    mod = _dense(6 * d, ("embed", "mlp"), self.dtype, "adaLN", kernel_init=_zeros(("embed", "mlp")))
    shift1, scale1, gate1, shift2, scale2, gate2 = jnp.split(mod(nn.silu(c)), 6, axis=-1)

    h = _modulate(_layer_norm(self.dtype, "ln1")(x), shift1, scale1)
    qkv = _dense(3 * d, ("embed", "heads"), self.dtype, "qkv")(h.reshape(b * t, d))
    q, k, v = jnp.split(qkv.reshape(b, t, 3, n, d // n), 3, axis=2)
    h = jax.nn.dot_product_attention(q[:, :, 0], k[:, :, 0], v[:, :, 0],
                                     implementation=attention_impl(self.dtype, d // n))
    h = _dense(d, ("heads", "embed"), self.dtype, "proj")(h.reshape(b * t, d)).reshape(b, t, d)
    x = _constrain(x + gate1[:, None] * h)

    h = _modulate(_layer_norm(self.dtype, "ln2")(x), shift2, scale2).reshape(b * t, d)
    h = _dense(self.mlp_ratio * d, ("embed", "mlp"), self.dtype, "fc1")(h)
    h = nn.gelu(h, approximate=True)
    h = _dense(d, ("mlp", "embed"), self.dtype, "fc2")(h).reshape(b, t, d)
    return _constrain(x + gate2[:, None] * h)


class DiT(nn.Module):
  """See the module docstring. ``image_size`` must be divisible by ``patch_size``, ``hidden`` by
  ``num_heads`` and by 4 (the 2-D sin-cos embedding); the task checks both (one-line errors)."""
  channels: int = 3
  image_size: int = 32
  patch_size: int = 2
  hidden: int = 384
  depth: int = 12
  num_heads: int = 6
  mlp_ratio: int = 4
  num_classes: int = 0
  dtype: Any = None

  @nn.compact
  def __call__(self, x, noise_label, y=None, train: bool = False):
    del train  # no dropout in DiT
    d, p = self.hidden, self.patch_size
    cast = (lambda a: a) if self.dtype is None else (lambda a: a.astype(self.dtype))
    b = x.shape[0]
    patches = patchify(cast(x), p)  # [B, T, p * p * C]
    t = patches.shape[1]
    h = _dense(d, (None, "embed"), self.dtype, "patch_embed")(patches.reshape(b * t, -1))
    pos = sincos_2d(x.shape[1] // p, d)  # the input's grid (image_size: checked by the task)
    h = _constrain(h.reshape(b, t, d) + jnp.asarray(pos, h.dtype)[None])

    c = timestep_embedding(noise_label, FREQUENCY_DIM)
    c = _dense(d, (None, "embed"), self.dtype, "t_embed1", kernel_init=_normal((None, "embed")))(c)
    c = _dense(d, ("embed", "mlp"), self.dtype, "t_embed2",
               kernel_init=_normal(("embed", "mlp")))(nn.silu(c))
    if self.num_classes:
      if y is None:
        raise ValueError("a class-conditional DiT needs labels y (num_classes is the null label)")
      table = self.param("class_embed", _normal(("vocab", "embed")), (self.num_classes + 1, d))
      c = c + jnp.take(cast(table), y, axis=0)

    for i in range(self.depth):
      h = Block(self.num_heads, self.mlp_ratio, self.dtype, name=f"block_{i}")(h, c)

    shift, scale = jnp.split(_dense(2 * d, ("embed", "mlp"), self.dtype, "final_adaLN",
                                    kernel_init=_zeros(("embed", "mlp")))(nn.silu(c)), 2, axis=-1)
    h = _modulate(_layer_norm(self.dtype, "final_ln")(h), shift, scale).reshape(b * t, d)
    out = _dense(p * p * self.channels, ("embed", None), self.dtype, "final",
                 kernel_init=_zeros(("embed", None)))(h)
    return unpatchify(out.reshape(b, t, -1), p, self.channels).astype(jnp.float32)

