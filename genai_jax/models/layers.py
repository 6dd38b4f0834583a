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

import functools
import itertools
import math
from typing import Any, Callable, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

Array = jax.Array
Initializer = Callable[..., Array]
Padding = Union[str, Sequence[tuple[int, int]]]

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


# --- any kernel size and stride -------------------------------------------------------------------


def _spec(nd: int) -> tuple[str, str, str]:
  sp = "HWD"[:nd]
  return "N" + sp + "C", sp + "IO", "N" + sp + "C"


def _check_impl(impl: str) -> None:
  if impl not in ("subpixel", "xla"):
    raise ValueError(f"unknown conv impl {impl!r}; use 'subpixel' or 'xla'")


def _tap_matmuls(views: list, taps: list, w: Array) -> Array:
  """sum_i views[i] @ w[taps[i]] with views [N, Cin] and w [*K, Cin, Cout] -> [N, Cout].

  With few input channels the views are concatenated and multiplied once (K = taps * Cin
  instead of a skinny Cin)."""
  cin = views[0].shape[-1]
  if cin <= _FEW_CHANNELS and len(views) > 1:
    return jnp.concatenate(views, -1) @ jnp.concatenate([w[t] for t in taps], 0)
  out = None
  for v, t in zip(views, taps):
    out = v @ w[t] if out is None else out + v @ w[t]
  return out


def conv_transpose_padding(kernel: Sequence[int], strides: Sequence[int], padding: Padding
                           ) -> tuple[tuple[int, int], ...]:
  """The (low, high) padding of the dilated input that ``lax.conv_transpose`` uses for 'SAME'
  or 'VALID' (explicit pairs pass through). A PyTorch ConvTranspose(k, s, p, output_padding=q)
  is ``(k - 1 - p, k - 1 - p + q)`` with the kernel flipped."""
  if not isinstance(padding, str):
    return tuple((int(lo), int(hi)) for lo, hi in padding)
  pads = []
  for k, s in zip(kernel, strides):
    if padding == "SAME":
      total = k + s - 2
      lo = k - 1 if s > k - 1 else math.ceil(total / 2)
    elif padding == "VALID":
      total, lo = k + s - 2 + max(k - s, 0), k - 1
    else:
      raise ValueError(f"padding {padding!r}: use 'SAME', 'VALID' or (low, high) pairs")
    pads.append((lo, total - lo))
  return tuple(pads)


