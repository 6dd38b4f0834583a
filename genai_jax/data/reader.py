"""Reading prepared tfds splits: the builder (embedded ones prepared on first use, a missing one a
one-line error), even shards of a split, and the sharded, resumable stream every data kind uses.

Each of ``data.shards`` even shards of a split is a fixed function of (seed, position): its
epoch ``e`` is the shard shuffled with a seed from (seed, e, shard). A run that resumes at step
``s`` starts each shard at example ``s * per_shard_batch``, so it sees exactly the batches an
uninterrupted run would (shuffling happens on encoded records, so skipping is cheap), and the
global batches do not depend on how many processes read them.
"""

import os
from typing import Iterator, Optional

import jax
import tensorflow as tf
import tensorflow_datasets as tfds

from genai_jax import multihost
from genai_jax.data import builders
from genai_jax.errors import ConfigError, DatasetMissingError

# JAX owns the accelerators; TensorFlow only feeds the host.
tf.config.set_visible_devices([], "GPU")

_PREPARE_HINTS = {
    "celeb_a": ("prepare it once on a machine with internet: `tfds build celeb_a --data_dir=DIR` "
                "(or copy a prepared tensorflow_datasets/celeb_a folder, e.g. to gs://BUCKET/tfds), "
                "then pass --config.data.data_dir=DIR or set TFDS_DATA_DIR"),
}
_DEMO_HINTS = {
    "celeb_a": "--config=experiments/configs/dcgan_celeba.py:demo",
    "mnist": "--config=experiments/configs/dcgan_celeba.py:digits_demo",
    "tiny_shakespeare": "--config=experiments/configs/gpt_shakespeare.py:demo",
    "lm1b": "--config=experiments/configs/gpt_shakespeare.py:demo",
    "binarized_mnist": "--config=experiments/configs/vae_mnist.py:demo",
}


def data_dir(cfg) -> Optional[str]:
  return cfg.get("data_dir") or os.environ.get("TFDS_DATA_DIR") or None


def process_rows(global_batch: int) -> slice:
  """This process's contiguous block of rows of a global batch (host-built batches, e.g. text
  windows and piano-roll windows), so the batches do not depend on the process count."""
  procs, pid = jax.process_count(), jax.process_index()
  if global_batch % procs:
    raise ConfigError(f"batch_size={global_batch} is not divisible by {procs} processes; "
                      f"set --config.batch_size to a multiple of {procs}")
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
                        f"--config.data.name to one of {[f'{base}/{c}' for c in configs] or [base]}")
    kw = {"config": config} if config else {}
    builder = cls(data_dir=ddir, **kw)
    if builder.is_prepared():
      return builder
    # Process 0 prepares while the others wait; they then find it (a shared data dir) or
    # prepare their own copy (a host-local one).
    return multihost.leader_first(f"dataset {name}",
                                  lambda: _prepare_embedded(cls, ddir, kw, cfg.get("manual_dir")))
  try:
    builder = tfds.builder(name, data_dir=ddir)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise DatasetMissingError(f"unknown dataset {name!r}: set --config.data.name to a tfds name or one of "
                              f"the embedded {sorted(builders.EMBEDDED)}") from e
  if builder.is_prepared():
    return builder
  where = ddir or os.path.expanduser("~/tensorflow_datasets")
  hint = _PREPARE_HINTS.get(name, f"prepare it once with `tfds build {name} --data_dir=DIR` and pass "
                                  "--config.data.data_dir=DIR or set TFDS_DATA_DIR")
  demo = cfg.get("demo_hint") or _DEMO_HINTS.get(name)  # an experiment may name its own demo
  msg = (f"dataset {name!r} is not prepared in {where}: {hint}" +
         ("; or set --config.data.download=True to let tfds fetch it" if not cfg.get("download") else "") +
         (f"; to run on embedded data instead use {demo}" if demo else ""))
  if not cfg.get("download"):
    raise DatasetMissingError(msg)
  try:
    builder.download_and_prepare()
  except Exception as e:  # network, quota, manual-download datasets
    raise DatasetMissingError(f"{msg} (download failed: {type(e).__name__}: {e})") from e
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
    builder.download_and_prepare(download_config=dl)
  except FileExistsError:  # another process (of this job, on this host) finished it first
    builder = cls(data_dir=ddir, **kw)
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


