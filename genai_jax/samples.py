"""Sample kinds: what a task's generator produces, and how each kind is written to disk.

A task's ``sample`` and ``generate`` (``tasks.base.Task``) return these pytrees; the loop and the
evaluation dispatch on the kind only, never on the model family. Static fields (sample rate,
detokeniser) are pytree metadata, so a kind passes through ``jax.jit`` unchanged.

  Images  float32 [N, H, W, C] in [-1, 1]   -> ``<name>/step_<step>.png`` grid (+ latest.png), TB image
  Audio   float32 [N, T, C] in [-1, 1], Hz   -> ``<name>/step_<step>/<i>.wav`` (16-bit PCM, + latest/),
                                               a log-mel spectrogram grid PNG, TB audio
  Tokens  int32 [N, T] + a detokeniser       -> ``<name>/step_<step>.txt`` (+ latest.txt), TB text
  PianoRoll int32 [N, T, V] MIDI pitches     -> ``<name>/step_<step>/<i>.mid`` and ``<i>.wav`` (+ latest/),
          (-1 rest), sixteenth-note steps       a piano-roll grid PNG, TB image and audio
"""

import os
from typing import Callable

import flax
import jax
import numpy as np

from genai_jax import outputs


@flax.struct.dataclass
class Images:
  """images: float32 [N, H, W, C] in [-1, 1]."""
  images: jax.Array


@flax.struct.dataclass
class Audio:
  """waveforms: float32 [N, T, C] in [-1, 1] at ``sample_rate`` Hz."""
  waveforms: jax.Array
  sample_rate: int = flax.struct.field(pytree_node=False, default=16_000)


@flax.struct.dataclass
class Tokens:
  """tokens: int32 [N, T]; ``detokenise`` maps one host row int [T] to str. The first
  ``prompt_len`` tokens of each row are a given prompt (real text), the rest are generated."""
  tokens: jax.Array
  detokenise: Callable[[np.ndarray], str] = flax.struct.field(pytree_node=False)
  prompt_len: int = flax.struct.field(pytree_node=False, default=0)

  def texts(self, generated_only: bool = True) -> list:
    """The rows as strings (by default without their prompts)."""
    start = self.prompt_len if generated_only else 0
    return [self.detokenise(row[start:]) for row in np.asarray(self.tokens)]


@flax.struct.dataclass
class PianoRoll:
  """pitches: int32 [N, T, V], the MIDI pitch voice v sounds at sixteenth-note step t or -1
  (rest); voices soprano to bass; see ``genai_jax.music``. The first ``prompt_steps`` steps of
  each roll are a given prompt (real music), the rest are generated."""
  pitches: jax.Array
  prompt_steps: int = flax.struct.field(pytree_node=False, default=0)


KINDS = (Images, Audio, Tokens, PianoRoll)


def num_items(sample) -> int:
  """N, the number of samples in one kind."""
  return int(jax.tree.leaves(sample)[0].shape[0])


def concatenate(parts: list):
  """Joins host copies of one kind along N (for samples drawn in batches)."""
  return jax.tree.map(lambda *xs: np.concatenate(xs), *parts)


def grid_cols(n: int) -> int:
  """Columns of the PNG grid of ``n`` images (filled row by row): ceil(sqrt(n))."""
  return int(np.ceil(np.sqrt(n)))


def take(sample, n: int):
  """The first ``n`` samples of one kind."""
  return jax.tree.map(lambda x: x[:n], sample)


# --- writers -------------------------------------------------------------------------------------

def write(name: str, sample, workdir: str, step: int, writer=None) -> str:
  """Writes one named sample set of any kind under ``<workdir>/<name>/`` (and to ``writer``, a
  ``train.writers.MetricWriter``); returns the main file written."""
  sample = jax.device_get(sample)
  for kind, fn in _WRITERS.items():
    if isinstance(sample, kind):
      return fn(name, sample, os.path.join(workdir, name), step, writer)
  raise TypeError(f"sample set {name!r} is a {type(sample).__name__}, not one of "
                  f"{[k.__name__ for k in KINDS]}; return a genai_jax.samples kind from the task")


def _write_images(name, sample: Images, directory, step, writer):
  images = np.asarray(sample.images)
  grid = outputs.image_grid(images, cols=grid_cols(len(images)))
  path = os.path.join(directory, f"step_{step:07d}.png")
  outputs.save_png(grid, path)
  outputs.save_png(grid, os.path.join(directory, "latest.png"))
  if writer is not None:
    writer.image(step, name, grid)
  return path


def _write_tokens(name, sample: Tokens, directory, step, writer):
  rows = np.asarray(sample.tokens)
  p = sample.prompt_len
  blocks = []
  for i, row in enumerate(rows):
    head = f"|{sample.detokenise(row[:p])}|" if p else ""  # the prompt marked off with '|'
    blocks.append(f"=== sample {i} ===\n{head}{sample.detokenise(row[p:])}")
  text = "\n\n".join(blocks) + "\n"
  path = os.path.join(directory, f"step_{step:07d}.txt")
  _write_bytes(text.encode("utf-8"), path)
  _write_bytes(text.encode("utf-8"), os.path.join(directory, "latest.txt"))
  if writer is not None:
    writer.text(step, name, text)
  return path


