"""Diversity metrics on features (k-NN manifolds) and the held-out discriminator accuracy.

* precision/recall: Kynkäänniemi et al. 2019, "Improved precision and recall metric" (k=3):
  the real manifold is the union of balls around each real feature with radius the distance to
  its k-th nearest real neighbour; precision = fraction of fakes inside it; recall = fraction of
  reals inside the fake manifold built the same way.
* density/coverage: Naeem et al. 2020 (k=5): density = (1 / kM) sum over fakes of the number of
  real balls containing it; coverage = fraction of real balls that contain at least one fake.
* diversity: the mean pairwise feature distance of the fakes over that of the reals, a cheap
  mode-collapse watch (~1 when G is as varied as the data; it falls towards 0 as G collapses).
"""

import numpy as np


def _sq_dists(a: np.ndarray, b: np.ndarray, chunk: int = 1024) -> np.ndarray:
  """Squared Euclidean distances float64 [len(a), len(b)], in row chunks."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  bb = (b * b).sum(1)
  out = np.empty((len(a), len(b)))
  for i in range(0, len(a), chunk):
    x = a[i:i + chunk]
    out[i:i + chunk] = np.maximum((x * x).sum(1)[:, None] + bb[None] - 2 * x @ b.T, 0.0)
  return out


def knn_radii(features: np.ndarray, k: int) -> np.ndarray:
  """float [N, D] -> squared distance of each row to its k-th nearest other row, float64 [N]."""
  if len(features) <= k:
    raise ValueError(f"k={k} nearest neighbours need more than {k} samples, got {len(features)}")
  d = _sq_dists(features, features)
  return np.partition(d, k, axis=1)[:, k]  # column 0 is the point itself (distance 0)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> dict:
  """{'precision', 'recall'} in [0, 1] for features real [N, D] and fake [M, D]."""
  d = _sq_dists(real, fake)  # [N, M]
  precision = (d <= knn_radii(real, k)[:, None]).any(0).mean()
  recall = (d <= knn_radii(fake, k)[None, :]).any(1).mean()
  return {"precision": float(precision), "recall": float(recall)}


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict:
  """{'density' (>= 0, ~1 when fakes match reals), 'coverage' in [0, 1]}."""
  radii = knn_radii(real, k)
  inside = _sq_dists(real, fake) <= radii[:, None]  # [N, M]
  return {"density": float(inside.sum() / (k * inside.shape[1])),
          "coverage": float(inside.any(1).mean())}


def mean_pairwise_distance(features: np.ndarray, max_n: int = 2000) -> float:
  """Mean Euclidean distance over distinct pairs of the first ``max_n`` rows of float [N, D]
  (N >= 2); the cap keeps the O(N^2) cost small at 50k samples."""
  f = np.asarray(features)[:max_n]
  if len(f) < 2:
    raise ValueError(f"a pairwise distance needs 2 or more samples, got {len(f)}")
  d = np.sqrt(_sq_dists(f, f))
  return float(d.sum() / (len(f) * (len(f) - 1)))  # the diagonal is 0


def diversity(real: np.ndarray, fake: np.ndarray, max_n: int = 2000) -> dict:
  """{'diversity': mean pairwise distance of fake [M, D] / that of real [N, D],
  'diversity_fake': the fakes' own mean pairwise distance}."""
  f = mean_pairwise_distance(fake, max_n)
  return {"diversity": f / mean_pairwise_distance(real, max_n), "diversity_fake": f}


def discriminator_accuracy(real_logits: np.ndarray, fake_logits: np.ndarray) -> dict:
  """Held-out D accuracy: real logits [N] (> 0 = real), fake logits [M] (< 0 = fake).

  Returns {'d_acc_real', 'd_acc_fake', 'd_acc'} (d_acc averages the two, so 0.5 = chance and
  1 = D tells every held-out real from every fake).
  """
  r = float((np.asarray(real_logits) > 0).mean())
  f = float((np.asarray(fake_logits) < 0).mean())
  return {"d_acc_real": r, "d_acc_fake": f, "d_acc": (r + f) / 2}
