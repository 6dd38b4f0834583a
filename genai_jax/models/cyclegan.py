"""CycleGAN's networks (Zhu et al. 2017), layer for layer as the authors' PyTorch code.

Generator (Johnson et al.'s ResNet, the paper's appendix 7.2): c7s1-64, d128, d256, R256 x N,
u128, u64, c7s1-3, with N = 9 residual blocks for 256x256 images and 6 for 128x128 and smaller.
c7s1-k is reflection pad 3 + 7x7 conv, instance norm, ReLU; dk a 3x3 stride-2 conv (zero pad 1),
IN, ReLU; Rk two reflection-padded 3x3 convs with IN (ReLU between) plus the skip; uk a 3x3
stride-2 transposed conv (padding 1, output padding 1), IN, ReLU; the last c7s1 ends in tanh
instead of IN + ReLU. At width 64, 9 blocks and RGB this is 11,378,179 parameters, the official
code's "11.378 M".

Discriminator (the 70x70 PatchGAN): C64-C128-C256-C512 with 4x4 convs (stride 2, the last
stride 1; zero pad 1), LeakyReLU(0.2), instance norm on all but the first, then a 4x4 stride-1
conv to one logit per patch. At width 64 and RGB: 2,764,737 parameters ("2.765 M"); a 256x256
image gives a 30x30 grid of logits, each seeing a 70x70 patch (``receptive_field``).

As in the official code: instance norm without affine parameters or running statistics (so
convs keep their biases), weights ~ N(0, 0.02), biases 0. ``norm='none'`` drops the norms (the
official option; tests use it to measure the receptive field from gradients).
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from genai_jax.errors import ConfigError

INIT = nn.initializers.normal(0.02)
NORMS = ("instance", "none")
UPSAMPLE_IMPLS = ("subpixel", "xla")


def default_res_blocks(image_size: int) -> int:
  """The paper's choice: 9 residual blocks for 256x256 (and larger) images, 6 below."""
  return 9 if image_size >= 256 else 6


def receptive_field(d_layers: int) -> int:
  """The side, in pixels, of the input patch one PatchGAN logit sees (70 for d_layers=3): walk
  the (kernel, stride) list of ``PatchDiscriminator`` back from one output pixel."""
  size = 1
  for kernel, stride in reversed(_patch_layers(d_layers)):
    size = (size - 1) * stride + kernel
  return size


def patch_grid(image_size: int, d_layers: int) -> int:
  """The side of the PatchGAN's logit grid for ``image_size`` inputs (30 for 256 and 3 layers);
  a ConfigError when the image is too small for that many layers."""
  side = image_size
  for kernel, stride in _patch_layers(d_layers):
    side = (side + 2 - kernel) // stride + 1
  if side < 1 or d_layers < 1:
    raise ConfigError(f"a {image_size}x{image_size} image is too small for a PatchGAN with "
                      f"d_layers={d_layers}; lower model.d_layers (2: 34x34 patches)",
                      keys=("model.d_layers",))
  return side


def _patch_layers(d_layers: int) -> list:
  """(kernel, stride) of each PatchGAN conv: ``d_layers`` stride-2 convs, then two stride-1."""
  return [(4, 2)] * d_layers + [(4, 1), (4, 1)]


def _check(norm: str) -> None:
  if norm not in NORMS:
    raise ConfigError(f"unknown CycleGAN norm {norm!r}; set model.norm to one of {list(NORMS)}",
                      keys=("model.norm",))


def _norm(kind: str, dtype):
  if kind == "none":
    return lambda x: x
  # PyTorch InstanceNorm2d defaults: eps 1e-5, affine=False, no running statistics.
  return nn.InstanceNorm(epsilon=1e-5, use_scale=False, use_bias=False, dtype=dtype)


def _reflect(x: jax.Array, p: int) -> jax.Array:
  """ReflectionPad2d(p): numpy's 'reflect' mirrors without repeating the edge, as PyTorch."""
  return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")


