"""Run logs: TensorBoard events + metrics.jsonl, and the progress line (the per-kind sample
writers are in ``genai_jax.samples``, the PNG/WAV encoders in ``genai_jax.outputs``)."""

import itertools
import json
import os
import socket
import sys
import time
from typing import Mapping, Optional

import numpy as np

from genai_jax import outputs
from genai_jax import storage

_EVENT_FILES = itertools.count(1)


def _event_file_name() -> str:
  """A new event file's name, unique per writer: TensorBoard reads files with "tfevents" in it."""
  return (f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}."
          f"{next(_EVENT_FILES)}.v2")


class MetricWriter:
  """Writes scalars to TensorBoard and ``metrics.jsonl``, images, audio and text to TensorBoard;
  process 0 only. TensorBoard's own record format and protos (the ``tensorboard`` package), no
  TensorFlow; local or gs:// workdirs."""

  def __init__(self, workdir: str, enabled: bool = True):
    self.enabled = enabled
    if not enabled:
      return
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter
    self._event_pb2 = event_pb2
    storage.makedirs(workdir)
    self._events = RecordWriter(storage.AppendFile(os.path.join(workdir, _event_file_name())))
    self._jsonl = storage.AppendFile(os.path.join(workdir, "metrics.jsonl"))
    self._write_event(file_version="brain.Event:2")
    self._events.flush()  # TensorBoard shows the run (empty) from the start

  def _write_event(self, **fields) -> None:
    event = self._event_pb2.Event(wall_time=time.time(), **fields)
    self._events.write(event.SerializeToString())

  def _summary(self, step: int, *values) -> None:
    from tensorboard.compat.proto import summary_pb2
    self._write_event(step=int(step), summary=summary_pb2.Summary(value=list(values)))

  def scalars(self, step: int, scalars: Mapping[str, float], prefix: str = "train") -> None:
    if not self.enabled:
      return
    from tensorboard.compat.proto import summary_pb2
    record = {"step": int(step), "split": prefix, **{k: float(v) for k, v in scalars.items()}}
    self._jsonl.write((json.dumps(record) + "\n").encode("utf-8"))
    self._jsonl.flush()
    self._summary(step, *(summary_pb2.Summary.Value(tag=f"{prefix}/{k}", simple_value=float(v))
                          for k, v in scalars.items()))

  def image(self, step: int, name: str, image: np.ndarray) -> None:
    """image: uint8 [H, W, C], C = 1 or 3."""
    if not self.enabled:
      return
    from tensorboard.compat.proto import summary_pb2
    h, w, c = image.shape
    png = outputs.png_bytes(np.asarray(image))
    self._summary(step, summary_pb2.Summary.Value(tag=name, image=summary_pb2.Summary.Image(
        height=h, width=w, colorspace=c, encoded_image_string=png)))

  def audio(self, step: int, name: str, waveforms: np.ndarray, sample_rate: int) -> None:
    """waveforms: float32 [N, T, C] in [-1, 1]; one 16-bit WAV each, tagged ``name/audio/<i>``
    as TensorFlow's summary names them."""
    if not self.enabled:
      return
    from tensorboard.compat.proto import summary_pb2
    waves = np.asarray(waveforms, np.float32)
    self._summary(step, *(summary_pb2.Summary.Value(
        tag=f"{name}/audio/{i}", audio=summary_pb2.Summary.Audio(
            sample_rate=float(sample_rate), num_channels=w.shape[-1], length_frames=w.shape[0],
            encoded_audio_string=outputs.wav_bytes(w, sample_rate), content_type="audio/wav"))
        for i, w in enumerate(waves)))

  def text(self, step: int, name: str, text: str) -> None:
    if not self.enabled:
      return
    from tensorboard.compat.proto import summary_pb2, tensor_pb2, types_pb2
    from tensorboard.plugins.text import metadata
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[text.encode("utf-8")])
    self._summary(step, summary_pb2.Summary.Value(
        tag=name, metadata=metadata.create_summary_metadata(name, ""), tensor=tensor))

  def flush(self) -> None:
    if self.enabled:
      self._events.flush()
      self._jsonl.flush()

  def close(self) -> None:
    if self.enabled:
      self._events.close()
      self._jsonl.close()
      self.enabled = False


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
