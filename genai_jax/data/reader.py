"""Reading prepared tfds splits without TensorFlow: the builder (embedded ones prepared on first
use, as ArrayRecord; a missing one a one-line error), random access to even shards of a split
(``builder.as_data_source``: ArrayRecord, NumPy decoding), and the sharded, resumable stream every
data kind uses (order and threads: ``genai_jax.data.loader``).

Each of ``data.shards`` even shards of a split is a fixed function of (seed, position): its
epoch ``e`` is the shard permuted with a seed from (seed, e, shard). A run that resumes at step
``s`` computes the indices of batch ``s`` directly, so it sees exactly the batches an
uninterrupted run would without reading what came before, and the global batches do not depend
on how many processes read them.

Preparing a dataset (``download_and_prepare``) still needs TensorFlow (tfds encodes examples
with it); reading does not import it.
"""

import functools
import os
from typing import Callable, Iterator, Optional

import jax
import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from genai_jax import multihost
from genai_jax.data import builders, loader
from genai_jax.errors import ConfigError, DataError, DatasetMissingError

FILE_FORMAT = "array_record"  # random access without TensorFlow (tfds.data_source)

_PREPARE_HINTS = {
    "celeb_a": ("prepare it once on a machine with internet: `tfds build celeb_a "
                f"--file_format={FILE_FORMAT} --data_dir=DIR` "
                "(or copy a prepared tensorflow_datasets/celeb_a folder, e.g. to gs://BUCKET/tfds), "
                "then pass data.data_dir=DIR or set TFDS_DATA_DIR"),
}




def data_dir(cfg) -> Optional[str]:
  return cfg.get("data_dir") or os.environ.get("TFDS_DATA_DIR") or None


def process_rows(global_batch: int) -> slice:
  """This process's contiguous block of rows of a global batch (host-built batches, e.g. text
  windows and piano-roll windows), so the batches do not depend on the process count."""
  procs, pid = jax.process_count(), jax.process_index()
  if global_batch % procs:
    raise ConfigError(f"batch_size={global_batch} is not divisible by {procs} processes; "
                      f"set batch_size to a multiple of {procs}", keys=("batch_size",))
  per = global_batch // procs
  return slice(pid * per, (pid + 1) * per)


def get_builder(cfg) -> tfds.core.DatasetBuilder:
  """The prepared tfds builder for ``cfg.name``; embedded datasets (and manual-download ones whose
  archive is in place, ``builders.MANUAL``) are prepared on first use.

  Raises DatasetMissingError (within seconds, no network) when an external dataset is missing.
  """
  name, ddir = cfg.name, data_dir(cfg)
  base, _, config = name.partition("/")  # 'name/config' picks a builder config
  if base in builders.EMBEDDED or base in builders.MANUAL:
    cls = builders.EMBEDDED.get(base) or builders.MANUAL[base]
    configs = [c.name for c in (cls.BUILDER_CONFIGS or [])]
    if config and config not in configs:
      raise ConfigError(f"data.name={name!r}: {base!r} has no config {config!r}; set "
                        f"data.name to one of {[f'{base}/{c}' for c in configs] or [base]}",
                        keys=("data.name",))
    kw = {"config": config} if config else {}
    # Process 0 prepares while the others wait; they then find it (a shared data dir) or
    # prepare their own copy (a host-local one). Called whether or not this process finds it
    # prepared: the others may not (multihost.leader_first).
    builder = multihost.leader_first(
        f"dataset {name}", lambda: _prepare_embedded(cls, ddir, kw, cfg.get("manual_dir")))
    check_format(builder, cfg)
    return builder
  try:
    builder = tfds.builder(name, data_dir=ddir)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise DatasetMissingError(f"unknown dataset {name!r}: set data.name to a tfds name or one of "
                              f"the embedded {sorted(builders.EMBEDDED)}", keys=("data.name",)) from e
  if builder.is_prepared():
    check_format(builder, cfg)
    return builder
  where = ddir or os.path.expanduser("~/tensorflow_datasets")
  hint = _PREPARE_HINTS.get(name, f"prepare it once with `tfds build {name} --file_format={FILE_FORMAT} "
                                  "--data_dir=DIR` and pass data.data_dir=DIR or set TFDS_DATA_DIR")
  demo = cfg.get("demo_hint")  # the experiment names its own demo on embedded data
  msg = (f"dataset {name!r} is not prepared in {where}: {hint}" +
         ("; or set data.download=True to let tfds fetch it" if not cfg.get("download") else "") +
         (f"; to run on embedded data instead use {demo}" if demo else ""))
  keys = ("data.data_dir", "data.download")
  if not cfg.get("download"):
    raise DatasetMissingError(msg, keys=keys)
  try:
    builder.download_and_prepare(file_format=FILE_FORMAT)
  except Exception as e:  # network, quota, manual-download datasets
    raise DatasetMissingError(f"{msg} (download failed: {type(e).__name__}: {e})", keys=keys) from e
  return builder


