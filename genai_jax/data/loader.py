"""The host side of the input pipeline: which example goes where (a fixed function of (seed,
step)), and a small pool of threads that reads and decodes batches ahead of the consumer.

Order. A split is cut into ``shards`` even shards (``tfds.even_splits``). Epoch ``e`` of shard
``s`` (n examples) is ``permutation(n)`` from the seed (seed, e, s) (``epoch_order``); position
``p`` of the shard's stream is example ``order(p // n)[p % n]``, and batch ``t`` of the shard
holds positions ``t * per_shard ... (t + 1) * per_shard - 1``. Global batch ``t`` is batch ``t`` of
every shard, concatenated in shard order; a process reads its contiguous block of shards. So a
batch depends on (seed, step) only: not on the process count, and a run that resumes at step
``s`` computes its indices directly (nothing consumed is read or decoded again). Evaluation
reads each shard in order, cycling.

Why our own threads and not grain. grain (``grain==0.2.18``, what MaxText and others use) does
the same index sampling and adds multi-process workers, but those processes are spawned, which
needs the entry point under a ``__main__`` guard and absl flags parsed in every one, and the
accelerator images we target lack grain, so it would travel as a wheel. Our decoding is PIL and
NumPy, which release the GIL for the heavy part (PNG/JPEG decoding, resampling), so threads in
one process share the cores without pickling batches between processes; this module has no
dependency beyond tfds's ``data_source``. The per-example Python work (tfds's record parsing,
the calls into PIL: tens of microseconds) does hold the GIL, which caps tiny images; hence the
decoded cache below. Switch to grain's processes if uncached small images or a pure-Python
augmentation ever bound a run.

Small datasets are decoded once. When a task separates a deterministic decode from its random
augmentation (images: decode, crop, resize vs flip / random crop), the decoded examples of
the shards this process reads are kept in memory, in one array, if they fit ``data.cache_mb``
(default 1024 MiB per iterator; 0: never), and later epochs gather each batch from memory in
one NumPy gather (``BatchIndex`` gives its indices) and augment it with NumPy. A cached
[128, 28, 28, 1] float32 batch over 8 shards (the MLP VAE row of ``make bench-accel``) costs
the consumer thread 38 us, of which the gather is 29 (117 us with a cache and an index lookup
per shard; 2-core dev machine, 5 Dec 2026, thread CPU time).

Throughput (``python -m benchmarks.loader_throughput``; 2-core AMD EPYC dev machine, 4 Dec 2026,
load average 15 from other jobs, so per-thread figures are images per second of the thread's
CPU time): decode + preprocess per thread: the demo's LFW faces (25x25 gray PNG record ->
32x32) 3,890 images/s; MNIST size (28x28 gray PNG) 8,377/s; 64x64 RGB JPEG 4,500/s; CelebA size
(218x178 RGB JPEG -> crop, 64x64) 1,044/s. So a 52k images/s accelerator step needs the decoded
cache (or ~12+ cores for 64x64 JPEGs); the demo preset's 90 faces, cached, gave 71k images/s
(batch 128, one thread, wall clock on that busy machine), decoded every time 550-890/s. Beside
the former tf.data reader in one process (demo preset, batch 64, alternating rounds, median of
5): 8.4x its batches/s cached (per round 4.3-20x), 0.19x with ``cache_mb=0`` (tf.data decodes
in C++ threads without the GIL).
"""

import collections
import concurrent.futures
import functools
import itertools
import os
import threading
from typing import Callable, Iterator, Optional, Sequence

import numpy as np


@functools.lru_cache(maxsize=64)
def epoch_order(n: int, seed: int, epoch: int, shard: int) -> np.ndarray:
  """int64 [n]: the order of a shard's examples in ``epoch`` (a permutation from (seed, epoch,
  shard))."""
  return np.random.default_rng([seed % 2**63, epoch, shard]).permutation(n)


def indices(n: int, positions: np.ndarray, *, train: bool, seed: int, shard: int) -> np.ndarray:
  """int64 [k]: the shard example at each stream position (shuffled per epoch when ``train``,
  in order and cycling otherwise)."""
  positions = np.asarray(positions, np.int64)
  if not train:
    return positions % n
  first, last = int(positions.min()) // n, int(positions.max()) // n  # epochs
  if first == last:  # one epoch (the usual batch)
    return epoch_order(n, seed, first, shard)[positions % n]
  # The stream of the epochs spanned, end to end: one gather, however many epochs.
  stream = np.concatenate([epoch_order(n, seed, e, shard) for e in range(first, last + 1)])
  return stream[positions - first * n]


class BatchIndex:
  """The examples of each batch of a block of shards' streams, as indices into the shards'
  concatenation (example i of the block's j-th shard is ``offsets[j] + i``): batch t holds
  positions ``t * per_shard ... (t + 1) * per_shard - 1`` of every shard, in shard order, at
  the examples ``indices`` gives. Computed ``window`` batches at a time, so that a batch is a
  view of a table rather than a lookup per shard. Not thread-safe: one consumer."""

  def __init__(self, lengths: Sequence[int], shards: Sequence[int], per_shard: int, *,
               train: bool, seed: int, window: int = 64):
    self.lengths, self.shards, self.per_shard = tuple(lengths), tuple(shards), per_shard
    self.train, self.seed, self.window = train, seed, max(1, window)
    self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
    self._first, self._table = None, None
    self._rows = np.tile(np.arange(per_shard, dtype=np.int64), len(self.shards))

  def positions(self, step: int) -> np.ndarray:
    """int64 [len(shards) * per_shard]: each example's position in its shard's stream, for batch
    ``step`` (the same positions in every shard)."""
    return self._rows + step * self.per_shard

  def __call__(self, step: int) -> np.ndarray:
    """int64 [len(shards) * per_shard]: batch ``step``'s examples, shard by shard (read-only)."""
    if self._first is None or not 0 <= step - self._first < self.window:
      per, k = self.per_shard, len(self.shards)
      positions = np.arange(step * per, (step + self.window) * per, dtype=np.int64)
      table = np.stack([off + indices(n, positions, train=self.train, seed=self.seed, shard=s)
                        for n, s, off in zip(self.lengths, self.shards, self.offsets)])
      # [window, shards, per_shard], batch by batch: a batch is one contiguous row.
      table = np.ascontiguousarray(table.reshape(k, self.window, per).transpose(1, 0, 2))
      table.setflags(write=False)  # replaced, never written: a batch's view of it stays valid
      self._first, self._table = step, table
    return self._table[step - self._first].reshape(-1)


