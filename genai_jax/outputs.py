"""File formats of a run's outputs: image grids as PNG, waveforms as 16-bit WAV.

The sample writers (``genai_jax.samples``) and the TensorBoard writer (``train.writers``) both
encode with these, so a grid on disk and the one in TensorBoard are the same bytes.
"""

import io

import numpy as np
from PIL import Image

from genai_jax import storage


def image_grid(images: np.ndarray, cols: int = 8) -> np.ndarray:
  """float [N, H, W, C] in [-1, 1] -> uint8 [rows*(H+2)+2, cols*(W+2)+2, C] with 2-px borders."""
  images = np.asarray(images, np.float32)
  n, h, w, c = images.shape
  rows = -(-n // cols)
  grid = np.zeros((rows * (h + 2) + 2, cols * (w + 2) + 2, c), np.uint8)
  pix = np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)
  for i in range(n):
    r, q = divmod(i, cols)
    grid[2 + r * (h + 2):2 + r * (h + 2) + h, 2 + q * (w + 2):2 + q * (w + 2) + w] = pix[i]
  return grid


def png_bytes(array: np.ndarray) -> bytes:
  """uint8 [H, W, C] (C = 1 or 3) -> a PNG file's bytes."""
  mode = "L" if array.shape[-1] == 1 else "RGB"
  buf = io.BytesIO()
  Image.fromarray(array[..., 0] if mode == "L" else array, mode).save(buf, format="PNG")
  return buf.getvalue()


def save_png(array: np.ndarray, path: str) -> None:
  """Writes uint8 [H, W, C] as a PNG file at ``path`` (local or gs://), creating its directory."""
  storage.write_bytes(png_bytes(array), path)


def wav_bytes(waveform: np.ndarray, sample_rate: int) -> bytes:
  """float [T, C] (or [T]) in [-1, 1] -> a 16-bit PCM WAV file's bytes (values clipped)."""
  import scipy.io.wavfile
  pcm = np.rint(np.clip(np.asarray(waveform, np.float32), -1.0, 1.0) * 32767).astype(np.int16)
  buf = io.BytesIO()
  scipy.io.wavfile.write(buf, int(sample_rate), pcm)
  return buf.getvalue()