def _prepare_embedded(cls, ddir, kw: dict, manual_dir) -> tfds.core.DatasetBuilder:
  """``cls`` prepared in ``ddir``. Both kinds of local builder read local files only: an
  installed package, or an archive the user placed in the manual dir (data.manual_dir, default
  <data dir>/downloads/manual; the builder raises a one-line DatasetMissingError naming where)."""
  builder = cls(data_dir=ddir, **kw)
  if builder.is_prepared():
    return builder
  if jax.process_index() == 0:
    _remove_unfinished(builder)
  multihost.phase("dataset")
  dl = tfds.download.DownloadConfig(manual_dir=manual_dir or None)
  try:
    builder.download_and_prepare(download_config=dl, file_format=FILE_FORMAT)
  except FileExistsError:  # another process (of this job, on this host) finished it first
    builder = cls(data_dir=ddir, **kw)
  except ImportError as e:  # tfds encodes examples with TensorFlow; reading needs none
    if "tensorflow" not in str(e).lower():
      raise
    raise DatasetMissingError(
        f"dataset {builder.name!r} is not prepared in {builder.data_dir} and preparing it needs "
        f"TensorFlow, which is not installed here: `pip install -e '.[build]'`, or prepare it "
        f"on a machine that has it and copy the folder here") from None
  return builder


def _remove_unfinished(builder) -> None:
  """Removes what a preparation cut off by a stop left (tfds writes into
  ``<data dir>/<name>/incomplete.*`` and renames when done; nothing reads those), saying so."""
  from etils import epath
  parent = epath.Path(builder.data_path).parent  # <data dir>/<name>[/<config>]
  for path in (parent.glob("incomplete.*") if parent.is_dir() else ()):
    print(f"warning: an earlier preparation of {builder.name} was cut off; removed its "
          f"unfinished files {path}", flush=True)
    path.rmtree()


def check_format(builder, cfg) -> None:
  """Raises DataError (one line, naming the conversion) when ``builder`` is prepared in a format
  without random access, e.g. the TFRecord files an older version of this project wrote."""
  info = builder.info
  if info.file_format is None:  # not prepared here (e.g. tfds.testing.mock_data)
    return
  formats = {f.value for f in info.available_file_formats()}
  if FILE_FORMAT in formats:
    return
  where = builder.data_dir
  suffixes = tuple(f".{f.file_suffix}-" for f in info.available_file_formats())
  here = epath.Path(where)
  if not here.is_dir() or not any(s in p.name for p in here.iterdir() for s in suffixes):
    return  # only metadata here (tfds.testing.mock_data): nothing to convert
  base = cfg.name.partition("/")[0]
  if base in builders.EMBEDDED or base in builders.MANUAL:
    fix = f"delete {where} and run again: it is prepared again as {FILE_FORMAT}"
  else:
    fix = (f"convert it once where TensorFlow is installed: `pip install apache-beam && tfds "
           f"convert_format --dataset_version_dir={where} --out_file_format={FILE_FORMAT}` (or "
           f"rebuild it: `tfds build {cfg.name} --file_format={FILE_FORMAT}`)")
  raise DataError(f"dataset {cfg.name!r} in {where} is stored as {'/'.join(sorted(formats))}, "
                  f"which cannot be read without TensorFlow; {fix}")


