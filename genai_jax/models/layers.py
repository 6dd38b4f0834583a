"""Shared Flax layers, chiefly DCGAN's 4x4 stride-2 (transposed) convolutions.

Both layers keep the exact parameterisation of PyTorch's DCGAN (a 4x4 kernel, stride 2,
padding 1, no bias) so parameter counts and initialisations match the reference, but they
compute it in a form XLA's CPU backend runs fast:

* ``UpConv4x4`` (ConvTranspose2d(k=4, s=2, p=1)) as a sub-pixel convolution: one stride-1 2x2
  convolution producing the four output phases, then depth-to-space. XLA on CPU is very slow
  at the gradient of a dilated (transposed) convolution; this form is exact and has the same
  FLOPs.
* ``DownConv4x4`` (Conv2d(k=4, s=2, p=1)) as space-to-depth followed by a stride-1 2x2
  convolution, so its input gradient (on the generator's critical path) has no dilation either.
* Both 2x2 convolutions run as a single matmul over four shifted views (im2col), which XLA's
  CPU backend runs several times faster than its own convolution; on GPU/TPU it is a plain
  matmul too.

``impl='xla'`` selects the textbook lowering (``lax.conv_general_dilated`` with
``lhs_dilation`` / ``window_strides``) for comparison; tests check both agree.
"""

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

Array = jax.Array
Initializer = Callable[..., Array]

_DN = ("NHWC", "HWIO", "NHWC")
# Output phase r of a k=4, s=2, p=1 transposed conv reads padded-input taps (m+r, m+r+1)
# with these kernel indices (derived from o = 2i - 1 + k).
_TAPS = ((3, 1), (2, 0))
# Layers with at most this many input (down) or output (up) channels use a single wide matmul.
_FEW_CHANNELS = 16


def _conv2x2(x: Array, k: Array) -> Array:
  """VALID stride-1 2x2 convolution as four 2-D matmuls over shifted views, summed.

  XLA's CPU convolution is 2-3x slower than its matmul here, forward and backward.
  x: [B, H, W, C], k: [2, 2, C, F] -> [B, H-1, W-1, F].
  """
  b, h, w, c = x.shape
  out = None
  for t in range(2):
    for u in range(2):
      term = x[:, t:t + h - 1, u:u + w - 1].reshape(-1, c) @ k[t, u]
      out = term if out is None else out + term
  return out.reshape(b, h - 1, w - 1, -1)


def _up_conv_input_centric(x: Array, w: Array) -> Array:
  """Transposed conv for few output channels (e.g. to RGB): one matmul from each input pixel to
  all 16 taps (N = 16*Cout instead of a skinny 4*Cout), then each output phase sums 4 taps."""
  b, h, wd, cin = x.shape
  cout = w.shape[-1]
  y = (x.reshape(-1, cin) @ jnp.transpose(w, (2, 0, 1, 3)).reshape(cin, 16 * cout))
  y = jnp.pad(y.reshape(b, h, wd, 4, 4, cout), ((0, 0), (1, 1), (1, 1), (0, 0), (0, 0), (0, 0)))
  # Phase r reads input m-1 with tap 3 and m with tap 1 (r=0), or m with 2 and m+1 with 0 (r=1);
  # as offsets into the padded y: ((offset, tap), ...).
  reads = (((0, 3), (1, 1)), ((1, 2), (2, 0)))
  phases = [[sum(y[:, oi:oi + h, oj:oj + wd, ki, kj] for oi, ki in reads[r] for oj, kj in reads[s])
             for s in range(2)] for r in range(2)]
  out = jnp.stack([jnp.stack(row, axis=3) for row in phases], axis=2)  # [B, H, 2, W, 2, C]
  return out.reshape(b, 2 * h, 2 * wd, cout)


def up_conv_4x4(x: Array, w: Array, impl: str = "subpixel") -> Array:
  """ConvTranspose2d(kernel 4, stride 2, padding 1) in PyTorch semantics.

  Args:
    x: [B, H, W, Cin] input.
    w: [4, 4, Cin, Cout] kernel; ``w[kh, kw, ci, co]`` equals PyTorch's ``weight[ci, co, kh, kw]``.
    impl: 'subpixel' (fast, exact) or 'xla' (dilated convolution, for reference).

  Returns:
    [B, 2H, 2W, Cout], same dtype as ``x``.
  """
  if impl == "xla":
    return lax.conv_general_dilated(x, w[::-1, ::-1], (1, 1), ((2, 2), (2, 2)),
                                    lhs_dilation=(2, 2), dimension_numbers=_DN)
  if impl != "subpixel":
    raise ValueError(f"unknown conv impl {impl!r}; use 'subpixel' or 'xla'")
  b, h, wd, cin = x.shape
  cout = w.shape[-1]
  if cout <= _FEW_CHANNELS:
    return _up_conv_input_centric(x, w)
  # k[t, u, ci, (r, s, co)] = w[TAPS[r][t], TAPS[s][u], ci, co]; static slices, not a gather
  # (a gather's gradient is a scatter-add, which is slow on CPU).
  k = jnp.stack([jnp.stack([
      jnp.concatenate([w[_TAPS[r][t], _TAPS[s][u]] for r in range(2) for s in range(2)], axis=-1)
      for u in range(2)]) for t in range(2)])  # [2, 2, Cin, 4*Cout]
  z = _conv2x2(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), k)  # [B, H+1, W+1, 4*Cout]
  z = z.reshape(b, h + 1, wd + 1, 2, 2, cout)
  rows = []
  for r in range(2):
    rows.append(jnp.stack([z[:, r:r + h, s:s + wd, r, s] for s in range(2)], axis=3))
  y = jnp.stack(rows, axis=2)  # [B, H, 2(r), W, 2(s), C]
  return y.reshape(b, 2 * h, 2 * wd, cout)


