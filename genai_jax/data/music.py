"""Symbolic music for token models (``data.kind='music'``): piano-roll windows as token rows.

A split of a piano-roll dataset (a tfds builder with a ``pitches`` int [T, V] feature, e.g. the
embedded ``bach_chorales``) is read whole into host memory (the 433 chorales are ~1 MB). Rows are
windows of ``seq_len / V`` sixteenth-note steps encoded time-major (``genai_jax.music.to_tokens``),
plus one token, as the LM pipeline's ``[seq_len + 1]`` rows (the masked LM uses the first
``seq_len``). Pieces shorter than a window plus one step are left out.

* train: row ``r`` of global batch ``t`` is a window at a uniform position among all windows of
  the split (so long pieces are drawn more often), from an rng of (seed, t) -- resuming at step
  ``s`` is exact by construction -- transposed by a uniform shift in [-transpose, transpose]
  semitones when the whole window stays within ``music.LOW..HIGH`` (otherwise not transposed).
* eval: consecutive non-overlapping windows of the pieces in order, cycling.
Each process takes its contiguous block of rows, so batches do not depend on the process count.
"""

import functools
from typing import Iterator

import numpy as np

from genai_jax import music, samples
from genai_jax.errors import ConfigError


@functools.lru_cache(maxsize=8)
def _cached_rolls(name, data_dir, split, key) -> tuple:
  from genai_jax.data import reader  # lazily: reader loads tfds; the vocabulary needs none
  cfg = {"name": name, "data_dir": data_dir}
  builder = reader.get_builder(_Cfg(cfg))
  return tuple(np.asarray(ex[key], np.int32) for ex in reader.read_all(builder, split, name))


class _Cfg(dict):
  def __getattr__(self, k):
    return self.get(k)


def split_rolls(cfg, split: str) -> tuple:
  """The pieces of ``split`` as int32 rolls [T_i, V] (MIDI pitch or -1), in file order; cached."""
  from genai_jax.data import reader
  return _cached_rolls(cfg.name, reader.data_dir(cfg), split, cfg.get("pitches_key", "pitches"))


def window_steps(cfg) -> int:
  """Steps per window: ``cfg.seq_len / V`` (a ConfigError unless it divides)."""
  if cfg.seq_len % music.VOICES:
    raise ConfigError(f"data.seq_len={cfg.seq_len} is not a multiple of the {music.VOICES} "
                      f"voices (tokens are time-major, {music.VOICES} per step); set it to one")
  return cfg.seq_len // music.VOICES


def music_batches(cfg, split: str, global_batch: int, *, train: bool, seed: int = 0,
                  start_step: int = 0) -> Iterator[dict]:
  """``{'tokens': int32 [global_batch / P, seq_len + 1]}`` windows of piano rolls (see above)."""
  steps = window_steps(cfg) + 1  # one step more than the window, cut to seq_len + 1 tokens
  pieces = [r for r in split_rolls(cfg, split) if len(r) >= steps]
  if not pieces:
    raise ConfigError(f"no piece of split {split!r} of {cfg.name!r} is {steps} steps long; "
                      f"lower data.seq_len", keys=("data.seq_len",))
  starts = np.concatenate([[0], np.cumsum([len(r) - steps + 1 for r in pieces])])
  from genai_jax.data import reader
  mine = reader.process_rows(global_batch)
  shift_max = int(cfg.get("transpose", 0))
  if train:
    flat = None
  else:  # the non-overlapping windows, in order
    flat = [(i, o) for i, r in enumerate(pieces) for o in range(0, len(r) - steps + 1, steps - 1)]
  length = cfg.seq_len + 1

  def window(i, offset, shift=0):
    w = pieces[i][offset:offset + steps]
    sounding = w[w != music.REST]
    if shift and sounding.size and music.LOW <= sounding.min() + shift and sounding.max() + shift <= music.HIGH:
      w = np.where(w == music.REST, w, w + shift)
    return music.to_tokens(w)[:length]

  def gen():
    step = start_step
    while True:
      if train:  # a fixed function of (seed, step): resume needs no saved iterator state
        rng = np.random.default_rng((seed, step))
        pos = rng.integers(0, starts[-1], global_batch)
        shifts = rng.integers(-shift_max, shift_max + 1, global_batch)
        idx = np.searchsorted(starts, pos, side="right") - 1
        rows = [window(i, p - starts[i], s) for i, p, s in zip(idx, pos, shifts)]
      else:
        rows = [window(*flat[(step * global_batch + r) % len(flat)]) for r in range(global_batch)]
      yield {"tokens": np.stack(rows[mine]).astype(np.int32)}
      step += 1
  return gen()


# --- the token vocabulary, as the LM task reads it -----------------------------------------------

class Vocab:
  """Piano-roll tokens as an LM vocabulary (``size`` = ``music.VOCAB_SIZE``): ``decode`` renders
  token rows as text (one step per line: 'G4 D4 B3 G2', '.' for a rest, '_' for an out-of-vocabulary id) and
  ``as_sample`` makes them a ``samples.PianoRoll``. There is no start token (``start_id`` None):
  unconditional samples begin from an empty prompt."""
  size = music.VOCAB_SIZE
  start_id = None

  def encode(self, text: str):
    raise ConfigError("music tokens have no text encoding; prompt with a piano roll "
                      "(genai_jax.music.to_tokens) instead of text")

  def decode(self, ids) -> str:
    ids = np.asarray(ids).reshape(-1)
    names = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
    def name(i):
      if i == 0:
        return "."
      if not 1 <= i < music.VOCAB_SIZE:
        return "_"
      p = int(i) - 1 + music.LOW
      return f"{names[p % 12]}{p // 12 - 1}"
    words = [name(i) for i in ids]
    return "\n".join(" ".join(words[k:k + music.VOICES]) for k in range(0, len(words), music.VOICES))

  def as_sample(self, tokens, prompt_len: int = 0):
    """tokens int32 [N, T * V] -> ``samples.PianoRoll`` [N, T, V] (jittable); ``prompt_len``
    tokens must be whole steps."""
    if prompt_len % music.VOICES:
      raise ConfigError(f"sample.prompt_len={prompt_len} tokens is not a whole number of steps; "
                        f"set it to a multiple of {music.VOICES} (the voices per step)")
    return samples.PianoRoll(music.from_tokens(tokens), prompt_len // music.VOICES)
