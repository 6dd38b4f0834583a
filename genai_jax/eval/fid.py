"""Fréchet distance (FID/FCD), KID and Inception Score on features, and cached reference statistics.

All host-side numpy in float64: the features come from a jitted extractor; these reductions are
small and need the precision (FID subtracts traces of 2048x2048 matrices).
"""

import hashlib
import json
import os
from typing import Optional

import numpy as np
import scipy.linalg
import scipy.special

from genai_jax import multihost


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """float [N, D] -> (mu float64 [D], sigma float64 [D, D]), sigma the unbiased (N-1) covariance
  as in TTUR/pytorch-fid (``np.cov(rowvar=False)``)."""
  f = np.asarray(features, np.float64)
  if len(f) < 2:
    raise ValueError(f"need at least 2 feature vectors for a covariance, got {len(f)}")
  return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
  """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2}) for Gaussians N(mu1, S1), N(mu2, S2).

  tr((S1 S2)^{1/2}) is computed as the sum of square roots of the eigenvalues of the symmetric
  PSD matrix S1^{1/2} S2 S1^{1/2} (same spectrum as S1 S2), via two ``eigh``: exact for the PSD
  covariances FID uses, and free of the complex parts and singular-matrix retries that
  ``scipy.linalg.sqrtm`` needs (the tests check both agree).
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  w, v = np.linalg.eigh((s1 + s1.T) / 2)
  root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
  m = root1 @ s2 @ root1
  ev = np.linalg.eigvalsh((m + m.T) / 2)
  tr_covmean = np.sqrt(np.clip(ev, 0, None)).sum()
  diff = mu1 - mu2
  return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def frechet_distance_sqrtm(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
  """The pytorch-fid/TTUR formula with ``scipy.linalg.sqrtm`` (reference for tests)."""
  mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
  s1, s2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
  covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False)
  if not np.isfinite(covmean).all():
    offset = np.eye(s1.shape[0]) * eps
    covmean = scipy.linalg.sqrtm((s1 + offset).dot(s2 + offset))
  covmean = np.real(covmean)
  diff = mu1 - mu2
  return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
  """FID (or any Fréchet feature distance) between two feature sets [N, D] and [M, D]."""
  return frechet_distance(*statistics(real), *statistics(fake))


def kid(real: np.ndarray, fake: np.ndarray, num_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
  """Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD^2 with the kernel
  k(x, y) = (x.y / D + 1)^3, averaged over ``num_subsets`` random subsets of
  ``min(subset_size, N, M)`` rows of each set (the reference/torch-fidelity defaults).

  Returns (mean, std) over subsets; the mean is unbiased, so it is ~0 (and can be negative) when
  both sets come from one distribution.
  """
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  d = real.shape[1]
  m = min(subset_size, len(real), len(fake))
  if m < 2:
    raise ValueError(f"KID needs at least 2 samples per set, got {len(real)} and {len(fake)}")
  rng = np.random.default_rng(seed)
  vals = []
  for _ in range(num_subsets):
    x = real[rng.choice(len(real), m, replace=False)]
    y = fake[rng.choice(len(fake), m, replace=False)]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    vals.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                - 2 * kxy.mean())
  return float(np.mean(vals)), float(np.std(vals))


def inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
  """Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))) over ``splits`` chunks
  of the softmax of the 1008 logits, as in the original code. Returns (mean, std) over splits."""
  logits = np.asarray(logits, np.float64)
  logp = logits - scipy.special.logsumexp(logits, axis=1, keepdims=True)
  p = np.exp(logp)
  scores = []
  for part_p, part_logp in zip(np.array_split(p, splits), np.array_split(logp, splits)):
    py = part_p.mean(0, keepdims=True)
    kl = (part_p * (part_logp - np.log(py))).sum(1).mean()
    scores.append(np.exp(kl))
  return float(np.mean(scores)), float(np.std(scores))


def reference_key(dataset: str, split: str, image_size: int, channels: int, count: int,
                  extractor: str) -> str:
  """A filename-safe cache key: dataset/split/size/channels/count/feature network."""
  raw = json.dumps([dataset, split, image_size, channels, count, extractor])
  tag = hashlib.sha1(raw.encode()).hexdigest()[:10]
  return f"{dataset}_{split}_{image_size}px{channels}c_n{count}_{extractor}_{tag}".replace("/", "-")


def cached_reference(path: str, compute) -> dict:
  """``compute()`` -> {'features': [N, D], ...} saved once as ``path`` (.npz), then read back.

  Reference features are kept (not only mu/sigma) because KID, precision/recall and
  density/coverage need them.
  """
  if os.path.exists(path):
    with np.load(path) as f:
      return {k: f[k] for k in f.files}
  out = compute()
  multihost.save_npz(path, **out)  # atomic, under a name no other process writes
  return out


def default_cache_dir() -> Optional[str]:
  from genai_jax.eval import weights
  return os.path.join(weights.cache_dir(), "reference_stats")
