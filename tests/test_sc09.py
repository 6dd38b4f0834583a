"""SC09 (the spoken digits of Speech Commands): the manual-download builder on a miniature
archive (extracted and .tar.gz), the audio pipeline with labels, and tfds mock data."""

import os
from unittest import mock

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from genai_jax.data import pipelines, specs
from genai_jax.data.builders import sc09
from genai_jax.errors import DatasetMissingError
from tests.helpers import make_speech_commands


def _cfg(root, **kw):
  return ml_collections.ConfigDict({"kind": "audio", "name": "sc09", "data_dir": str(root / "tfds"),
                                    "manual_dir": str(root / "manual"), "shards": 2,
                                    "shuffle_buffer": 64, **kw})


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
  """(data config, written clips) of a prepared miniature SC09, from the .tar.gz."""
  root = tmp_path_factory.mktemp("sc09")
  clips = make_speech_commands(str(root / "manual"), per_word=8, tar=True)
  cfg = _cfg(root)
  pipelines.get_builder(cfg)
  return cfg, clips


def _read_all(builder, split):
  return {(int(ex["label"]), ex["speaker"].decode()): ex["audio"]
          for ex in tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False))}


@pytest.mark.parametrize("tar", [False, True])
def test_builder_keeps_the_digits_in_the_archives_splits_and_round_trips_audio(tmp_path, tar):
  clips = make_speech_commands(str(tmp_path / "manual"), per_word=6, tar=tar)
  builder = pipelines.get_builder(_cfg(tmp_path))
  assert builder.info.features["label"].names == list(sc09.DIGITS)
  for split in ("train", "validation", "test"):
    got = _read_all(builder, split)
    want = {(label, sc09.speaker(path)): wave for path, (label, wave) in clips[split].items()}
    assert builder.info.splits[split].num_examples == len(want) == 20  # 2 per digit, no 'yes'
    assert got.keys() == want.keys()
    for k, wave in want.items():
      assert got[k].dtype == np.int16
      np.testing.assert_array_equal(got[k], wave)  # as stored: 12,000 or 16,000 samples
  assert {len(w) for w in _read_all(builder, "train").values()} == {12_000, 16_000}


def test_missing_archive_is_one_line_naming_the_file_and_the_manual_dir(tmp_path):
  cfg = _cfg(tmp_path)
  for prepare in (lambda: None, lambda: os.makedirs(tmp_path / "manual" / "other")):
    prepare()  # the manual dir absent, then present without the archive
    with pytest.raises(DatasetMissingError) as e:
      pipelines.get_builder(cfg)
    msg = str(e.value)
    assert "\n" not in msg and "speech_commands_v0.02.tar.gz" in msg and cfg.manual_dir in msg
  make_speech_commands(cfg.manual_dir, per_word=5, version="v0.01", tar=True)
  assert pipelines.get_builder(ml_collections.ConfigDict({**cfg, "name": "sc09/v0.01"})) \
      .info.splits["test"].num_examples == 20


def test_audio_batches_pad_to_wavegan_length_and_carry_labels(archive):
  cfg, clips = archive
  cfg = ml_collections.ConfigDict({**cfg, "labels": True})
  batch = next(pipelines.batches(cfg, "validation", 8, train=False))
  assert {k: (v.shape, v.dtype) for k, v in batch.items()} == \
      {k: (v.shape, v.dtype) for k, v in specs.batch_spec(cfg, 8).items()}
  assert batch["audio"].shape == (8, 16_384, 1) and batch["label"].dtype == np.int32
  by_content = {w.tobytes(): label for label, w in clips["validation"].values()}
  for clip, label in zip(batch["audio"][..., 0], batch["label"]):
    n = 16_000 if np.any(clip[12_000:]) else 12_000
    stored = np.rint(clip[:n] * 32768).astype(np.int16)
    assert by_content[stored.tobytes()] == label and not clip[n:].any()  # zero-padded end
  train = next(pipelines.batches(cfg, "train", 8, train=True, seed=0))
  assert train["audio"].shape == (8, 16_384, 1) and set(train) == {"audio", "label"}


def test_mock_data_path(tfds_dir):
  cfg = ml_collections.ConfigDict({"kind": "audio", "name": "sc09", "data_dir": "", "shards": 2,
                                   "shuffle_buffer": 8, "labels": True})
  with tfds.testing.mock_data(num_examples=8), \
       mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", return_value=True):
    batch = next(pipelines.batches(cfg, "train", 4, train=True, seed=0))
  assert batch["audio"].shape == (4, 16_384, 1) and batch["audio"].dtype == np.float32
  assert batch["label"].shape == (4,) and ((0 <= batch["label"]) & (batch["label"] < 10)).all()
