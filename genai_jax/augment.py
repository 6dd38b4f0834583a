"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

Pure, differentiable functions of (rng, images): images float [B, H, W, C] in [-1, 1] -> same
shape and dtype, one independent random draw per example. The GAN applies ``apply`` inside D's
forward to real and fake batches alike (each with its own key, so both see identically
distributed augmentations), and G's gradient flows through it. The magnitudes are the official
implementation's (github.com/mit-han-lab/data-efficient-gans, DiffAugment_pytorch.py).
"""

import jax
import jax.numpy as jnp

from genai_jax.errors import ConfigError


def _per_example(rng, images, low=0.0, high=1.0):
  return jax.random.uniform(rng, (images.shape[0], 1, 1, 1), images.dtype, low, high)


def brightness(rng, images):
  """Adds U[-0.5, 0.5) per example."""
  return images + _per_example(rng, images, -0.5, 0.5)


def saturation(rng, images):
  """Scales the distance from the per-pixel channel mean by U[0, 2) (a no-op on 1 channel)."""
  mean = images.mean(axis=3, keepdims=True)
  return (images - mean) * _per_example(rng, images, 0.0, 2.0) + mean


def contrast(rng, images):
  """Scales the distance from the per-image mean by U[0.5, 1.5)."""
  mean = images.mean(axis=(1, 2, 3), keepdims=True)
  return (images - mean) * _per_example(rng, images, 0.5, 1.5) + mean


def color(rng, images):
  """brightness, saturation, contrast in that order (the official 'color' policy)."""
  k1, k2, k3 = jax.random.split(rng, 3)
  return contrast(k3, saturation(k2, brightness(k1, images)))


def translation(rng, images, ratio: float = 0.125):
  """Shifts each image by integers in [-s, s] on each axis, s = round(ratio * size), filling
  with zeros (0 = mid-grey in [-1, 1], as the official code)."""
  b, h, w, _ = images.shape
  sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
  kx, ky = jax.random.split(rng)
  dy = jax.random.randint(ky, (b,), -sh, sh + 1)
  dx = jax.random.randint(kx, (b,), -sw, sw + 1)
  padded = jnp.pad(images, ((0, 0), (sh, sh), (sw, sw), (0, 0)))
  # Output pixel (i, j) reads input (i - dy, j - dx), i.e. padded (i - dy + sh, j - dx + sw).
  crop = lambda im, y, x: jax.lax.dynamic_slice(im, (sh - y, sw - x, 0), (h, w, im.shape[-1]))
  return jax.vmap(crop)(padded, dy, dx)


def cutout_mask(rng, shape, ratio: float = 0.5):
  """float32 [B, H, W, 1]: 0 inside one square-ish box per example of round(ratio * size) pixels
  a side (clipped at the border), centred uniformly as in the official code; 1 elsewhere."""
  b, h, w = shape[0], shape[1], shape[2]
  ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
  ky, kx = jax.random.split(rng)
  oy = jax.random.randint(ky, (b, 1, 1), 0, h + (1 - ch % 2))
  ox = jax.random.randint(kx, (b, 1, 1), 0, w + (1 - cw % 2))
  rows = jnp.arange(h)[None, :, None] - (oy - ch // 2)
  cols = jnp.arange(w)[None, None, :] - (ox - cw // 2)
  inside = (rows >= 0) & (rows < ch) & (cols >= 0) & (cols < cw)
  return (~inside).astype(jnp.float32)[..., None]


def cutout(rng, images, ratio: float = 0.5):
  """Zeroes one box of half the image side per example (see ``cutout_mask``)."""
  return images * cutout_mask(rng, images.shape, ratio).astype(images.dtype)


OPS = {"color": color, "translation": translation, "cutout": cutout}


def parse_policy(policy: str) -> tuple[str, ...]:
  """'translation,cutout,color' -> its op names in order ('' -> none); ConfigError on unknown."""
  names = tuple(p.strip() for p in policy.split(",") if p.strip())
  bad = [n for n in names if n not in OPS]
  if bad:
    raise ConfigError(f"unknown DiffAugment ops {bad}; set augment.policy to a "
                      f"comma-separated subset of {sorted(OPS)} (or '' for none)",
                      keys=("augment.policy",))
  return names


def apply(rng, images, policy: str):
  """The ops of ``policy`` in order on images [B, H, W, C] (same shape and dtype); '' is the
  identity."""
  out = images
  for i, name in enumerate(parse_policy(policy)):
    out = OPS[name](jax.random.fold_in(rng, i), out)
  return out
