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
from genai_jax.errors import DataError, DatasetMissingError
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
          for ex in builder.as_data_source(split)}


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
  os.makedirs(tmp_path / "manual" / "speech_commands_v0.02")
  (tmp_path / "manual" / "speech_commands_v0.02" / "validation_list.txt").write_text("")
  with pytest.raises(DataError, match="no testing_list.txt"):
    pipelines.get_builder(cfg)
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


@pytest.mark.slow  # a subprocess
def test_a_prepared_sc09_reads_without_tensorflow(archive):
  from tests import no_tensorflow
  cfg, _ = archive
  code = ("import json, sys, ml_collections\n"
          "from genai_jax.data import pipelines\n"
          "cfg = ml_collections.ConfigDict({**json.loads(sys.argv[1]), 'labels': True})\n"
          "b = next(pipelines.batches(cfg, 'validation', 4, train=False))\n"
          "print(b['audio'].shape, b['label'].dtype)\n")
  r = no_tensorflow.run(["-c", code, cfg.to_json()], timeout=300)
  assert not no_tensorflow.attempts(r.stderr), r.stderr[-3000:]
  assert r.returncode == 0 and r.stdout.split() == ["(4,", "16384,", "1)", "int32"], r.stderr[-3000:]


def test_mock_data_path(tfds_dir):
  cfg = ml_collections.ConfigDict({"kind": "audio", "name": "sc09", "data_dir": "", "shards": 2,
                                   "shuffle_buffer": 8, "labels": True})
  with tfds.testing.mock_data(num_examples=8), \
       mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", return_value=True):
    batch = next(pipelines.batches(cfg, "train", 4, train=True, seed=0))
  assert batch["audio"].shape == (4, 16_384, 1) and batch["audio"].dtype == np.float32
  assert batch["label"].shape == (4,) and ((0 <= batch["label"]) & (batch["label"] < 10)).all()


# --- the SC09 digit classifier and the runner's is_sc09 / fd_sc09 ----------------------------------

CLIP = 4_096  # data.length for these tests: a quarter of WaveGAN's, so training takes seconds


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
  """(data config, variables, test accuracy, cache dir): the classifier trained for 40 steps on a
  miniature SC09 (12 clips per word) and cached, as the evaluation would train it."""
  from genai_jax.eval import sc09_classifier
  root = tmp_path_factory.mktemp("sc09_clf")
  make_speech_commands(str(root / "manual"), per_word=12)
  cfg = _cfg(root, length=CLIP, shuffle_buffer=256, train_split="train", eval_split="validation")
  train = sc09_classifier.train
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(sc09_classifier, "train",
               lambda c, steps: train(c, steps=40, batch=32, max_shift=400))
    variables, acc = sc09_classifier.load_or_train(cfg, str(root / "cache"))
  return cfg, variables, acc, str(root / "cache")


def test_jnp_log_mel_is_samples_log_mel():
  from genai_jax import samples
  from genai_jax.eval import sc09_classifier
  x = np.random.default_rng(0).normal(0, 0.3, (2, 5_000)).astype(np.float32)
  got = np.asarray(sc09_classifier.log_mel(x))
  for row, want in zip(x, got):
    np.testing.assert_allclose(want, samples.log_mel(row, 16_000), atol=1e-4)


@pytest.mark.slow
def test_classifier_learns_the_digits_and_is_cached(classifier, monkeypatch):
  from genai_jax.eval import sc09_classifier
  cfg, variables, acc, cache = classifier
  assert acc >= 0.9  # 20 test clips, tones 120 Hz apart
  monkeypatch.setattr(sc09_classifier, "train", lambda *a, **k: pytest.fail("retrained"))
  again, acc2 = sc09_classifier.load_or_train(cfg, cache)
  assert acc2 == acc and sc09_classifier.fingerprint(again) == sc09_classifier.fingerprint(variables)