def down_conv_4x4(x: Array, w: Array, impl: str = "subpixel") -> Array:
  """Conv2d(kernel 4, stride 2, padding 1).

  Args:
    x: [B, H, W, Cin] input with even H and W.
    w: [4, 4, Cin, Cout] kernel (HWIO).
    impl: 'subpixel' (space-to-depth, fast, exact) or 'xla' (strided convolution).

  Returns:
    [B, H/2, W/2, Cout].
  """
  if impl == "xla":
    return lax.conv_general_dilated(x, w, (2, 2), ((1, 1), (1, 1)), dimension_numbers=_DN)
  if impl != "subpixel":
    raise ValueError(f"unknown conv impl {impl!r}; use 'subpixel' or 'xla'")
  b, h, wd, cin = x.shape
  if h % 2 or wd % 2:
    raise ValueError(f"down_conv_4x4 needs even spatial size, got {h}x{wd}")
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  if cin <= _FEW_CHANNELS:  # e.g. RGB input: one matmul over all 16 taps (K = 16*Cin)
    cols = jnp.concatenate([xp[:, i:i + h:2, j:j + wd:2] for i in range(4) for j in range(4)], -1)
    return (cols.reshape(-1, 16 * cin) @ w.reshape(16 * cin, -1)).reshape(b, h // 2, wd // 2, -1)
  hp, wp = (h + 2) // 2, (wd + 2) // 2
  xs = xp.reshape(b, hp, 2, wp, 2, cin).transpose(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, 4 * cin)
  # w[2t+p, 2u+q] -> k[t, u, (p, q, ci)]
  k = w.reshape(2, 2, 2, 2, cin, -1).transpose(0, 2, 1, 3, 4, 5).reshape(2, 2, 4 * cin, -1)
  return _conv2x2(xs, k)


class UpConv4x4(nn.Module):
  """DCGAN generator block's transposed convolution (no bias; BatchNorm follows)."""
  features: int
  impl: str = "subpixel"
  kernel_init: Initializer = nn.initializers.normal(0.02)
  dtype: Any = None  # compute dtype; params stay float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    w = self.param("kernel", self.kernel_init, (4, 4, x.shape[-1], self.features))
    if self.dtype is not None:
      x, w = x.astype(self.dtype), w.astype(self.dtype)
    return up_conv_4x4(x, w.astype(x.dtype), self.impl)


class DownConv4x4(nn.Module):
  """DCGAN discriminator's 4x4 stride-2 convolution (no bias)."""
  features: int
  impl: str = "subpixel"
  kernel_init: Initializer = nn.initializers.normal(0.02)
  dtype: Any = None

  @nn.compact
  def __call__(self, x: Array) -> Array:
    w = self.param("kernel", self.kernel_init, (4, 4, x.shape[-1], self.features))
    if self.dtype is not None:
      x, w = x.astype(self.dtype), w.astype(self.dtype)
    return down_conv_4x4(x, w.astype(x.dtype), self.impl)


def activation(spec: str) -> Callable[[Array], Array]:
  """An activation by name: 'relu', 'tanh', 'sigmoid', 'elu', 'gelu', 'leaky_relu' (slope 0.01,
  PyTorch's default) or 'leaky_relu:SLOPE' (e.g. 'leaky_relu:0.2'). Config values use these."""
  from genai_jax.errors import ConfigError  # layers stays importable without the package's rest
  name, _, arg = spec.partition(":")
  if name == "leaky_relu":
    try:
      slope = float(arg) if arg else 0.01
    except ValueError:
      raise ConfigError(f"bad activation {spec!r}; write e.g. 'leaky_relu:0.2'") from None
    return lambda x: nn.leaky_relu(x, slope)
  fns = {"relu": nn.relu, "tanh": jnp.tanh, "sigmoid": nn.sigmoid, "elu": nn.elu, "gelu": nn.gelu}
  if name not in fns or arg:
    raise ConfigError(f"unknown activation {spec!r}; use one of {sorted(fns)}, 'leaky_relu' or "
                      f"'leaky_relu:SLOPE'")
  return fns[name]
