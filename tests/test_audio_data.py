"""data.kind='audio': tfds Audio features as float clips of a fixed length (speech_commands under
mock data; the embedded rendered chorales)."""

from unittest import mock

import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from genai_jax.data import pipelines, specs


def _cfg(name, **kw):
  return ml_collections.ConfigDict({"kind": "audio", "name": name, "data_dir": "", "shards": 2,
                                    "shuffle_buffer": 16, **kw})


def test_speech_commands_clips_are_zero_padded_to_wavegan_length(tfds_dir):
  cfg = _cfg("speech_commands")
  # mock_data fakes the records but not the "prepared" marker files, so say they are there.
  with tfds.testing.mock_data(num_examples=8), \
       mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", return_value=True):
    raw = pipelines.get_builder(cfg).as_data_source("validation")[0]
    batch = next(pipelines.batches(cfg, "validation", 4, train=False))
  audio = batch["audio"]
  assert audio.shape == (4, 16_384, 1) and audio.dtype == np.float32
  assert {k: v.shape for k, v in specs.batch_spec(cfg, 4).items()} == {"audio": audio.shape}
  n = len(raw["audio"])  # mock clips are short: the rest is silence
  np.testing.assert_allclose(audio[0, :n, 0], raw["audio"] / 32768.0)
  assert not audio[0, n:].any()


def test_rendered_chorale_clips_are_cropped_at_random_in_training(tfds_dir):
  cfg = _cfg("bach_chorales_audio/tiny", length=4_096)
  train = next(pipelines.batches(cfg, "train", 4, train=True, seed=0))["audio"]
  resumed = next(pipelines.batches(cfg, "train", 4, train=True, seed=0, start_step=1))["audio"]
  again = list(zip(range(2), pipelines.batches(cfg, "train", 4, train=True, seed=0)))[1][1]["audio"]
  assert train.shape == (4, 4_096, 1) and 0.01 < np.abs(train).max() < 1.0
  np.testing.assert_array_equal(resumed, again)
  ev = next(pipelines.batches(cfg, "validation", 2, train=False))["audio"]
  raw = pipelines.get_builder(cfg).as_data_source("validation")[0]["audio"]
  np.testing.assert_allclose(ev[0, :, 0], raw[:4_096] / 32768.0)  # eval: the clip's start


def test_the_classifier_mel_filterbank_is_tf_signals():
  tf = __import__("pytest").importorskip("tensorflow")  # the reference; scoring never imports it
  from genai_jax.eval import sc09_classifier
  for rate in (16_000, 22_050):
    want = tf.signal.linear_to_mel_weight_matrix(64, 513, rate, 20.0, rate / 2.0).numpy()
    np.testing.assert_allclose(sc09_classifier.mel_matrix(rate), want, atol=5e-5)  # TF computes in float32
