"""Sample kinds and their writers: images, audio (WAV + log-mel), text; kinds pass through jit."""

import glob
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.io.wavfile

from genai_jax import samples
from genai_jax.train import writers


def _hz_to_mel(hz):  # HTK mel scale, as samples.mel_filterbank
  return 1127.0 * np.log1p(np.asarray(hz) / 700.0)


def test_audio_is_written_as_wav_and_log_mel_peaks_at_the_tone(tmp_path):
  rate, tone = 16_000, 1_000.0
  t = np.arange(rate // 2) / rate
  left = 0.5 * np.sin(2 * np.pi * tone * t)
  waves = np.stack([np.stack([left, left], -1), np.stack([left, -left], -1)]).astype(np.float32)
  writer = writers.MetricWriter(str(tmp_path))
  path = samples.write("audio", samples.Audio(jnp.asarray(waves), rate), str(tmp_path), 7, writer)
  writer.close()
  assert path.endswith("audio/step_0000007.png") and os.path.getsize(path) > 100
  for sub in ("step_0000007", "latest"):
    for i in range(2):
      read_rate, pcm = scipy.io.wavfile.read(os.path.join(tmp_path, "audio", sub, f"{i}.wav"))
      assert read_rate == rate and pcm.dtype == np.int16 and pcm.shape == (rate // 2, 2)
      np.testing.assert_allclose(pcm / 32767.0, waves[i], atol=1 / 32767)
  assert glob.glob(str(tmp_path / "events.out.tfevents.*"))

  # 64 HTK mel bands from 20 Hz to Nyquist: band b is centred on edge b + 1 of 66 equally spaced
  # mel edges, so the tone falls in the band whose centre is nearest to its mel value.
  mel = samples.log_mel(left, rate, num_mel_bins=64)
  edges = np.linspace(_hz_to_mel(20.0), _hz_to_mel(rate / 2), 66)
  expected = int(np.argmin(np.abs(edges[1:-1] - _hz_to_mel(tone))))
  assert mel.shape[1] == 64
  assert set(np.argmax(mel, axis=1)) == {expected}


def test_log_mel_matches_tensorflow_signal():
  """The NumPy log-mel is tf.signal's (the SC09 classifier's cached weights were trained on it)."""
  tf = pytest.importorskip("tensorflow")  # installed with the build extra (make test)
  x = np.random.default_rng(0).uniform(-1, 1, (3, 5000)).astype(np.float32)
  for rate in (16_000, 22_050):
    want_w = tf.signal.linear_to_mel_weight_matrix(64, 513, rate, 20.0, rate / 2.0).numpy()
    np.testing.assert_allclose(samples.mel_filterbank(64, 513, rate, 20.0, rate / 2.0), want_w,
                               atol=5e-5)
    stft = tf.signal.stft(x, 1024, 256, fft_length=1024)
    want = np.log(tf.matmul(tf.abs(stft), want_w).numpy() + 1e-6)
    np.testing.assert_allclose(samples.log_mel(x, rate), want, atol=1e-4)


def test_images_and_tokens_writers(tmp_path):
  images = samples.Images(jnp.linspace(-1, 1, 4 * 5 * 5).reshape(4, 5, 5, 1))
  path = samples.write("grid", images, str(tmp_path), 3)
  assert path.endswith("grid/step_0000003.png") and os.path.exists(tmp_path / "grid" / "latest.png")

  alphabet = "abcdefgh"
  detok = lambda row: "".join(alphabet[i] for i in row)
  tokens = samples.Tokens(jnp.array([[0, 1, 2, 3], [4, 5, 6, 7]]), detok, prompt_len=1)
  samples.write("text", tokens, str(tmp_path), 3)
  text = open(tmp_path / "text" / "latest.txt").read()
  assert text == "=== sample 0 ===\n|a|bcd\n\n=== sample 1 ===\n|e|fgh\n"
  assert tokens.texts() == ["bcd", "fgh"] and tokens.texts(False) == ["abcd", "efgh"]
  with pytest.raises(TypeError, match="not one of"):
    samples.write("raw", np.zeros((2, 3)), str(tmp_path), 3)


def test_kinds_are_pytrees_that_keep_their_static_fields_through_jit():
  f = jax.jit(lambda x: samples.Audio(jnp.tanh(x), 8_000))
  out = f(jnp.zeros((2, 10, 1)))
  assert isinstance(out, samples.Audio) and out.sample_rate == 8_000
  both = samples.concatenate([jax.device_get(out), jax.device_get(out)])
  assert both.waveforms.shape == (4, 10, 1) and samples.num_items(samples.take(both, 3)) == 3