def conv_transpose(x: Array, w: Array, strides: Sequence[int], padding: Padding = "SAME",
                   impl: str = "subpixel") -> Array:
  """``lax.conv_transpose(x, w, strides, padding)`` (channels last, ``transpose_kernel=False``:
  what ``flax.linen.ConvTranspose`` computes) for any kernel size and stride, exactly.

  The sub-pixel form: output phase r (o = s*m + r) of a stride-s transposed convolution reads
  only the taps t = (pad_lo - r) mod s + s*j of the kernel, so it is an ordinary stride-1
  convolution of the undilated input with a sub-kernel of about k/s taps. Each of the s**d
  phases runs as one matmul per tap over a shifted view of the input (the views are shared
  between phases), then depth-to-space interleaves the phases. No dilated convolution is left,
  forward or backward, and no zero tap is multiplied (on the CPU this beat one convolution to
  s**d * Cout channels with zero-filled sub-kernels, and XLA's own convolutions).

  Args:
    x: [B, *S, Cin], d = 1 or 2 spatial dims (any d works).
    w: [*K, Cin, Cout] (flax's ConvTranspose layout); PyTorch's ``weight[ci, co, *k]`` is
      ``w[*reversed(k), ci, co]`` with ``padding = (k - 1 - p, k - 1 - p + output_padding)``.
    strides: d ints.
    padding: 'SAME', 'VALID' or d (low, high) pairs on the dilated input (``lax`` semantics).
    impl: 'subpixel' or 'xla' (``lax.conv_transpose`` itself, for reference).

  Returns:
    [B, *S_out, Cout], x's dtype, S_out = (S - 1) * s + 1 + lo + hi - k + 1 (S * s for 'SAME').
  """
  _check_impl(impl)
  nd = x.ndim - 2
  kernel, strides = tuple(w.shape[:nd]), tuple(strides)
  if impl == "xla":
    return lax.conv_transpose(x, w, strides, padding, dimension_numbers=_spec(nd))
  b, cout = x.shape[0], w.shape[-1]
  plan = []  # per spatial dim: ([(first tap, input offset, taps) per phase], phase length M)
  for d, (k, s, (lo, hi), size) in enumerate(
      zip(kernel, strides, conv_transpose_padding(kernel, strides, padding), x.shape[1:-1])):
    out_len = (size - 1) * s + 1 + lo + hi - k + 1
    if out_len <= 0:
      raise ValueError(f"conv_transpose: empty output along spatial dim {d} (size {size}, "
                       f"kernel {k}, stride {s}, padding {(lo, hi)})")
    # Phase r reads input m + off + j with tap t0 + s*j (from o + t - lo = s*i).
    phases = [((lo - r) % s, (r + (lo - r) % s - lo) // s, max(0, -(-(k - (lo - r) % s) // s)))
              for r in range(s)]
    plan.append((phases, -(-out_len // s), out_len))
  # Pad (or crop: lax.pad takes negative widths) so every live phase's views are in range.
  pads = []
  for (phases, m, _), size in zip(plan, x.shape[1:-1]):
    live = [(off, n) for _, off, n in phases if n] or [(0, 1)]
    lo_pad = -min(off for off, _ in live)
    pads.append((lo_pad, max(off + n - 1 for off, n in live) + m + lo_pad - size))
  xp = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0)] + [(lo, hi, 0) for lo, hi in pads]
               + [(0, 0, 0)])
  ms = tuple(m for _, m, _ in plan)
  views = {}  # start offsets -> [B * prod(M), Cin]; shared between phases

  def view(starts):
    if starts not in views:
      views[starts] = xp[(slice(None),) + tuple(slice(st, st + m) for st, m in zip(starts, ms))
                         ].reshape(-1, x.shape[-1])
    return views[starts]

  outs = []
  for phase in itertools.product(*(ph for ph, _, _ in plan)):
    if any(n == 0 for _, _, n in phase):  # k < s: this phase gets no tap
      outs.append(jnp.zeros((b * math.prod(ms), cout), x.dtype))
      continue
    js = list(itertools.product(*(range(n) for _, _, n in phase)))
    vs = [view(tuple(off + j + lp for (_, off, _), j, (lp, _) in zip(phase, jj, pads)))
          for jj in js]
    taps = [tuple(t0 + s * j for (t0, _, _), j, s in zip(phase, jj, strides)) for jj in js]
    outs.append(_tap_matmuls(vs, taps, w))
  # [B, *M, *s, Cout] -> [B, M0, s0, M1, s1, ..., Cout] -> [B, *(M * s), Cout], cropped.
  z = jnp.stack(outs, 1).reshape(b, *ms, *strides, cout)
  z = z.transpose(0, *itertools.chain(*((1 + d, 1 + nd + d) for d in range(nd))), 2 * nd + 1)
  y = z.reshape(b, *(m * s for m, s in zip(ms, strides)), cout)
  return y[(slice(None),) + tuple(slice(0, out_len) for _, _, out_len in plan)]


def _shifted_sum(yp: Array, kernel: tuple, outs: tuple) -> Array:
  """sum over taps t of yp[:, t0:t0+M0, ..., t, :], yp [B, *P, *K, C] -> [B, *M, C]."""
  out = None
  for t in itertools.product(*(range(k) for k in kernel)):
    term = yp[(slice(None),) + tuple(slice(ti, ti + m) for ti, m in zip(t, outs)) + t]
    out = term if out is None else out + term
  return out


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_few_out(x: Array, w: Array, pads: tuple) -> Array:
  """Stride-1 convolution with few output channels: x @ W once, W = the kernel as
  [Cin, prod(K) * Cout] (one wide matmul where per-tap ones would have Cout columns), then each
  output sums its prod(K) shifted (tap) lanes. The gradient is written out (custom_vjp) because
  autodiff of the shifted sum pads a full-size copy per tap; the hand-written one stacks
  prod(K) shifted views of the small output gradient instead and runs two matmuls.

  x: [B, *S, Cin]; w: [*K, Cin, Cout]; pads: d (low, high) pairs. Returns [B, *M, Cout]."""
  return _conv_few_out_fwd(x, w, pads)[0]


def _few_out_matrix(w: Array) -> Array:
  nd = w.ndim - 2
  return jnp.moveaxis(w, nd, 0).reshape(w.shape[nd], -1)  # [Cin, prod(K) * Cout]


def _conv_few_out_fwd(x, w, pads):
  nd = x.ndim - 2
  kernel, cin, cout = w.shape[:nd], w.shape[-2], w.shape[-1]
  outs = tuple(size + lo + hi - k + 1 for size, k, (lo, hi) in zip(x.shape[1:-1], kernel, pads))
  y = (x.reshape(-1, cin) @ _few_out_matrix(w)).reshape(*x.shape[:-1], *kernel, cout)
  yp = lax.pad(y, jnp.zeros((), y.dtype),
               [(0, 0, 0)] + [(lo, hi, 0) for lo, hi in pads] + [(0, 0, 0)] * (nd + 1))
  return _shifted_sum(yp, kernel, outs), (x, w)


def _conv_few_out_bwd(pads, res, g):
  x, w = res
  nd = x.ndim - 2
  kernel, cin = w.shape[:nd], w.shape[-2]
  sizes = x.shape[1:-1]
  # y[p, t] feeds out[p + lo - t]: dy[p, t] = g_padded[p + k - 1 - t].
  gp = lax.pad(g, jnp.zeros((), g.dtype), [(0, 0, 0)] + [
      (k - 1 - lo, k - 1 - hi, 0) for k, (lo, hi) in zip(kernel, pads)] + [(0, 0, 0)])
  dy = jnp.stack([gp[(slice(None),) + tuple(slice(k - 1 - ti, k - 1 - ti + size)
                                            for k, ti, size in zip(kernel, t, sizes))]
                  for t in itertools.product(*(range(k) for k in kernel))], nd + 1)
  dy = dy.reshape(-1, math.prod(kernel) * w.shape[-1])  # [N, prod(K) * Cout]
  wm = _few_out_matrix(w)
  dx = (dy @ wm.T).reshape(x.shape)
  dw = (x.reshape(-1, cin).T @ dy).reshape(cin, *kernel, w.shape[-1])
  return dx, jnp.moveaxis(dw, 0, nd)


_conv_few_out.defvjp(_conv_few_out_fwd, _conv_few_out_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_strided_subpixel_dx(x: Array, w: Array, strides: tuple, pads: tuple) -> Array:
  """XLA's strided convolution, whose forward and weight gradient XLA's CPU backend runs well,
  with its input gradient (a convolution of the stride-dilated output gradient, which it runs
  badly) computed as the sub-pixel ``conv_transpose`` of the output gradient instead.

  x: [B, *S, Cin]; w: [*K, Cin, Cout]; strides, pads: d ints, d (low, high) pairs."""
  return lax.conv_general_dilated(x, w, strides, pads, dimension_numbers=_spec(x.ndim - 2))


def _conv_strided_subpixel_dx_fwd(x, w, strides, pads):
  return _conv_strided_subpixel_dx(x, w, strides, pads), (x, w)


def _conv_strided_subpixel_dx_bwd(strides, pads, res, g):
  x, w = res
  nd = x.ndim - 2
  _, vjp_w = jax.vjp(lambda w: lax.conv_general_dilated(x, w, strides, pads,
                                                        dimension_numbers=_spec(nd)), w)
  # x[i] feeds out[m] through tap i + lo - s*m: the transposed convolution of g with the kernel
  # flipped and its channels swapped, padded so that it returns exactly S positions.
  t_pads = tuple((k - 1 - lo, size - (m - 1) * s + lo - 1) for k, (lo, _), s, m, size
                 in zip(w.shape[:nd], pads, strides, g.shape[1:-1], x.shape[1:-1]))
  w_t = jnp.flip(w, tuple(range(nd))).swapaxes(-1, -2)
  return conv_transpose(g, w_t, strides, t_pads), vjp_w(g)[0]


_conv_strided_subpixel_dx.defvjp(_conv_strided_subpixel_dx_fwd, _conv_strided_subpixel_dx_bwd)


def conv_strided(x: Array, w: Array, strides: Sequence[int], padding: Padding = "SAME",
                 impl: str = "subpixel") -> Array:
  """``lax.conv_general_dilated(x, w, strides, padding)`` (channels last: what
  ``flax.linen.Conv`` computes) for any kernel size and stride, exactly, in the form XLA's CPU
  backend runs fastest (batch 128, 2-core CPU, forward and both gradients):

  * a stride-1 layer with few output channels and many input ones (an image head): one wide
    matmul and a shifted sum of its outputs (``_conv_few_out``; 128 -> 1 at 7x7 on 28x28
    inputs: 68 ms, against 284 ms for XLA's convolution and 1.1 s for per-tap matmuls);
  * a strided layer with many input channels: XLA's convolution, its input gradient computed
    by the sub-pixel ``conv_transpose`` (``_conv_strided_subpixel_dx``; 128 -> 128 at 5x5,
    stride 2, 14x14 inputs: 107 ms against 128 ms);
  * otherwise one matmul per tap over a strided view of the padded input, summed (with few
    input channels, the views concatenated into one matmul).

  Args:
    x: [B, *S, Cin]; w: [*K, Cin, Cout]; strides: d ints; padding: 'SAME', 'VALID' or d
    (low, high) pairs; impl: 'subpixel' (the forms above) or 'xla' (the plain op).

  Returns:
    [B, *S_out, Cout], S_out = (S + lo + hi - K) // s + 1.
  """
  _check_impl(impl)
  nd = x.ndim - 2
  kernel, strides = tuple(w.shape[:nd]), tuple(strides)
  if impl == "xla":
    return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=_spec(nd))
  pads = (lax.padtype_to_pads(x.shape[1:-1], kernel, strides, padding)
          if isinstance(padding, str) else tuple(tuple(p) for p in padding))
  outs = tuple((size + lo + hi - k) // s + 1 for size, k, s, (lo, hi)
               in zip(x.shape[1:-1], kernel, strides, pads))
  if min(outs) <= 0:
    raise ValueError(f"conv_strided: empty output {outs} (input {x.shape[1:-1]}, kernel "
                     f"{kernel}, strides {strides}, padding {pads})")
  cin, cout = w.shape[-2:]
  static_pads = tuple((int(lo), int(hi)) for lo, hi in pads)
  if all(s == 1 for s in strides) and cout <= _FEW_CHANNELS < cin:
    return _conv_few_out(x, w, static_pads)
  if any(s > 1 for s in strides) and cin > _FEW_CHANNELS:
    return _conv_strided_subpixel_dx(x, w, strides, static_pads)
  xp = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0)] + [
      (lo, s * (m - 1) + k - size - lo, 0)
      for (lo, _), s, m, k, size in zip(pads, strides, outs, kernel, x.shape[1:-1])] + [(0, 0, 0)])
  taps = list(itertools.product(*(range(k) for k in kernel)))
  views = [lax.slice(xp, (0, *t, 0), (x.shape[0], *(ti + s * (m - 1) + 1 for ti, s, m
                                                   in zip(t, strides, outs)), x.shape[-1]),
                     (1, *strides, 1)).reshape(-1, x.shape[-1]) for t in taps]
  return _tap_matmuls(views, taps, w).reshape(x.shape[0], *outs, w.shape[-1])