class Shard:
  """Random access to one even shard of a split: ``len(shard)`` examples; ``shard[i]`` is
  example i as a dict of NumPy values (features in ``raw`` left encoded, as bytes).

  A missing ArrayRecord file is a DataError when the shard is opened; a record that cannot be
  read (damaged, truncated) is a DataError naming its file when it is read."""

  def __init__(self, builder, split: str, shard: int = 0, shards: int = 1, raw: tuple = (),
               name: str = ""):
    sub = tfds.even_splits(split, n=shards)[shard] if shards > 1 else split
    self.name, self.split, self.data_dir = name or builder.name, split, builder.data_dir
    self.source = builder.as_data_source(
        sub, decoders={k: tfds.decode.SkipDecoding() for k in raw} or None)
    from tensorflow_datasets.core.data_sources import base as data_sources_base
    try:
      self._files = [(str(f.filename), int(f.take))
                     for f in data_sources_base.file_instructions(builder.info, sub)]
    except (KeyError, ValueError):  # no split files to name (tfds.testing.mock_data)
      self._files = []
    for f, _ in self._files:
      if not epath.Path(f).exists():
        raise DataError(f"dataset {self.name!r} split {split!r} is missing its file {f}; "
                        f"delete {self.data_dir} and prepare it again ({_rebuild(self.name)})")
    self._ends = np.cumsum([t for _, t in self._files], dtype=np.int64)

  def __len__(self) -> int:
    return len(self.source)

  def file_of(self, index: int) -> str:
    """'file PATH' of example ``index`` (or 'a file of DIR' when the files are not known)."""
    k = int(np.searchsorted(self._ends, index, side="right"))
    return f"file {self._files[k][0]}" if k < len(self._files) else f"a file of {self.data_dir}"

  def __getitem__(self, index: int) -> dict:
    try:
      return self.source[int(index)]
    except Exception as e:  # array_record: RuntimeError (checksum, truncation); tfds: on a None record
      detail = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
      raise DataError(f"dataset {self.name!r} split {self.split!r} is damaged ({detail}) in "
                      f"{self.file_of(index)}; delete {self.data_dir} and prepare it again "
                      f"({_rebuild(self.name)})") from None


def check_dataset(cfg):
  """``get_builder(cfg)``, with every file of every split checked: present, and its first and
  last records readable (a copy cut short fails there). A DataError naming the file, before a
  run writes anything; cheap (two records a file)."""
  builder = get_builder(cfg)
  for split in (builder.info.splits or {}):
    shard = Shard(builder, split, name=cfg.name)  # a missing file: DataError here
    firsts = np.concatenate([[0], shard._ends[:-1]]).astype(np.int64)
    for first, end in zip(firsts, shard._ends):
      for index in ({int(first), int(end) - 1} if end > first else ()):
        shard[index]
  return builder


def _rebuild(name: str) -> str:
  if name.partition("/")[0] in builders.EMBEDDED:
    return "embedded datasets prepare themselves on the next run"
  return f"`tfds build {name} --file_format={FILE_FORMAT}`"


def check_features(builder, split: str, keys) -> None:
  """ConfigError unless ``builder`` has every feature of ``keys`` and the split ``split``."""
  missing = [k for k in keys if k not in builder.info.features]
  if missing:
    raise ConfigError(f"dataset {builder.name!r} has no feature {missing[0]!r} (it has "
                      f"{sorted(builder.info.features.keys())}); set data.labels=False "
                      f"or data.label_key to one of them", keys=("data.labels", "data.label_key"))
  if builder.info.splits and split not in builder.info.splits:
    raise ConfigError(f"dataset {builder.name!r} has no split {split!r}; "
                      f"choose one of {sorted(builder.info.splits.keys())}")