def up_conv_3x3(x: jax.Array, w: jax.Array, impl: str = "subpixel") -> jax.Array:
  """ConvTranspose2d(kernel 3, stride 2, padding 1, output_padding 1) in PyTorch semantics.

  Args:
    x: [B, H, W, Cin]. w: [3, 3, Cin, Cout]; ``w[kh, kw, ci, co]`` is PyTorch's
      ``weight[ci, co, kh, kw]``. impl: 'subpixel' or 'xla' (a dilated convolution, for reference).

  Returns:
    [B, 2H, 2W, Cout]. Output pixel o = 2i - 1 + k, so even outputs read input m with tap 1 and
    odd outputs read m with tap 2 and m + 1 with tap 0: 'subpixel' computes the four output
    phases as matmuls on shifted views and interleaves them (XLA on CPU is slow at the gradient
    of a dilated convolution; this is exact and has the same FLOPs).
  """
  if impl == "xla":
    return lax.conv_general_dilated(x, w[::-1, ::-1], (1, 1), ((1, 2), (1, 2)),
                                    lhs_dilation=(2, 2),
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))
  if impl != "subpixel":
    raise ConfigError(f"unknown upsample impl {impl!r}; set model.upsample_impl to one "
                      f"of {list(UPSAMPLE_IMPLS)}", keys=("model.upsample_impl",))
  b, h, wd, cin = x.shape
  xp = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))
  taps = (((0, 1),), ((0, 2), (1, 0)))  # phase -> ((input offset, kernel tap), ...)
  rows = []
  for r in range(2):
    cols = []
    for s in range(2):
      out = None
      for di, ki in taps[r]:
        for dj, kj in taps[s]:
          term = xp[:, di:di + h, dj:dj + wd].reshape(-1, cin) @ w[ki, kj]
          out = term if out is None else out + term
      cols.append(out.reshape(b, h, wd, -1))
    rows.append(jnp.stack(cols, axis=3))  # [B, H, W, 2(s), C]
  y = jnp.stack(rows, axis=2)  # [B, H, 2(r), W, 2(s), C]
  return y.reshape(b, 2 * h, 2 * wd, -1)


class UpConv3x3(nn.Module):
  """The generator's uk transposed convolution (with bias, as the official code under IN)."""
  features: int
  impl: str = "subpixel"
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    w = self.param("kernel", INIT, (3, 3, x.shape[-1], self.features))
    b = self.param("bias", nn.initializers.zeros, (self.features,))
    dtype = self.dtype or x.dtype
    return up_conv_3x3(x.astype(dtype), w.astype(dtype), self.impl) + b.astype(dtype)


class ResnetGenerator(nn.Module):
  """images [B, S, S, C] in [-1, 1] -> translated images [B, S, S, channels] in [-1, 1]
  (float32); S a multiple of 4."""
  channels: int = 3
  width: int = 64  # ngf
  res_blocks: int = 9
  norm: str = "instance"
  upsample_impl: str = "subpixel"
  dtype: Any = None  # compute dtype; params stay float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    _check(self.norm)
    x = x if self.dtype is None else x.astype(self.dtype)
    conv = lambda f, k, s=1, p="VALID", name=None: nn.Conv(  # noqa: E731
        f, (k, k), (s, s), padding=p, kernel_init=INIT, dtype=self.dtype, name=name)
    norm = lambda: _norm(self.norm, self.dtype)  # noqa: E731
    w = self.width
    x = nn.relu(norm()(conv(w, 7, name="c7s1_in")(_reflect(x, 3))))
    for i, f in enumerate((2 * w, 4 * w)):
      x = nn.relu(norm()(conv(f, 3, 2, ((1, 1), (1, 1)), name=f"down{i}")(x)))
    for i in range(self.res_blocks):
      y = nn.relu(norm()(conv(4 * w, 3, name=f"res{i}_a")(_reflect(x, 1))))
      x = x + norm()(conv(4 * w, 3, name=f"res{i}_b")(_reflect(y, 1)))
    for i, f in enumerate((2 * w, w)):
      x = nn.relu(norm()(UpConv3x3(f, self.upsample_impl, self.dtype, name=f"up{i}")(x)))
    x = conv(self.channels, 7, name="c7s1_out")(_reflect(x, 3))
    return jnp.tanh(x).astype(jnp.float32)


class PatchDiscriminator(nn.Module):
  """images [B, S, S, C] -> patch logits float32 [B, S', S'] (> 0: real); S' = S/8 - 2 for the
  70x70 PatchGAN (30 at S = 256). ``layers`` stride-2 convs (3: 70x70 patches, 2: 34x34)."""
  width: int = 64  # ndf
  layers: int = 3
  norm: str = "instance"
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    _check(self.norm)
    x = x if self.dtype is None else x.astype(self.dtype)
    specs = _patch_layers(self.layers)
    for i, (k, s) in enumerate(specs):
      last = i == len(specs) - 1
      feats = 1 if last else self.width * min(2**i, 8)  # C64-C128-C256-C512, capped at 8x
      x = nn.Conv(feats, (k, k), (s, s), padding=((1, 1), (1, 1)), kernel_init=INIT,
                  dtype=self.dtype, name="logit" if last else f"c{i}")(x)
      if not last:
        if i > 0:  # no norm on the first layer
          x = _norm(self.norm, self.dtype)(x)
        x = nn.leaky_relu(x, 0.2)
    return x[..., 0].astype(jnp.float32)
