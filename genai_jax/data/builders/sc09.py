"""SC09: the ten spoken digits "zero".."nine" of Speech Commands (Warden 2018), as WaveGAN uses them.

tfds's own ``speech_commands`` cannot give SC09: it labels every word outside its ten commands
(the digits included) ``_unknown_``. This builder reads the Speech Commands archive itself, which
cannot be downloaded here, so it is a manual-download dataset: place
``speech_commands_v0.02.tar.gz`` (from download.tensorflow.org/data/) in tfds's manual dir,
``~/tensorflow_datasets/downloads/manual/`` (``<data_dir>/downloads/manual/`` for another data dir,
or ``data.manual_dir``), as the archive or extracted into a folder ``speech_commands_v0.02/``.
The ``v0.01`` config reads ``speech_commands_v0.01.tar.gz`` the same way.

* Examples: every ``<digit word>/<speaker>_nohash_<n>.wav`` of the archive; every other word and
  ``_background_noise_`` are left out. ``audio`` int16 [T] at 16 kHz, the clip as stored (T <=
  16,000: some recordings are shorter than 1 s; the training pipeline zero-pads to
  ``data.length``, 16,384 for WaveGAN), ``label`` (ClassLabel zero..nine), ``speaker`` (the hash
  before ``_nohash_`` in the file name).
* Splits, as the archive defines them and WaveGAN's SC09 uses them: ``validation`` = the files
  named in ``validation_list.txt``, ``test`` = those in ``testing_list.txt``, ``train`` = the
  rest. The lists keep a speaker's recordings on one side.
* Sizes: the WaveGAN paper's SC09 (Feb 2018) predates v0.02 (Apr 2018) and has 18,620 training
  clips (the WaveGAN repository scores the real data with ``--n 18620`` on ``sc09/train``); its
  validation/test sizes and the v0.02 counts could not be checked here (no archive), so the
  prepared ``dataset_info.json`` is the record of what a given archive yields.

Reading: a .tar.gz is streamed (``tarfile``; the list files first, then one pass per split) and
each WAV read with ``scipy.io.wavfile``; a clip that is not 16-bit mono 16 kHz is an error.
"""

import io
import os
import tarfile

import numpy as np
import tensorflow_datasets as tfds

from genai_jax.errors import DatasetMissingError, DataError

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SAMPLE_RATE = 16_000
LISTS = {"validation": "validation_list.txt", "test": "testing_list.txt"}
URL = "http://download.tensorflow.org/data/speech_commands_{version}.tar.gz"


def archive_name(version: str) -> str:
  return f"speech_commands_{version}.tar.gz"


def missing(where: str, version: str) -> DatasetMissingError:
  """The one-line error for an absent archive; ``where`` says what is missing where."""
  return DatasetMissingError(
      f"sc09 needs the Speech Commands {version} archive, which cannot be downloaded here: "
      f"{where}; put {archive_name(version)} ({URL.format(version=version)}) there, as is or "
      f"extracted into speech_commands_{version}/, or set data.manual_dir to where it is",
      keys=("data.manual_dir",))


def find_source(manual_dir: str, version: str) -> str:
  """The archive (``speech_commands_<version>.tar.gz``) or extracted folder (``speech_commands_
  <version>/`` holding ``validation_list.txt``) in ``manual_dir``; DatasetMissingError otherwise."""
  tar = os.path.join(manual_dir, archive_name(version))
  folder = os.path.join(manual_dir, f"speech_commands_{version}")
  if os.path.isfile(tar):
    return tar
  if os.path.isfile(os.path.join(folder, LISTS["validation"])):
    return folder
  raise missing(f"neither {archive_name(version)} nor speech_commands_{version}/"
                f"{LISTS['validation']} is in the manual dir {manual_dir}", version)


def _read(path: str) -> bytes:
  with open(path, "rb") as f:
    return f.read()


def _members(source: str):
  """(relative path 'word/file.wav', read() -> bytes) of every file of an archive or folder."""
  if os.path.isdir(source):
    for word in sorted(os.listdir(source)):
      sub = os.path.join(source, word)
      if os.path.isdir(sub):
        for f in sorted(os.listdir(sub)):
          path = os.path.join(sub, f)
          yield f"{word}/{f}", lambda p=path: _read(p)
      else:
        yield word, lambda p=sub: _read(p)
    return
  with tarfile.open(source, "r|gz") as tar:  # streamed: one sequential pass, no seeking
    for m in tar:
      if m.isfile():  # read() is valid only until the next member: callers read at once
        yield (m.name[2:] if m.name.startswith("./") else m.name), \
            lambda m=m: tar.extractfile(m).read()