def open_shard(builder, split: str, key: str, shard: int = 0, shards: int = 1,
               extra: tuple = (), name: str = "", encoded: bool = True) -> Shard:
  """Shard ``shard`` of ``shards`` even parts of ``split``, ``key`` left encoded (bytes) when
  ``encoded``; ConfigErrors for a missing feature (``key`` or ``extra``), split, or an empty shard."""
  check_features(builder, split, (key, *extra))
  out = Shard(builder, split, shard, shards, raw=(key,) if encoded else (), name=name)
  if not len(out):
    raise ConfigError(f"shard {shard} of {shards} of split {split!r} of {builder.name!r} is empty; "
                      f"lower data.shards", keys=("data.shards",))
  return out


def read_all(builder, split: str, name: str = "") -> list:
  """Every example of ``split`` in order, decoded by tfds (NumPy), as a list of dicts; for the
  small splits kept whole in host memory (text, piano rolls)."""
  check_features(builder, split, ())
  src = Shard(builder, split, name=name)
  return [src[i] for i in range(len(src))]


def owned_shards(cfg, global_batch: int) -> tuple[int, int, range]:
  """(``cfg.shards``, examples per shard per batch, this process's contiguous block of shards);
  a ConfigError unless the shards divide the batch and the processes divide the shards."""
  shards, procs, pid = cfg.get("shards", 8), jax.process_count(), jax.process_index()
  if global_batch % shards:
    raise ConfigError(f"batch_size={global_batch} is not divisible by data.shards={shards}; "
                      f"set data.shards to a divisor of the batch size", keys=("data.shards",))
  if shards % procs:
    raise ConfigError(f"data.shards={shards} is not divisible by the {procs} processes; "
                      f"set data.shards to a multiple of {procs}", keys=("data.shards",))
  return shards, global_batch // shards, range(pid * shards // procs, (pid + 1) * shards // procs)