def default_threads() -> int:
  """Decode threads: the cores this process may use."""
  try:
    return max(1, len(os.sched_getaffinity(0)))
  except AttributeError:  # macOS
    return max(1, os.cpu_count() or 1)


def stack(parts: Sequence) -> object:
  """A list of per-example arrays (or dicts of them) -> one batch, stacked on a new axis 0."""
  if isinstance(parts[0], dict):
    return {k: np.stack([p[k] for p in parts]) for k in parts[0]}
  return np.stack(parts)


def concat(chunks: Sequence) -> object:
  """Stacked chunks of a batch (arrays or dicts of them) -> the batch, concatenated on axis 0."""
  if len(chunks) == 1:
    return chunks[0]
  if isinstance(chunks[0], dict):
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
  return np.concatenate(chunks)


class Inline:
  """A batch job cheap enough (a gather from memory) to run in the consumer's own thread when
  its batch is due: handing it to a worker would cost more host time than it saves."""

  def __init__(self, job: Callable[[], object]):
    self.job = job

  def result(self):
    return self.job()


def threaded(batch_jobs: Callable[[int], Sequence[Callable[[], object]]], start: int = 0,
             stop: Optional[int] = None, *, threads: int = 0, prefetch: int = 4) -> Iterator:
  """Yields ``concat([job() for job in batch_jobs(t)])`` for t = start, start + 1, ... (< stop),
  with the jobs of the next ``prefetch`` batches running on ``threads`` worker threads (0: one
  per core); ``Inline`` jobs run in the consumer's thread when their batch is due. The order of
  batches and of jobs within a batch is kept, so the output does not depend on the thread
  count. An exception in a job is raised at its batch. Closing the iterator (or dropping it)
  cancels the queued work."""
  pool = concurrent.futures.ThreadPoolExecutor(threads or default_threads(),
                                               thread_name_prefix="genai_jax-data")
  steps = itertools.count(start) if stop is None else iter(range(start, stop))
  pending = collections.deque()

  def submit():
    t = next(steps, None)
    if t is not None:
      pending.append([job if isinstance(job, Inline) else pool.submit(job)
                      for job in batch_jobs(t)])

  try:
    for _ in range(max(1, prefetch)):
      submit()
    while pending:
      futures = pending.popleft()
      submit()
      yield concat([f.result() for f in futures])
  finally:
    pool.shutdown(wait=False, cancel_futures=True)


def chunks(items: Sequence, parts: int) -> list:
  """``items`` cut into at most ``parts`` contiguous, nearly equal, non-empty lists."""
  parts = max(1, min(parts, len(items)))
  bounds = np.linspace(0, len(items), parts + 1).astype(int)
  return [items[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


class DecodedCache:
  """``n`` decoded examples (arrays, or dicts of arrays, of one shape; a process's shards, end to
  end), kept after their first decode when all ``n`` fit ``budget`` bytes: small datasets are
  then decoded once, and later epochs only gather and augment. Threads may fill it concurrently
  (an example decoded twice is stored twice, identically)."""

  def __init__(self, n: int, budget: float):
    self.n, self.budget = n, budget
    self.store, self.filled, self.off = None, np.zeros(n, bool), budget <= 0
    self.count = 0  # examples filled: all n, and ``has`` needs no lookup
    self._lock = threading.Lock()

  def has(self, indices: np.ndarray) -> bool:
    """Whether every example of ``indices`` (int [k]) is cached."""
    if self.count == self.n:
      return True
    return self.store is not None and bool(self.filled[indices].all())

  def gather(self, indices: np.ndarray):
    """The cached examples ``indices`` (int [k], all cached: ``has``) stacked on a new axis 0, in
    one NumPy gather (a copy: augmentations may write to it)."""
    if isinstance(self.store, dict):
      return {k: v[indices] for k, v in self.store.items()}
    return self.store[indices]

  def get(self, index: int, make: Callable[[], object]):
    """Example ``index``: from the cache, or ``make()`` (then kept, when it fits)."""
    if self.filled[index]:
      return ({k: v[index] for k, v in self.store.items()} if isinstance(self.store, dict)
              else self.store[index])
    x = make()
    if self.off:
      return x
    with self._lock:
      if self.store is None:
        leaves = x.values() if isinstance(x, dict) else [x]
        if sum(np.asarray(v).nbytes for v in leaves) * self.n > self.budget:
          self.off = True
          return x
        alloc = lambda v: np.empty((self.n, *np.shape(v)), np.asarray(v).dtype)  # noqa: E731
        self.store = {k: alloc(v) for k, v in x.items()} if isinstance(x, dict) else alloc(x)
    if isinstance(x, dict):
      for k, v in x.items():
        self.store[k][index] = v
    else:
      self.store[index] = x
    with self._lock:  # after the store: an example counts once it can be gathered
      if not self.filled[index]:
        self.filled[index] = True
        self.count += 1
    return x
