"""Diversity and novelty of generated text, on sequences of hashable units (words or token ids).

* distinct-n (Li et al. 2016): unique n-grams / all n-grams, pooled over every sample; 1 when
  nothing repeats, near 0 for a model that loops or collapses.
* self-BLEU (Zhu et al. 2018, Texygen): the mean over samples of BLEU-4 of each sample against
  all the others as references (clipped counts: the most any one reference holds; brevity
  penalty against the closest reference length; uniform weights over 1..4-grams; a zero match
  count becomes 0.1 as in NLTK's smoothing method 1). High = the samples resemble each other.
* memorisation: the share of the samples' n-grams (n = 8) found verbatim in the training text.
"""

import collections
import math
from typing import Sequence

import numpy as np


def ngrams(seq: Sequence, n: int) -> list:
  """The n-grams of ``seq`` as tuples, in order (none when len(seq) < n)."""
  return [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]


def distinct_n(samples: Sequence[Sequence], n: int) -> float:
  """Unique n-grams / total n-grams over all samples (0 when there are none)."""
  grams = [g for s in samples for g in ngrams(s, n)]
  return len(set(grams)) / len(grams) if grams else 0.0


def _bleu(hyp_counts: list, clip: list, hyp_len: int, closest_ref_len: int, epsilon: float) -> float:
  """BLEU from per-order hypothesis n-gram Counters and the clipping count of each n-gram."""
  if hyp_len == 0:
    return 0.0
  max_n = len(hyp_counts)
  log_p = 0.0
  for hyp, most in zip(hyp_counts, clip):
    total = sum(hyp.values())
    if total == 0:  # shorter than n: no evidence of this order; smoothed as a zero match
      log_p += math.log(epsilon) / max_n
      continue
    matches = sum(min(c, most(g)) for g, c in hyp.items())
    log_p += math.log((matches or epsilon) / total) / max_n
  brevity = 1.0 if hyp_len > closest_ref_len else math.exp(1.0 - closest_ref_len / hyp_len)
  return brevity * math.exp(log_p)


def _closest(lengths: Sequence[int], h: int) -> int:
  return min((abs(r - h), r) for r in lengths)[1]  # ties: the shorter, as NLTK


def bleu(hypothesis: Sequence, references: Sequence[Sequence], max_n: int = 4,
         epsilon: float = 0.1) -> float:
  """Sentence BLEU-``max_n`` of one hypothesis against several references, in [0, 1]."""
  if not hypothesis or not references:
    return 0.0
  hyp = [collections.Counter(ngrams(hypothesis, n)) for n in range(1, max_n + 1)]
  refs = [[collections.Counter(ngrams(r, n)) for r in references] for n in range(1, max_n + 1)]
  clip = [lambda g, rs=rs: max(r[g] for r in rs) for rs in refs]
  return _bleu(hyp, clip, len(hypothesis), _closest([len(r) for r in references], len(hypothesis)),
               epsilon)


def self_bleu(samples: Sequence[Sequence], max_n: int = 4, epsilon: float = 0.1) -> float:
  """Mean BLEU of each sample against all the others (needs at least 2 samples). Linear in the
  number of n-grams: each n-gram's largest count in any other sample is the largest or the
  second-largest count over all samples."""
  if len(samples) < 2:
    raise ValueError(f"self-BLEU needs at least 2 samples, got {len(samples)}")
  counts = [[collections.Counter(ngrams(list(s), n)) for n in range(1, max_n + 1)] for s in samples]
  top = []  # per order: n-gram -> (largest count, its sample, second-largest count)
  for n in range(max_n):
    best = {}
    for i, per in enumerate(counts):
      for g, c in per[n].items():
        c1, i1, c2 = best.get(g, (0, -1, 0))
        best[g] = (c, i, c1) if c > c1 else (c1, i1, max(c2, c))
    top.append(best)
  lengths = [len(s) for s in samples]
  scores = []
  for i, per in enumerate(counts):
    clip = [lambda g, b=b: b[g][0] if b[g][1] != i else b[g][2] for b in top]
    others = lengths[:i] + lengths[i + 1:]
    scores.append(_bleu(per, clip, lengths[i], _closest(others, lengths[i]), epsilon))
  return float(np.mean(scores))


class NgramIndex:
  """The set of n-grams of a long integer sequence (e.g. a training corpus), sorted for lookups.

  Each n-gram is stored as its ``n`` ids' bytes (an exact key: no hashing), so an index of a
  2.7M-token corpus takes ~n x 4 bytes per position.
  """

  def __init__(self, ids: np.ndarray, n: int):
    self.n = n
    self.keys = np.unique(self._keys(np.asarray(ids)))

  def _keys(self, ids: np.ndarray) -> np.ndarray:
    ids = np.asarray(ids, np.int32)
    if len(ids) < self.n:
      return np.zeros((0,), np.dtype((np.void, 4 * self.n)))
    windows = np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(ids, self.n))
    return windows.view(np.dtype((np.void, 4 * self.n))).reshape(-1)

  def contains(self, ids: np.ndarray) -> np.ndarray:
    """bool [len(ids) - n + 1]: whether each n-gram of ``ids`` occurs in the indexed sequence."""
    q = self._keys(ids)
    if not len(self.keys) or not len(q):
      return np.zeros(len(q), bool)
    pos = np.minimum(np.searchsorted(self.keys, q), len(self.keys) - 1)
    return self.keys[pos] == q


def memorisation(samples: Sequence[np.ndarray], index: NgramIndex) -> float:
  """Share of the samples' ``index.n``-grams found verbatim in the indexed text (0 when none)."""
  hits = [index.contains(s) for s in samples]
  total = sum(len(h) for h in hits)
  return float(sum(h.sum() for h in hits) / total) if total else 0.0


class WordIds:
  """Maps whitespace-separated words to integer ids (new words get new ids), so word sequences
  of samples and corpus share one id space."""

  def __init__(self):
    self._ids = {}

  def __call__(self, text: str) -> np.ndarray:
    return np.array([self._ids.setdefault(w, len(self._ids)) for w in text.split()], np.int32)
