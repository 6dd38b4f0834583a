"""tfds -> tf.data -> per-process numpy batches, resumable at any step without a saved iterator.

Each of ``data.shards`` even shards of a split is a fixed function of (seed, position): its
epoch ``e`` is the shard shuffled with a seed from (seed, e, shard). A run that resumes at step
``s`` starts each shard at example ``s * per_shard_batch``, so it sees exactly the batches an
uninterrupted run would (shuffling happens on encoded records, so skipping is cheap), and the
global batches do not depend on how many processes read them.
"""

from typing import Iterator


import jax
import ml_collections
import numpy as np
import tensorflow as tf

from genai_jax.data import BATCH_KEYS
# The tfds reading layer (re-exported: callers use pipelines.get_builder etc.); text.py builds on
# it directly, so text and pipelines do not import each other.
from genai_jax.data.reader import data_dir, get_builder, read_split, sharded_batches  # noqa: F401
from genai_jax.errors import ConfigError, DataError
# Batch shapes without TF (the AOT report and benchmarks need no TF); re-exported for callers.
from genai_jax.data.specs import BATCH_SPECS, batch_spec  # noqa: F401


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


def image_batches(cfg, split: str, global_batch: int, *, train: bool, seed: int = 0,
                  start_step: int = 0) -> Iterator[dict]:
  """``{'image': float32 [global_batch / P, S, S, C]}`` in [-1, 1], sharded as ``sharded_batches``;
  with ``cfg.labels`` also ``'label': int32 [global_batch / P]`` (the tfds feature
  ``cfg.label_key``, default 'label'), each label with its image.

  ``cfg`` adds to what ``sharded_batches`` reads: image_size, channels, center_crop, random_flip
  (train only), image_key (the tfds feature, default 'image'; the batch key is always 'image'),
  max_value (the stored value of white, default 255; 1 for binarized_mnist's 0/1 pixels).
  """
  builder = get_builder(cfg)
  key = cfg.get("image_key", "image")
  channels_in = builder.info.features[key].shape[-1]
  flip = train and cfg.get("random_flip", False)
  label_key = cfg.get("label_key", "label") if cfg.get("labels", False) else None

  def decode(i, encoded, shard):
    if label_key is not None:
      encoded, extra = encoded
    image = tf.io.decode_image(encoded, channels=channels_in, expand_animations=False)
    flip_seed = tf.stack([tf.constant(seed * 2**10 + shard, tf.int64), i]) if flip else None
    image = _preprocess_image(image, cfg, flip_seed)
    if label_key is None:
      return image
    return {BATCH_KEYS["image"]: image, "label": tf.cast(extra[label_key], tf.int32)}

  stream = sharded_batches(cfg, split, global_batch, key, decode, train=train, seed=seed,
                           start_step=start_step,  # not a generator: config errors raise here
                           extra=(label_key,) if label_key else ())
  if label_key is not None:
    return stream
  return ({BATCH_KEYS["image"]: b[key]} for b in stream)


def unpaired_batches(cfg, split: str, global_batch: int, *, train: bool, seed: int = 0,
                     start_step: int = 0) -> Iterator[dict]:
  """Two unpaired image domains: ``{'image_a': float32 [global_batch / P, S, S, C], 'image_b':
  the same}`` in [-1, 1], drawn independently from the splits ``split + cfg.domains[0]`` and
  ``split + cfg.domains[1]`` (tfds ``cycle_gan/*`` layout: 'train' reads trainA and trainB).

  Each domain is its own resumable stream (``sharded_batches``, domain A with data seed 2 * seed,
  B with 2 * seed + 1, so equal-sized domains are not shuffled in step). Preprocessing is
  ``image_batches``' (centre crop, resize, flip), plus the paper's jitter: with ``cfg.load_size``
  > image_size, a training image is resized to load_size and a random image_size crop is taken
  (the official code's 286 -> 256); evaluation resizes to image_size directly.
  """
  builder = get_builder(cfg)
  key = cfg.get("image_key", "image")
  channels_in = builder.info.features[key].shape[-1]
  flip = train and cfg.get("random_flip", False)
  size, load = cfg.image_size, cfg.get("load_size", 0) or cfg.image_size
  if load < size:
    raise ConfigError(f"data.load_size={load} is smaller than data.image_size={size}; set "
                      f"--config.data.load_size to at least image_size (or 0: no random crop)")
  crop = train and load > size
  domains = tuple(cfg.get("domains", ("A", "B")))
  if len(domains) != 2:
    raise ConfigError(f"data.domains={domains} must name two split suffixes, e.g. ('A', 'B')")

  load_cfg = ml_collections.ConfigDict(cfg.to_dict())  # the jitter's first resize
  load_cfg.image_size = load

  def stream(suffix, domain_seed):
    def decode(i, encoded, shard):
      image = tf.io.decode_image(encoded, channels=channels_in, expand_animations=False)
      op_seed = tf.stack([tf.constant(domain_seed * 2**10 + shard, tf.int64), i])
      if not crop:
        return _preprocess_image(image, cfg, op_seed if flip else None)
      crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(op_seed, 2))
      image = _preprocess_image(image, load_cfg)
      image = tf.image.stateless_random_crop(image, (size, size, cfg.channels), crop_seed)
      return tf.image.stateless_random_flip_left_right(image, flip_seed) if flip else image
    return sharded_batches(cfg, split + suffix, global_batch, key, decode, train=train,
                           seed=domain_seed, start_step=start_step)

  a, b = stream(domains[0], 2 * seed), stream(domains[1], 2 * seed + 1)  # config errors raise here
  return ({"image_a": x[key], "image_b": y[key]} for x, y in zip(a, b))


