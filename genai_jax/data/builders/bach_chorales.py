"""J. S. Bach's four-part chorales from the ``music21`` corpus (shipped in its wheel, no network).

* ``bach_chorales``: one example per chorale, ``pitches`` int8 [T, 4] on a sixteenth-note grid
  (``genai_jax.music``: MIDI pitch or -1 rest, soprano, alto, tenor, bass; a held pitch is one
  note, repeated notes merge), plus the corpus ``file`` name.
* ``bach_chorales_audio``: the same chorales rendered at 16 kHz by ``music.render`` (additive
  synthesis, 100 bpm) and cut into non-overlapping clips of 16,384 samples (1.02 s, WaveGAN's
  length), at most ``MAX_CLIPS`` per chorale from its start, as int16 ``audio`` [16384] (1,460
  clips; tfds stores the arrays as integer tensors, 137 MB on disk).

Which chorales: every ``bach/*.mxl`` (and ``.xml``) file of the corpus whose score has exactly
four parts and all of whose notes lie in C2..A5 (MIDI 36..81, Coconet's range); chords inside a
part (rare divisi) keep their highest note; onsets and lengths are rounded to the grid (the few
triplet figures lose their exact rhythm). Kept in their written key: no transposition here (the
training pipeline may transpose, ``data.transpose``).

Split: by file, with a stable hash: ``validation`` when crc32(file name) % 10 == 0 (about 10%),
``train`` otherwise, so no chorale is in both. (Several chorale melodies occur in more than one
harmonisation; those are separate files and may fall on both sides.)

Configs: ``all`` (default) and ``tiny`` (by name, the first ``TINY_FILES`` train files and the
first ``TINY_FILES // 3`` validation files: fast tests).
Parsing every file with music21 takes minutes on one core (measured in docs/audio_and_music.md); tfds caches
the prepared dataset in its data dir, so that happens once.
"""

import functools
import os
import zlib

import numpy as np
import tensorflow_datasets as tfds

TINY_FILES = 12
MAX_CLIPS = 4
CLIP_SAMPLES = 16_384
SAMPLE_RATE = 16_000
VALIDATION_MOD = 10


def chorale_files() -> list:
  """The paths of the corpus's Bach chorale files (``bach/*.mxl`` and ``*.xml``), sorted by name."""
  from music21 import corpus
  return sorted({str(p) for p in corpus.getComposer("bach") if str(p).endswith((".mxl", ".xml"))},
                key=os.path.basename)


def split_files(config: str = "all") -> dict:
  """{'train': paths, 'validation': paths} of builder config ``config`` ('all' or 'tiny')."""
  files = chorale_files()
  out = {"train": [f for f in files if not is_validation(f)],
         "validation": [f for f in files if is_validation(f)]}
  if config == "tiny":
    out = {"train": out["train"][:TINY_FILES], "validation": out["validation"][:TINY_FILES // 3]}
  return out


def is_validation(name: str) -> bool:
  """The file-level split: crc32 of the file's base name, mod 10 == 0."""
  return zlib.crc32(os.path.basename(name).encode()) % VALIDATION_MOD == 0


@functools.lru_cache(maxsize=1024)
def parse(path: str):
  """A chorale file -> int8 roll [T, 4], or None when it is not kept (see the module docstring)."""
  from genai_jax import music
  from music21 import converter
  score = converter.parse(path)
  parts = list(score.parts)
  if len(parts) != music.VOICES:
    return None
  length = int(np.ceil(float(score.highestTime) * music.STEPS_PER_QUARTER))
  roll = np.full((length, music.VOICES), music.REST, np.int16)
  for v, part in enumerate(parts):
    for n in part.flatten().notes:
      pitch = max(p.midi for p in n.pitches)
      start = int(round(float(n.offset) * music.STEPS_PER_QUARTER))
      end = int(round(float(n.offset + n.quarterLength) * music.STEPS_PER_QUARTER))
      if end <= start:  # grace notes
        continue
      if not music.LOW <= pitch <= music.HIGH:
        return None
      roll[start:end, v] = pitch
  return roll.astype(np.int8)


class BachChorales(tfds.core.GeneratorBasedBuilder):
  """Four-voice Bach chorales as sixteenth-note piano rolls (music21 corpus)."""
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "music21 corpus bach/*, 4 parts, MIDI 36..81, crc32 file split."}
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="all", description="every kept chorale"),
                     tfds.core.BuilderConfig(name="tiny", description=f"{TINY_FILES} + {TINY_FILES // 3} files")]

  def _info(self):
    return self.dataset_info_from_configs(
        description="J. S. Bach's four-part chorales (music21 corpus) as piano rolls, "
                    "int8 [T, 4] MIDI pitches on a sixteenth-note grid, -1 = rest.",
        features=tfds.features.FeaturesDict({
            "pitches": tfds.features.Tensor(shape=(None, 4), dtype=np.int8),
            "file": tfds.features.Text()}),
        homepage="https://web.mit.edu/music21/",
        citation="Cuthbert & Ariza, music21: A Toolkit for Computer-Aided Musicology, ISMIR 2010.")

  def _split_generators(self, dl_manager):
    return {k: self._generate_examples(v) for k, v in split_files(self.builder_config.name).items()}

  def _generate_examples(self, files):
    for f in files:
      roll = parse(f)
      if roll is not None:
        name = os.path.basename(f)
        yield name, {"pitches": roll, "file": name}


class BachChoralesAudio(tfds.core.GeneratorBasedBuilder):
  """The Bach chorales rendered to 16 kHz audio, in clips of 16,384 samples."""
  VERSION = tfds.core.Version("1.1.0")
  # Not tfds.features.Audio: its constructor needs TensorFlow (tf.dtypes), so a dataset with one
  # cannot even be opened where TensorFlow is absent. The rate is in the metadata instead.
  RELEASE_NOTES = {"1.0.0": "music.render (additive synthesis, 100 bpm), <= 4 clips per chorale.",
                   "1.1.0": "int16 samples as a Tensor feature, sample_rate in the metadata."}
  BUILDER_CONFIGS = BachChorales.BUILDER_CONFIGS

  def _info(self):
    return self.dataset_info_from_configs(
        description="Bach chorales (music21 corpus) rendered by additive synthesis at 16 kHz, "
                    f"cut into clips of {CLIP_SAMPLES} samples.",
        features=tfds.features.FeaturesDict({
            "audio": tfds.features.Tensor(shape=(CLIP_SAMPLES,), dtype=np.int16),
            "file": tfds.features.Text()}),
        metadata=tfds.core.MetadataDict(sample_rate=SAMPLE_RATE),
        homepage="https://web.mit.edu/music21/",
        citation="Cuthbert & Ariza, music21: A Toolkit for Computer-Aided Musicology, ISMIR 2010.")

  def _split_generators(self, dl_manager):
    return {k: self._generate_examples(v) for k, v in split_files(self.builder_config.name).items()}

  def _generate_examples(self, files):
    from genai_jax import music
    for f in files:
      roll = parse(f)
      if roll is None:
        continue
      wave = music.render(roll.astype(np.int32), SAMPLE_RATE)
      name = os.path.basename(f)
      for c in range(min(MAX_CLIPS, len(wave) // CLIP_SAMPLES)):
        clip = wave[c * CLIP_SAMPLES:(c + 1) * CLIP_SAMPLES]
        yield f"{name}/{c}", {"audio": np.rint(clip * 32767).astype(np.int16), "file": name}
