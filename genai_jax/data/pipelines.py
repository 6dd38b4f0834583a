"""tfds -> tf.data -> per-process numpy batches, resumable at any step without a saved iterator.

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

from genai_jax.data import BATCH_KEYS, builders
from genai_jax.errors import ConfigError, DataError, DatasetMissingError

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


def get_builder(cfg) -> tfds.core.DatasetBuilder:
  """The prepared tfds builder for ``cfg.name``; embedded datasets are prepared on first use.

  Raises DatasetMissingError (within seconds, no network) when an external dataset is missing.
  """
  name, ddir = cfg.name, data_dir(cfg)
  if name in builders.EMBEDDED:
    builder = builders.EMBEDDED[name](data_dir=ddir)
    if not builder.is_prepared():
      try:
        builder.download_and_prepare()  # reads an installed package; no network
      except FileExistsError:  # another process of this job finished preparing it first
        builder = builders.EMBEDDED[name](data_dir=ddir)
    return builder
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


def read_split(builder, split: str, key: str, shard: int = 0,
               shards: int = 1) -> tuple[tf.data.Dataset, int]:
  """(encoded ``key`` features of shard ``shard`` of ``shards`` even parts of ``split``, its size)."""
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
  return raw.map(lambda ex: ex[key]), n


def _preprocess_image(image, cfg, flip_seed=None):
  """uint8 [H, W, C] -> float32 [S, S, cfg.channels] in [-1, 1]: centre crop, resize, flip.

  ``cfg.max_value`` (default 255) is the stored value of white: 1 for 0/1 data (binarized_mnist).
  """
  image = tf.cast(image, tf.float32)
  if cfg.get("center_crop", True):
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    side = tf.minimum(h, w)
    image = tf.image.crop_to_bounding_box(image, (h - side) // 2, (w - side) // 2, side, side)
  size = cfg.image_size
  image = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
  if image.shape[-1] == 1 and cfg.channels == 3:
    image = tf.image.grayscale_to_rgb(image)
  elif image.shape[-1] == 3 and cfg.channels == 1:
    image = tf.image.rgb_to_grayscale(image)
  if flip_seed is not None:
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
  white = float(cfg.get("max_value", 255))
  image = tf.clip_by_value(image, 0.0, white) / (white / 2) - 1.0
  image.set_shape((size, size, cfg.channels))
  return image


def batches(cfg, split: str, global_batch: int, *, train: bool, seed: int = 0,
            start_step: int = 0) -> Iterator[dict]:
  """The loop's data: this process's rows of each global batch, by ``cfg.kind`` (default image)."""
  kind = cfg.get("kind", "image")
  if kind not in BATCHES:
    raise ConfigError(f"unknown data.kind {kind!r}; set --config.data.kind to one of {sorted(BATCHES)}")
  try:
    stream = BATCHES[kind](cfg, split, global_batch, train=train, seed=seed,
                           start_step=start_step)
  except tf.errors.DataLossError as e:
    raise _damaged(cfg, split, e) from None
  return _reporting_damage(stream, cfg, split)


def _reporting_damage(stream, cfg, split: str) -> Iterator[dict]:
  """``stream``, with a damaged record (tf's DataLossError, which names no file) turned into a
  one-line DataError that names the file."""
  while True:
    try:
      batch = next(stream)
    except StopIteration:
      return
    except tf.errors.DataLossError as e:
      raise _damaged(cfg, split, e) from None
    yield batch


def _damaged(cfg, split: str, error) -> DataError:
  import time
  builder = get_builder(cfg)
  files = [str(f) for f in builder.info.splits[split].filepaths] if builder.info.splits else []
  bad, deadline = None, time.time() + 20  # find the file, within a bounded scan
  for f in files:
    if time.time() > deadline:
      break
    try:
      for _ in tf.data.TFRecordDataset(f):
        pass
    except tf.errors.DataLossError:
      bad = f
      break
  where = f"file {bad}" if bad else f"a file of {builder.data_dir}"
  detail = str(getattr(error, "message", error)).splitlines()[0][:120]
  return DataError(f"dataset {cfg.name!r} split {split!r} is damaged ({detail}) in {where}; "
                   f"delete {builder.data_dir} and prepare it again (`tfds build {cfg.name}`; "
                   f"embedded datasets rebuild themselves)")


def sharded_batches(cfg, split: str, global_batch: int, key: str, decode, *, train: bool,
                    seed: int, start_step: int, pack=None) -> Iterator[dict]:
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
    train: shuffle per epoch and repeat forever; otherwise read in order, repeated so that
      short eval splits still fill whole batches.
    seed: data seed; the stream is a function of (seed, shard, position) only.
    start_step: training step to resume at (skips ``start_step`` batches, without decoding).
    pack: optional ``tf.data.Dataset -> tf.data.Dataset`` from the decoded examples of a shard to
      the rows of its batches (e.g. sequence packing). Rows then have no example position, so a
      resume decodes and skips ``start_step`` batches of rows instead.
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
    raw, n = read_split(builder, split, key, shard, shards)  # encoded: decoded after shuffle/skip
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
  ds = ds.map(lambda *parts: {key: tf.concat(parts, axis=0)})
  return ds.prefetch(tf.data.AUTOTUNE).as_numpy_iterator()


def image_batches(cfg, split: str, global_batch: int, *, train: bool, seed: int = 0,
                  start_step: int = 0) -> Iterator[dict]:
  """``{'image': float32 [global_batch / P, S, S, C]}`` in [-1, 1], sharded as ``sharded_batches``.

  ``cfg`` adds to what ``sharded_batches`` reads: image_size, channels, center_crop, random_flip
  (train only), image_key (the tfds feature, default 'image'; the batch key is always 'image'),
  max_value (the stored value of white, default 255; 1 for binarized_mnist's 0/1 pixels).
  """
  builder = get_builder(cfg)
  key = cfg.get("image_key", "image")
  channels_in = builder.info.features[key].shape[-1]
  flip = train and cfg.get("random_flip", False)

  def decode(i, encoded, shard):
    image = tf.io.decode_image(encoded, channels=channels_in, expand_animations=False)
    flip_seed = tf.stack([tf.constant(seed * 2**10 + shard, tf.int64), i]) if flip else None
    return _preprocess_image(image, cfg, flip_seed)

  stream = sharded_batches(cfg, split, global_batch, key, decode, train=train, seed=seed,
                           start_step=start_step)  # not a generator: config errors raise here
  return ({BATCH_KEYS["image"]: b[key]} for b in stream)


def text_batches(cfg, split: str, global_batch: int, **kw) -> Iterator[dict]:
  """``{'tokens': int32 [global_batch / P, seq_len + 1]}``; see ``genai_jax.data.text``."""
  from genai_jax.data import text  # imported lazily: it imports this module
  return text.text_batches(cfg, split, global_batch, **kw)


BATCHES = {"image": image_batches, "text": text_batches}  # data.kind -> batch iterator


def image_batch_spec(cfg, global_batch: int) -> dict:
  """``{'image': float32 [global_batch, S, S, C]}`` shapes of ``image_batches``' global batch."""
  return {"image": jax.ShapeDtypeStruct((global_batch, cfg.image_size, cfg.image_size, cfg.channels),
                                        jax.numpy.float32)}


def text_batch_spec(cfg, global_batch: int) -> dict:
  """``{'tokens': int32 [global_batch, seq_len + 1]}`` shapes of ``text_batches``' global batch."""
  return {"tokens": jax.ShapeDtypeStruct((global_batch, cfg.seq_len + 1), jax.numpy.int32)}


BATCH_SPECS = {"image": image_batch_spec, "text": text_batch_spec}  # data.kind -> batch shapes


def batch_spec(cfg, global_batch: int) -> dict:
  """The global batch ``batches(cfg, ...)`` feeds a train step, as ``{key: jax.ShapeDtypeStruct}``
  (no sharding), from ``cfg`` (``config.data``) alone: no data is read. What the AOT report and
  benchmarks compile against; a new ``data.kind`` registers its function in ``BATCH_SPECS``."""
  kind = cfg.get("kind", "image")
  if kind not in BATCH_SPECS:
    raise ConfigError(f"unknown data.kind {kind!r}; set --config.data.kind to one of {sorted(BATCH_SPECS)}")
  return BATCH_SPECS[kind](cfg, global_batch)