def text_batches(cfg, split: str, global_batch: int, **kw) -> Iterator[dict]:
  """``{'tokens': int32 [global_batch / P, seq_len + 1]}``; see ``genai_jax.data.text``."""
  from genai_jax.data import text  # imported lazily: it imports this module
  return text.text_batches(cfg, split, global_batch, **kw)


def audio_batches(cfg, split: str, global_batch: int, *, train: bool, seed: int = 0,
                  start_step: int = 0) -> Iterator[dict]:
  """``{'audio': float32 [global_batch / P, length, 1]}`` in [-1, 1], sharded as ``sharded_batches``;
  with ``cfg.labels`` also ``'label': int32 [global_batch / P]`` (the tfds feature
  ``cfg.label_key``, default 'label'), each label with its clip.

  ``cfg`` adds: audio_key (the tfds Audio feature, default 'audio'), length (samples per clip,
  default 16,384: WaveGAN's), sample_rate (optional; checked against the dataset's). A clip shorter than ``length`` is zero-padded at the end (as WaveGAN
  pads the 1 s Speech Commands clips); a longer one is cropped at a uniform offset drawn from
  (seed, shard, position) in training and at its start otherwise. Mono (multi-channel is mixed).
  """
  builder = get_builder(cfg)
  key = cfg.get("audio_key", "audio")
  length = int(cfg.get("length", 16_384))
  to_float = _audio_decoder(builder.info.features[key], cfg)
  label_key = cfg.get("label_key", "label") if cfg.get("labels", False) else None

  def decode(i, encoded, shard):
    if label_key is not None:
      encoded, extra = encoded
    wave = to_float(encoded)
    if train:
      room = tf.maximum(tf.shape(wave)[0] - length, 0) + 1
      start = tf.random.stateless_uniform((), tf.stack([tf.constant(seed * 2**10 + shard, tf.int64), i]),
                                          0, room, dtype=tf.int32)
    else:
      start = 0
    wave = fit_length(wave, length, start)
    if label_key is None:
      return wave
    return {BATCH_KEYS["audio"]: wave, "label": tf.cast(extra[label_key], tf.int32)}

  stream = sharded_batches(cfg, split, global_batch, key, decode, train=train, seed=seed,
                           start_step=start_step,  # not a generator: config errors raise here
                           extra=(label_key,) if label_key else ())
  if label_key is not None:
    return stream
  return ({BATCH_KEYS["audio"]: b[key]} for b in stream)


def _audio_decoder(feature, cfg=None):
  """encoded tfds Audio feature -> float32 [T] (or [T, C]) in [-1, 1] (integer PCM / (max + 1)).
  A ``cfg.sample_rate`` that differs from the feature's is a ConfigError (samples would be
  written and scored at the wrong rate)."""
  rate = cfg.get("sample_rate", None) if cfg is not None else None
  if rate and getattr(feature, "sample_rate", None) and int(rate) != int(feature.sample_rate):
    raise ConfigError(f"data.sample_rate={rate} but {cfg.name!r} is recorded at "
                      f"{feature.sample_rate} Hz; set --config.data.sample_rate={feature.sample_rate}")
  dtype = np.dtype(feature.np_dtype)
  scale = float(np.iinfo(dtype).max) + 1 if np.issubdtype(dtype, np.integer) else 1.0
  return lambda encoded: tf.cast(feature.decode_example(encoded), tf.float32) / scale


def fit_length(wave, length: int, start=0):
  """float [T] or [T, C] -> float32 [length, 1]: channels mixed to mono, then the ``length``
  samples from ``start`` (a scalar), zero-padded at the end where the clip is shorter."""
  wave = tf.cast(wave, tf.float32)
  if wave.shape.rank == 2:
    wave = tf.reduce_mean(wave, -1)
  wave = tf.pad(wave, [[0, tf.maximum(length - tf.shape(wave)[0], 0)]])
  wave = wave[start:start + length]
  wave.set_shape((length,))
  return wave[:, None]


def audio_clips(cfg, split: str) -> tf.data.Dataset:
  """Every example of ``split`` once, in order: (float32 [length, 1] clip as ``audio_batches``
  makes it for evaluation, int32 label or -1 when the dataset has no ``cfg.label_key``)."""
  builder = get_builder(cfg)
  key, label_key = cfg.get("audio_key", "audio"), cfg.get("label_key", "label")
  to_float = _audio_decoder(builder.info.features[key], cfg)
  has_label = label_key in builder.info.features
  raw, _ = read_split(builder, split, key, extra=(label_key,) if has_label else ())
  length = int(cfg.get("length", 16_384))
  if has_label:
    return raw.map(lambda enc, ex: (fit_length(to_float(enc), length),
                                    tf.cast(ex[label_key], tf.int32)))
  return raw.map(lambda enc: (fit_length(to_float(enc), length), tf.constant(-1, tf.int32)))


def music_batches(cfg, split: str, global_batch: int, **kw) -> Iterator[dict]:
  """``{'tokens': int32 [global_batch / P, seq_len + 1]}`` piano-roll windows; see
  ``genai_jax.data.music``."""
  from genai_jax.data import music  # imported lazily, as text
  return music.music_batches(cfg, split, global_batch, **kw)


BATCHES = {"image": image_batches, "text": text_batches, "unpaired": unpaired_batches,
           "music": music_batches, "audio": audio_batches}  # data.kind -> batch iterator