def read_lists(source: str, version: str = "v0.02") -> dict:
  """{'validation': set of 'word/file.wav', 'test': set} from the archive's two list files."""
  out = {}
  for path, read in _members(source):
    for split, name in LISTS.items():
      if path == name:
        out[split] = {line.strip() for line in read().decode().splitlines() if line.strip()}
    if len(out) == len(LISTS):
      return out
  absent = [n for s, n in LISTS.items() if s not in out][0]
  raise DataError(f"{source} has no {absent}, so it is not a Speech Commands archive; download "
                  f"it again from {URL.format(version=version)}")


def split_of(path: str, lists: dict) -> str:
  for split, names in lists.items():
    if path in names:
      return split
  return "train"


def speaker(path: str) -> str:
  """'zero/0a7c2a8d_nohash_0.wav' -> '0a7c2a8d'."""
  return os.path.basename(path).split("_nohash_")[0]


def read_wav(data: bytes, path: str) -> np.ndarray:
  """16-bit mono 16 kHz WAV bytes -> int16 [T]; DataError otherwise."""
  import scipy.io.wavfile
  rate, wave = scipy.io.wavfile.read(io.BytesIO(data))
  if rate != SAMPLE_RATE or wave.dtype != np.int16 or wave.ndim != 1:
    raise DataError(f"{path}: expected 16-bit mono {SAMPLE_RATE} Hz, got {wave.dtype} "
                    f"{wave.shape} at {rate} Hz; is the archive damaged? download it again")
  return wave


class Sc09(tfds.core.GeneratorBasedBuilder):
  """SC09: the spoken digits zero..nine of Speech Commands, from the manually placed archive."""
  VERSION = tfds.core.Version("1.1.0")
  # Not tfds.features.Audio: its constructor needs TensorFlow (tf.dtypes), so a dataset with one
  # cannot be opened where TensorFlow is absent (the accelerator images). The rate is metadata.
  RELEASE_NOTES = {"1.0.0": "Digit words of the Speech Commands archive; the archive's own "
                            "validation/testing lists.",
                   "1.1.0": "int16 samples as a Tensor feature, sample_rate in the metadata."}
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name="v0.02", description="speech_commands_v0.02.tar.gz"),
      tfds.core.BuilderConfig(name="v0.01", description="speech_commands_v0.01.tar.gz"),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Download speech_commands_v0.02.tar.gz (or _v0.01 for the v0.01 config) from "
      "http://download.tensorflow.org/data/ and place it, as is or extracted into a folder "
      "speech_commands_v0.02/, in the manual dir (default ~/tensorflow_datasets/downloads/manual/).")

  def _info(self):
    return self.dataset_info_from_configs(
        description="SC09: the spoken digits zero..nine of Speech Commands, 1 s (or shorter) "
                    "16 kHz int16 clips, split by the archive's validation and testing lists.",
        features=tfds.features.FeaturesDict({
            "audio": tfds.features.Tensor(shape=(None,), dtype=np.int16),
            "label": tfds.features.ClassLabel(names=DIGITS),
            "speaker": tfds.features.Text()}),
        metadata=tfds.core.MetadataDict(sample_rate=SAMPLE_RATE),
        supervised_keys=("audio", "label"),
        homepage="https://arxiv.org/abs/1804.03209",
        citation="Warden, Speech Commands: A Dataset for Limited-Vocabulary Speech Recognition, "
                 "arXiv:1804.03209, 2018. Donahue, McAuley & Puckette, Adversarial Audio "
                 "Synthesis, ICLR 2019 (SC09).")

  def _split_generators(self, dl_manager):
    version = self.builder_config.name
    try:
      manual_dir = str(dl_manager.manual_dir)
    except AssertionError as e:  # tfds's "Manual directory X does not exist or is empty." + a page
      raise missing(str(e).split(". ")[0].replace("Manual directory", "the manual dir"),
                    version) from None
    source = find_source(manual_dir, version)
    lists = read_lists(source, version)
    return {s: self._generate_examples(source, lists, s) for s in ("train", "validation", "test")}

  def _generate_examples(self, source, lists, split):
    for path, read in _members(source):
      word = path.split("/")[0]
      if word in DIGITS and path.endswith(".wav") and split_of(path, lists) == split:
        yield path, {"audio": read_wav(read(), path), "label": word, "speaker": speaker(path)}
