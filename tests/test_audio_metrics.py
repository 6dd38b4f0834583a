"""fd_logmel: Fréchet distance on per-clip log-mel statistics, on real rendered chorale clips."""

import ml_collections
import numpy as np

from genai_jax import samples
from genai_jax.eval import audio_evaluator, audio_metrics


def _real_clips(n: int) -> np.ndarray:
  cfg = ml_collections.ConfigDict({"kind": "audio", "name": "bach_chorales_audio/tiny",
                                   "data_dir": "", "length": 4_096, "sample_rate": 16_000})
  return audio_evaluator.real_audio(cfg, "train", n)


def test_features_are_per_clip_log_mel_mean_and_std():
  rng = np.random.default_rng(0)
  clips = rng.uniform(-0.5, 0.5, (3, 2_048, 1)).astype(np.float32)
  feats = audio_metrics.logmel_features(clips, 16_000, batch=2)  # two batches
  assert feats.shape == (3, 2 * audio_metrics.MEL_BINS)
  mel = samples.log_mel(clips[1, :, 0], 16_000, num_mel_bins=audio_metrics.MEL_BINS)
  np.testing.assert_allclose(feats[1], np.concatenate([mel.mean(0), mel.std(0)]), rtol=1e-5,
                             atol=1e-5)


def test_fd_logmel_is_small_for_real_vs_real_large_for_noise_and_grows_with_noise_share(tfds_dir):
  clips = _real_clips(48)
  half = len(clips) // 2  # the tiny train split's clips come file by file: disjoint chorales
  assert half >= 16
  a, b = clips[:half], clips[half:2 * half]
  fa = audio_metrics.logmel_features(a, 16_000)
  feats = lambda x: audio_metrics.logmel_features(x, 16_000)
  noise = audio_metrics.white_noise(b, seed=1)
  real_real = audio_metrics.fd_logmel(fa, feats(b))
  real_noise = audio_metrics.fd_logmel(fa, feats(noise))
  assert real_real < 0.1 * real_noise, (real_real, real_noise)
  # Replace ever more of the second half's clips with noise: the distance grows at every step.
  shares = range(0, half + 1, half // 4)
  mixed = [audio_metrics.fd_logmel(fa, feats(np.concatenate([noise[:k], b[k:]]))) for k in shares]
  assert all(x < y for x, y in zip(mixed, mixed[1:])), mixed
  assert mixed[0] == real_real
