"""Run outputs: TensorBoard events + metrics.jsonl, the progress line, and image grids (the
per-kind sample writers are in ``genai_jax.samples``)."""

import json
import os
import sys
import time
from typing import Mapping, Optional

import numpy as np
from PIL import Image


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


def save_png(array: np.ndarray, path: str) -> None:
  import tensorflow as tf  # gfile writes to local paths and gs:// alike
  tf.io.gfile.makedirs(os.path.dirname(path))
  mode = "L" if array.shape[-1] == 1 else "RGB"
  with tf.io.gfile.GFile(path, "wb") as f:
    Image.fromarray(array[..., 0] if mode == "L" else array, mode).save(f, format="PNG")


class MetricWriter:
  """Writes scalars to TensorBoard and ``metrics.jsonl``, images, audio and text to TensorBoard;
  process 0 only."""

  def __init__(self, workdir: str, enabled: bool = True):
    self.enabled = enabled
    if not enabled:
      return
    import tensorflow as tf
    self._tf = tf
    tf.io.gfile.makedirs(workdir)
    self._tb = tf.summary.create_file_writer(workdir)
    self._jsonl = tf.io.gfile.GFile(os.path.join(workdir, "metrics.jsonl"), "a")

  def scalars(self, step: int, scalars: Mapping[str, float], prefix: str = "train") -> None:
    if not self.enabled:
      return
    record = {"step": int(step), "split": prefix, **{k: float(v) for k, v in scalars.items()}}
    self._jsonl.write(json.dumps(record) + "\n")
    self._jsonl.flush()
    with self._tb.as_default(step=int(step)):
      for k, v in scalars.items():
        self._tf.summary.scalar(f"{prefix}/{k}", float(v))

  def image(self, step: int, name: str, image: np.ndarray) -> None:
    """image: uint8 [H, W, C]."""
    if not self.enabled:
      return
    with self._tb.as_default(step=int(step)):
      self._tf.summary.image(name, image[None], max_outputs=1)

  def audio(self, step: int, name: str, waveforms: np.ndarray, sample_rate: int) -> None:
    """waveforms: float32 [N, T, C] in [-1, 1]."""
    if not self.enabled:
      return
    with self._tb.as_default(step=int(step)):
      self._tf.summary.audio(name, np.asarray(waveforms, np.float32), int(sample_rate),
                             max_outputs=len(waveforms))

  def text(self, step: int, name: str, text: str) -> None:
    if not self.enabled:
      return
    with self._tb.as_default(step=int(step)):
      self._tf.summary.text(name, text)

  def flush(self) -> None:
    if self.enabled:
      self._tb.flush()
      self._jsonl.flush()

  def close(self) -> None:
    if self.enabled:
      self._tb.close()
      self._jsonl.close()


class Progress:
  """One progress line per log interval: step, metrics, throughput and ETA."""

  def __init__(self, total_steps: int, start_step: int, items_per_step: int, unit: str,
               stream=None):
    self.total, self.items, self.unit = total_steps, items_per_step, unit
    self.stream = stream or sys.stdout
    self._t, self._step = None, None

  def rate(self, step: int) -> Optional[float]:
    """Steps per second since the last call (None on the first, whose time includes compiling)."""
    now = time.perf_counter()
    last_t, last_step = self._t, self._step
    self._t, self._step = now, step
    if last_t is None or step <= last_step or now <= last_t:
      return None
    return (step - last_step) / (now - last_t)

  def line(self, step: int, metrics: Mapping[str, float], steps_per_s: Optional[float]) -> str:
    parts = [f"step {step}/{self.total}"]
    parts += [f"{k} {v:.4f}" for k, v in metrics.items()]
    if steps_per_s:
      eta = (self.total - step) / steps_per_s
      parts.append(f"{steps_per_s * self.items:,.0f} {self.unit}/s")
      parts.append(f"ETA {int(eta // 3600)}:{int(eta % 3600 // 60):02d}:{int(eta % 60):02d}")
    text = " | ".join(parts)
    print(text, file=self.stream, flush=True)
    return text
