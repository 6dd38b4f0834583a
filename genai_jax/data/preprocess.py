"""Per-example decoding and augmentation in NumPy and PIL (no TensorFlow): what the loader's
worker threads run. PIL's decoders and resampling release the GIL, so threads scale.

Semantics are those of the former tf.image pipeline: centre crop to a square, antialiased
bilinear resize (``tf.image.resize(..., antialias=True)``'s triangle filter with half-pixel
centres: PIL's float BILINEAR, within 1e-4 of TF), grayscale <-> RGB with TF's luma
weights, stateless random flip / crop / audio offset drawn from (seed, shard, position) by a
counter-based hash (``uniform``), so an example's augmentation does not depend on which thread,
process or run decodes it.
"""

import io

import numpy as np
from PIL import Image

from genai_jax.errors import DataError

_LUMA = np.array([0.2989, 0.5870, 0.1140], np.float32)  # tf.image.rgb_to_grayscale's weights


_M64 = 2**64 - 1


def _mix(x: int) -> int:
  """splitmix64's finaliser on a Python int (scalars: ~20x faster than NumPy's small arrays)."""
  x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
  x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
  return x ^ (x >> 31)


def uniform(*keys):
  """A float in [0, 1), a fixed function of the integer ``keys``: e.g. ``uniform(seed, shard,
  position, salt)``. Counter-based (splitmix64), so stateless: the same keys give the same draw
  in any thread, process or run. With array keys (broadcast), a float64 array of draws, equal
  to the scalar draws element by element."""
  if any(isinstance(k, np.ndarray) for k in keys):
    return _uniform_array(keys)
  h = 0x9E3779B97F4A7C15
  for k in keys:
    h = _mix(h ^ (int(k) & _M64))
  return (h >> 11) * 2.0 ** -53


def _uniform_array(keys) -> np.ndarray:
  shape = np.broadcast_shapes(*(np.shape(k) for k in keys))
  h = np.full(shape or (1,), 0x9E3779B97F4A7C15, np.uint64)  # >= 1-d: 0-d products warn on wrap
  u = lambda v: np.uint64(v)  # noqa: E731
  for k in keys:
    x = h ^ np.asarray(k, np.int64).astype(np.uint64)  # two's complement, as int(k) & _M64
    x = (x ^ (x >> u(30))) * u(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> u(27))) * u(0x94D049BB133111EB)
    h = x ^ (x >> u(31))
  return ((h >> u(11)).astype(np.float64) * 2.0 ** -53).reshape(shape)


def decode_image(encoded: bytes, channels: int) -> np.ndarray:
  """PNG/JPEG/... bytes -> uint8 [H, W, channels] (1: grayscale, 3: RGB), as
  ``tf.io.decode_image(..., channels=channels)``. Raises DataError on bytes PIL cannot read."""
  try:
    with Image.open(io.BytesIO(encoded)) as im:
      mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
      if im.mode != mode:
        im = im.convert(mode)
      out = np.asarray(im)
  except (OSError, ValueError, SyntaxError) as e:  # PIL's UnidentifiedImageError is an OSError
    raise DataError(f"an image record cannot be decoded ({type(e).__name__}: {e})") from None
  return out[..., None] if out.ndim == 2 else out


def resize(image: np.ndarray, size: int) -> np.ndarray:
  """float32 [H, W, C] -> float32 [size, size, C], antialiased bilinear: PIL's BILINEAR filter on
  float ("F") channels, which is TF's ``scale_and_translate`` triangle kernel (half-pixel
  centres, the kernel widened by the downscale factor, weights clipped to the image and
  normalised). PIL rather than a NumPy matmul: its C loop releases the GIL and starts no BLAS
  threads (OpenBLAS' threads collapsed under a loaded machine: 14 ms vs 2 ms per image)."""
  h, w, c = image.shape
  if (h, w) == (size, size):
    return np.asarray(image, np.float32)
  channels = [np.asarray(Image.fromarray(np.ascontiguousarray(image[..., k], np.float32), mode="F")
                         .resize((size, size), Image.Resampling.BILINEAR)) for k in range(c)]
  return np.stack(channels, axis=-1)


def preprocess_image(image: np.ndarray, cfg, flip: bool = False) -> np.ndarray:
  """uint8 (or any number) [H, W, C] -> float32 [S, S, cfg.channels] in [-1, 1]: centre crop
  (``cfg.center_crop``, default on), resize to ``cfg.image_size``, grayscale <-> RGB, optional
  left-right flip. ``cfg.max_value`` (default 255) is the stored value of white: 1 for 0/1 data
  (binarized_mnist)."""
  image = np.asarray(image, np.float32)
  if cfg.get("center_crop", True):
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    image = image[top:top + side, left:left + side]
  image = resize(image, cfg.image_size)
  if image.shape[-1] == 1 and cfg.channels == 3:
    image = np.repeat(image, 3, axis=-1)
  elif image.shape[-1] == 3 and cfg.channels == 1:
    image = (image[..., :1] * _LUMA[0] + image[..., 1:2] * _LUMA[1] + image[..., 2:] * _LUMA[2])
  if flip:
    image = image[:, ::-1]
  white = float(cfg.get("max_value", 255))
  return np.ascontiguousarray(np.clip(image, 0.0, white) / (white / 2) - 1.0, np.float32)


def random_crop(image: np.ndarray, size: int, u_top: float, u_left: float) -> np.ndarray:
  """[H, W, C] -> its [size, size, C] window at offsets uniform in [0, H - size] x [0, W - size]
  from the draws ``u_top``, ``u_left`` in [0, 1)."""
  h, w = image.shape[:2]
  top, left = int(u_top * (h - size + 1)), int(u_left * (w - size + 1))
  return image[top:top + size, left:left + size]


def audio_scale(dtype) -> float:
  """Integer PCM -> [-1, 1) divides by max + 1; float audio is taken as it is."""
  dtype = np.dtype(dtype)
  return float(np.iinfo(dtype).max) + 1 if np.issubdtype(dtype, np.integer) else 1.0


def fit_length(wave: np.ndarray, length: int, start: int = 0) -> np.ndarray:
  """float [T] or [T, C] -> float32 [length, 1]: channels mixed to mono, then the ``length``
  samples from ``start``, zero-padded at the end where the clip is shorter."""
  wave = np.asarray(wave, np.float32)
  if wave.ndim == 2:
    wave = wave.mean(-1)
  out = np.zeros((length,), np.float32)
  part = wave[start:start + length]
  out[:len(part)] = part
  return out[:, None]