@pytest.mark.slow
def test_inception_score_and_frechet_distance_on_the_classifier(classifier):
  from genai_jax.eval import fid, sc09_classifier
  cfg, variables, _, _ = classifier
  extract = sc09_classifier.make_extractor(variables)
  clips = {s: np.concatenate([x for x, _ in pipelines.audio_clips(cfg, s)])
           for s in ("train", "validation", "test")}
  real = np.concatenate(list(clips.values()))  # 120 clips, 12 per digit
  out = extract(real)
  assert out["features"].shape == (120, 128) and out["logits"].shape == (120, 10)
  score, _ = fid.inception_score(out["logits"], splits=1)
  same, _ = fid.inception_score(extract(np.repeat(real[:1], 40, 0))["logits"], splits=1)
  assert score > 8 and same < 1.01  # ~10 classes, confidently; one clip: 1
  held_out = np.concatenate([clips["validation"], clips["test"]])
  noise = np.random.default_rng(0).normal(0, 0.3, held_out.shape).astype(np.float32)
  real_vs_real = fid.fid_from_features(extract(clips["train"])["features"],
                                       extract(held_out)["features"])
  real_vs_noise = fid.fid_from_features(extract(clips["train"])["features"],
                                        extract(noise)["features"])
  assert real_vs_noise > 10 * real_vs_real


def _tone_task(length, noise=False):
  """A stand-in generator: clips of random digits' tones (or noise) as ``samples.Audio``."""
  import jax
  import jax.numpy as jnp
  from genai_jax import samples
  from genai_jax.tasks.base import Task
  from tests.helpers import tone

  def generate(state, key, n):
    k1, k2 = jax.random.split(key)
    t = jnp.arange(length) / 16_000
    f = tone(jax.random.randint(k1, (n, 1), 0, 10))
    x = 0.4 * jnp.sin(2 * jnp.pi * f * t) * (t > 0.05) + 0.01 * jax.random.normal(k2, (n, length))
    if noise:
      x = 0.3 * jax.random.normal(k2, (n, length))
    return samples.Audio(x[..., None] + state)
  return Task(init=lambda rng: jnp.zeros(()), train_step=None, generate=generate)


@pytest.mark.slow
def test_evaluator_scores_audio_with_is_sc09_and_fd_sc09(classifier):
  from genai_jax.eval.audio_evaluator import AudioEvaluator
  cfg, _, acc, cache = classifier
  config = ml_collections.ConfigDict({"data": cfg, "batch_size": 50, "seed": 0})
  tones = AudioEvaluator(config, "", 200, cache_dir=cache, task=_tone_task(CLIP))
  assert tones.metrics == ("fd_logmel", "is_sc09", "fd_sc09")  # the Audio defaults on sc09
  good = tones(np.zeros((), np.float32))
  bad = AudioEvaluator(config, "is_sc09,fd_sc09", 200, cache_dir=cache,
                       task=_tone_task(CLIP, noise=True))(np.zeros((), np.float32))
  assert set(good) == {"fd_logmel", "is_sc09", "is_sc09_std", "is_sc09_real", "fd_sc09"}
  assert good["is_sc09"] > 5 and good["is_sc09_real"] > 4  # 20 (real: 8) clips per split
  assert bad["fd_sc09"] > 5 * good["fd_sc09"]
  assert f"test accuracy {acc:.3f}" in tones.notes[0] and "not FID" in tones.notes[0]


@pytest.mark.slow
def test_sc09_metrics_on_other_data_or_lengths_are_one_line_config_errors(classifier):
  from genai_jax.errors import ConfigError
  from genai_jax.eval.audio_evaluator import AudioEvaluator
  cfg, _, _, cache = classifier
  other = ml_collections.ConfigDict({**cfg, "name": "bach_chorales_audio/tiny"})
  for data, length, match in ((other, CLIP, "data.name=sc09"),
                              (cfg, CLIP // 2, f"data.length={CLIP // 2}")):
    config = ml_collections.ConfigDict({"data": data, "batch_size": 8, "seed": 0})
    with pytest.raises(ConfigError, match=match) as e:
      AudioEvaluator(config, "fd_sc09", 16, cache_dir=cache, task=_tone_task(length))
    assert "\n" not in str(e.value)