def read_split(builder, split: str, key: str, shard: int = 0, shards: int = 1,
               extra: tuple = ()) -> tuple[tf.data.Dataset, int]:
  """(encoded ``key`` features of shard ``shard`` of ``shards`` even parts of ``split``, its size).
  With ``extra`` feature names (e.g. ('label',)), elements are (encoded, {name: tensor})."""
  missing = [k for k in extra if k not in builder.info.features]
  if missing:
    raise ConfigError(f"dataset {builder.name!r} has no feature {missing[0]!r} (it has "
                      f"{sorted(builder.info.features.keys())}); set --config.data.labels=False "
                      f"or --config.data.label_key to one of them")
  if builder.info.splits and split not in builder.info.splits:
    raise ConfigError(f"dataset {builder.name!r} has no split {split!r}; "
                      f"choose one of {sorted(builder.info.splits.keys())}")
  sub = tfds.even_splits(split, n=shards)[shard] if shards > 1 else split
  raw = builder.as_dataset(split=sub, shuffle_files=False, decoders={key: tfds.decode.SkipDecoding()})
  n = int(raw.cardinality())
  if n < 0:
    n = builder.info.splits[sub].num_examples
  if n == 0:
    raise ConfigError(f"shard {shard} of {shards} of split {split!r} of {builder.name!r} is empty; "
                      f"lower --config.data.shards")
  if extra:
    return raw.map(lambda ex: (ex[key], {k: ex[k] for k in extra})), n
  return raw.map(lambda ex: ex[key]), n


def sharded_batches(cfg, split: str, global_batch: int, key: str, decode, *, train: bool,
                    seed: int, start_step: int, pack=None, extra: tuple = ()) -> Iterator[dict]:
  """This process's rows of each global batch: ``{key: decode(...) stacked, [global_batch / P, ...]}``.

  The split is cut into ``cfg.shards`` even shards, each streamed on its own (per-epoch seeded
  shuffle, resumable by position); global batch b is the concatenation of batch b of every
  shard, and process p reads and decodes only its contiguous block of shards. So the global
  batches are the same whatever the number of processes (P must divide ``cfg.shards``), and a
  run can resume on a different topology.

  Args:
    cfg: ``config.data`` (name, data_dir, shuffle_buffer, shards, download).
    split: tfds split name.
    global_batch: examples per step across all processes.
    key: the tfds feature to read; it stays encoded through shuffle and skip.
    decode: ``(index int64 scalar, encoded, shard int) -> tensor``, run per example after the
      skip; ``index`` is the example's position in its shard's stream (for stateless seeds).
      With ``extra``, ``encoded`` is (encoded, {name: tensor}) and decode returns the batch's
      dict {batch key: tensor}.
    train: shuffle per epoch and repeat forever; otherwise read in order, repeated so that
      short eval splits still fill whole batches.
    seed: data seed; the stream is a function of (seed, shard, position) only.
    start_step: training step to resume at (skips ``start_step`` batches, without decoding).
    pack: optional ``tf.data.Dataset -> tf.data.Dataset`` from the decoded examples of a shard to
      the rows of its batches (e.g. sequence packing). Rows then have no example position, so a
      resume decodes and skips ``start_step`` batches of rows instead.
    extra: further tfds features read with ``key`` (undecoded, e.g. ('label',)).
  """
  builder = get_builder(cfg)
  shards, procs, pid = cfg.get("shards", 8), jax.process_count(), jax.process_index()
  if global_batch % shards:
    raise ConfigError(f"batch_size={global_batch} is not divisible by data.shards={shards}; "
                      f"set --config.data.shards to a divisor of the batch size")
  if shards % procs:
    raise ConfigError(f"data.shards={shards} is not divisible by the {procs} processes; "
                      f"set --config.data.shards to a multiple of {procs}")
  per_shard = global_batch // shards

  def shard_stream(shard):
    raw, n = read_split(builder, split, key, shard, shards, extra)  # decoded after shuffle/skip
    position = 0 if pack is not None else start_step * per_shard
    if train:
      buffer = min(cfg.get("shuffle_buffer", 10_000), n)
      def epoch(e):  # a distinct, reproducible order per (seed, epoch, shard)
        return raw.shuffle(buffer, seed=seed * 2**40 + e * 2**10 + shard,
                           reshuffle_each_iteration=False)
      ds = tf.data.Dataset.range(position // n, 2**62).flat_map(epoch).skip(position % n)
    else:
      ds = raw.repeat()
    ds = ds.enumerate(start=position).map(lambda i, x: decode(i, x, shard),
                                         num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if pack is not None:
      ds = pack(ds).skip(start_step * per_shard)
    return ds.batch(per_shard, drop_remainder=True)

  owned = range(pid * shards // procs, (pid + 1) * shards // procs)
  ds = tf.data.Dataset.zip(tuple(shard_stream(s) for s in owned))
  ds = ds.map(lambda *parts: tf.nest.map_structure(lambda *xs: tf.concat(xs, axis=0), *parts))
  if not extra:
    ds = ds.map(lambda x: {key: x})
  return ds.prefetch(tf.data.AUTOTUNE).as_numpy_iterator()