class SubpixelConvTranspose(nn.Module):
  """``flax.linen.ConvTranspose`` (same parameters, names, shapes and initialisers: a drop-in
  whose checkpoints are interchangeable with it) computed by ``conv_transpose``; ``impl='xla'``
  runs the plain ``lax.conv_transpose``."""
  features: int
  kernel_size: Sequence[int]
  strides: Sequence[int]
  padding: Padding = "SAME"
  use_bias: bool = True
  impl: str = "subpixel"
  kernel_init: Initializer = nn.linear.default_kernel_init
  bias_init: Initializer = nn.initializers.zeros_init()
  dtype: Any = None
  _op = staticmethod(conv_transpose)  # SubpixelConv: conv_strided

  @nn.compact
  def __call__(self, x: Array) -> Array:
    w = self.param("kernel", self.kernel_init, (*self.kernel_size, x.shape[-1], self.features))
    b = self.param("bias", self.bias_init, (self.features,)) if self.use_bias else None
    x, w, b = nn.dtypes.promote_dtype(x, w, b, dtype=self.dtype)
    y = self._op(x, w, self.strides, self.padding, self.impl)
    return y if b is None else y + b


class SubpixelConv(SubpixelConvTranspose):
  """``flax.linen.Conv`` with strides (same parameters and names) computed by ``conv_strided``;
  ``impl='xla'`` runs the plain ``lax.conv_general_dilated``."""
  _op = staticmethod(conv_strided)


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