def sharded_batches(cfg, split: str, global_batch: int, key: str, decode, *, train: bool,
                    seed: int, start_step: int, extra: tuple = (), encoded: bool = True,
                    augment: Optional[Callable] = None) -> Iterator[dict]:
  """This process's rows of each global batch: ``{key: decode(...) stacked, [global_batch / P, ...]}``.

  The split is cut into ``cfg.shards`` even shards, each read on its own (see
  ``genai_jax.data.loader``: per-epoch permutation from (seed, epoch, shard), random access, so
  resuming at any step reads nothing twice); global batch b is the concatenation of batch b of
  every shard, and process p reads and decodes only its contiguous block of shards. So the
  global batches are the same whatever the number of processes (P must divide ``cfg.shards``),
  and a run can resume on a different topology.

  Args:
    cfg: ``config.data`` (name, data_dir, shards, download; threads: decode threads, 0 = one per
      core; prefetch: batches decoded ahead, default 4).
    split: tfds split name.
    global_batch: examples per step across all processes.
    key: the tfds feature to read; it reaches ``decode`` encoded (bytes) when ``encoded``, else
      as tfds decodes it (NumPy; e.g. audio samples).
    decode: ``(position int, encoded, shard int) -> np.ndarray``, run per example in a worker
      thread; ``position`` is the example's position in its shard's stream (for stateless
      seeds, ``preprocess.uniform``). With ``extra``, ``encoded`` is (encoded, {name: value})
      and decode returns the example's dict {batch key: array}.
    train: permute per epoch and repeat forever; otherwise read in order, repeated so that
      short eval splits still fill whole batches.
    seed: data seed; the stream is a function of (seed, shard, position) only.
    start_step: training step to resume at (batch ``start_step`` is computed directly).
    extra: further tfds features read with ``key`` (decoded by tfds, e.g. ('label',)).
    encoded: see ``key``.
    augment: optional ``(batch, positions int64 [k], shards int64 [k]) -> batch``, the random
      part of the preprocessing, run on each stacked chunk of k examples (draws from
      ``preprocess.uniform(seed, shards, positions, ...)``). With it, ``decode`` must not use its
      position (deterministic per example), and decoded examples are cached in memory when
      this process's shards fit (``cfg.cache_mb``, default 1024 MiB per iterator; see ``loader``).
  """
  builder = get_builder(cfg)
  shards, per_shard, owned = owned_shards(cfg, global_batch)
  sources = {s: open_shard(builder, split, key, s, shards, extra, cfg.name, encoded) for s in owned}
  threads = int(cfg.get("threads", 0) or 0)
  lengths = [len(sources[s]) for s in owned]
  index = loader.BatchIndex(lengths, owned, per_shard, train=train, seed=seed)
  # One cache for the block of shards (example i of shard owned[j] at index.offsets[j] + i):
  # a cached batch is then one gather, whatever the shard count.
  budget = float(cfg.get("cache_mb", 1024)) * 2**20 if augment is not None else 0
  cache = loader.DecodedCache(sum(lengths), budget)
  shard_of = np.repeat(np.array(owned, np.int64), per_shard)  # each row's shard, every batch
  shard_of.setflags(write=False)

  def one(s, p, i):
    ex = sources[s][i]
    return decode(p, (ex[key], {k: ex[k] for k in extra}) if extra else ex[key], s)

  def job(items):  # [(shard, position, index in the shard, index in the cache)] -> stacked examples
    out = loader.stack([cache.get(g, functools.partial(one, s, p, i)) for s, p, i, g in items])
    if augment is None:
      return out
    return augment(out, np.array([p for _, p, _, _ in items], np.int64),
                   np.array([s for s, _, _, _ in items], np.int64))

  def cached_job(step, idx):  # every example decoded before: one gather, no per-example work
    out = cache.gather(idx)
    if augment is None:
      return out
    return augment(out, index.positions(step), shard_of)

  def batch_jobs(step):
    idx = index(step)
    if cache.has(idx):
      return [loader.Inline(functools.partial(cached_job, step, idx))]
    items = [(s, p, g - off, g) for s, off, p, g in zip(
        shard_of.tolist(), np.repeat(index.offsets, per_shard).tolist(),
        index.positions(step).tolist(), idx.tolist())]
    return [functools.partial(job, c)
            for c in loader.chunks(items, threads or loader.default_threads())]

  stream = loader.threaded(batch_jobs, start_step, threads=threads,
                           prefetch=int(cfg.get("prefetch", 4)))
  return stream if extra else ({key: b} for b in stream)


def ordered(cfg, split: str, key: str, decode: Callable, *, extra: tuple = (),
            limit: Optional[int] = None, batch: int = 256, encoded: bool = True) -> Iterator:
  """The first ``limit`` (default all) examples of ``split`` once, in order, decoded as in
  ``sharded_batches`` (``decode(position, encoded, 0)``) by the worker threads, stacked into
  batches of up to ``batch`` examples."""
  builder = get_builder(cfg)
  src = open_shard(builder, split, key, extra=extra, name=cfg.name, encoded=encoded)
  n = len(src) if limit is None else min(int(limit), len(src))
  threads = int(cfg.get("threads", 0) or 0)

  def job(positions):
    out = []
    for p in positions:
      ex = src[p]
      out.append(decode(p, (ex[key], {k: ex[k] for k in extra}) if extra else ex[key], 0))
    return loader.stack(out)

  def batch_jobs(b):
    positions = list(range(b * batch, min((b + 1) * batch, n)))
    return [functools.partial(job, c)
            for c in loader.chunks(positions, threads or loader.default_threads())]

  return loader.threaded(batch_jobs, 0, -(-n // batch), threads=threads,
                         prefetch=int(cfg.get("prefetch", 4)))