def _write_audio(name, sample: Audio, directory, step, writer):
  waves = np.asarray(sample.waveforms, np.float32)
  for sub in (f"step_{step:07d}", "latest"):
    for i, w in enumerate(waves):
      _write_bytes(outputs.wav_bytes(w, sample.sample_rate),
                   os.path.join(directory, sub, f"{i}.wav"))
  # One spectrogram per sample (channels mixed down), stacked as a one-column grid.
  mels = np.stack([log_mel(w.mean(-1), sample.sample_rate) for w in waves])  # [N, frames, mels]
  lo, hi = mels.min(), mels.max()
  pictures = (mels - lo) / max(hi - lo, 1e-6) * 2.0 - 1.0
  pictures = np.flip(np.swapaxes(pictures, 1, 2), 1)[..., None]  # [N, mels (low at bottom), frames, 1]
  grid = outputs.image_grid(pictures, cols=1)
  path = os.path.join(directory, f"step_{step:07d}.png")
  outputs.save_png(grid, path)
  outputs.save_png(grid, os.path.join(directory, "latest.png"))
  if writer is not None:
    writer.audio(step, name, waves, sample.sample_rate)
    writer.image(step, f"{name}_log_mel", grid)
  return path


def _write_piano_roll(name, sample: PianoRoll, directory, step, writer):
  from genai_jax import music
  rolls = np.asarray(sample.pitches)
  rate = 16_000
  waves = [music.render(r, rate) for r in rolls]
  for sub in (f"step_{step:07d}", "latest"):
    for i, (r, w) in enumerate(zip(rolls, waves)):
      _write_bytes(music.midi_bytes(r), os.path.join(directory, sub, f"{i}.mid"))
      _write_bytes(outputs.wav_bytes(w, rate), os.path.join(directory, sub, f"{i}.wav"))
  grid = outputs.image_grid(np.stack([music.roll_image(r, sample.prompt_steps) for r in rolls]),
                            cols=1)
  path = os.path.join(directory, f"step_{step:07d}.png")
  outputs.save_png(grid, path)
  outputs.save_png(grid, os.path.join(directory, "latest.png"))
  if writer is not None:
    writer.image(step, name, grid)
    writer.audio(step, name, np.stack(waves)[..., None], rate)
  return path


_WRITERS = {Images: _write_images, Audio: _write_audio, Tokens: _write_tokens,
            PianoRoll: _write_piano_roll}


def _write_bytes(data: bytes, path: str) -> None:
  from genai_jax import storage  # local paths and gs:// alike
  storage.write_bytes(data, path)


def mel_filterbank(num_mel_bins: int, num_spectrogram_bins: int, sample_rate: float,
                   lower_hz: float, upper_hz: float) -> np.ndarray:
  """float32 [num_spectrogram_bins, num_mel_bins]: triangular filters equally spaced on the HTK mel
  scale (mel = 1127 ln(1 + hz / 700)) from ``lower_hz`` to ``upper_hz``, the DC bin zeroed: the
  matrix of ``tf.signal.linear_to_mel_weight_matrix``, in NumPy."""
  def mel(hz):
    return 1127.0 * np.log1p(np.asarray(hz, np.float64) / 700.0)
  bins = mel(np.linspace(0.0, sample_rate / 2.0, num_spectrogram_bins)[1:])[:, None]
  edges = np.linspace(mel(lower_hz), mel(upper_hz), num_mel_bins + 2)
  lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
  weights = np.maximum(0.0, np.minimum((bins - lower) / (center - lower),
                                       (upper - bins) / (upper - center)))
  return np.pad(weights, [(1, 0), (0, 0)]).astype(np.float32)


def log_mel(waveform: np.ndarray, sample_rate: int, num_mel_bins: int = 64,
            frame_length: int = 1024, frame_step: int = 256, lower_hz: float = 20.0) -> np.ndarray:
  """float [..., T] -> log-mel spectrogram float32 [..., frames, num_mel_bins]: |STFT| of frames
  under a periodic Hann window (no end padding, as ``tf.signal.stft``) through
  ``mel_filterbank`` from ``lower_hz`` to Nyquist, then log(x + 1e-6)."""
  x = np.asarray(waveform, np.float32)
  if x.shape[-1] < frame_length:  # one (zero-padded) frame for clips shorter than a window
    x = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, frame_length - x.shape[-1])])
  frames = 1 + (x.shape[-1] - frame_length) // frame_step
  idx = np.arange(frames)[:, None] * frame_step + np.arange(frame_length)[None, :]
  window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(frame_length) / frame_length))
  spectrum = np.abs(np.fft.rfft(x[..., idx] * window.astype(np.float32), axis=-1))
  weights = mel_filterbank(num_mel_bins, frame_length // 2 + 1, sample_rate, lower_hz,
                           sample_rate / 2.0)
  return np.log(spectrum.astype(np.float32) @ weights + 1e-6).astype(np.float32)
