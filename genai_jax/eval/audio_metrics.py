"""A Fréchet distance on log-mel statistics for audio clips (``fd_logmel``).

Each clip (channels mixed down) becomes one feature vector: the per-mel-bin mean and standard
deviation over time of its log-mel spectrogram (``samples.log_mel``: 1024-sample Hann frames,
hop 256, ``MEL_BINS`` bins from 20 Hz to Nyquist), 2 * MEL_BINS numbers. ``fd_logmel`` is the
Fréchet distance between Gaussians fitted to the real and the generated feature sets, as FID is
on Inception features.

It is *not* FAD (Kilgour et al. 2019), which uses VGGish embeddings: no audio embedding network
ships here, and this statistic sees only the average spectrum and its loudness variation per
band (timbre, pitch register, level), not phonetic or musical structure. Read it against
reference points on the same clips: real vs real (held-out vs training clips: the floor at this
sample size) and white noise vs real. 32 bins (64 features) rather than the spectrogram PNG's 64
keep the covariance estimable from a few hundred clips.
"""

import numpy as np

from genai_jax import samples
from genai_jax.eval import fid as fid_lib

MEL_BINS = 32


def logmel_features(waveforms: np.ndarray, sample_rate: int, batch: int = 256) -> np.ndarray:
  """float [N, T, C] (or [N, T]) clips in [-1, 1] -> float64 [N, 2 * MEL_BINS]: per clip, the
  mean over frames of each log-mel bin, then each bin's standard deviation over frames."""
  x = np.asarray(waveforms, np.float32)
  if x.ndim == 3:
    x = x.mean(-1)
  out = []
  for i in range(0, len(x), batch):  # bounded memory for long clips
    mel = samples.log_mel(x[i:i + batch], sample_rate, num_mel_bins=MEL_BINS)  # [n, frames, bins]
    out.append(np.concatenate([mel.mean(1), mel.std(1)], axis=-1))
  return np.concatenate(out).astype(np.float64)


def fd_logmel(real: np.ndarray, fake: np.ndarray) -> float:
  """The Fréchet distance between Gaussian fits of two ``logmel_features`` sets [N, D], [M, D]."""
  return fid_lib.fid_from_features(real, fake)


def white_noise(like: np.ndarray, seed: int = 0) -> np.ndarray:
  """Gaussian white noise shaped as ``like`` (float [N, T, C]) at its RMS level, clipped to
  [-1, 1]: the 'no model at all' reference point for ``fd_logmel``."""
  rms = float(np.sqrt(np.mean(np.square(np.asarray(like, np.float64)))))
  noise = np.random.default_rng(seed).normal(0.0, rms, like.shape)
  return np.clip(noise, -1.0, 1.0).astype(np.float32)
