"""tfds (ArrayRecord) -> per-process numpy batches, by data kind, resumable at any step without a
saved iterator, and without TensorFlow.

Each of ``data.shards`` even shards of a split is a fixed function of (seed, position): its
epoch ``e`` is the shard permuted with a seed from (seed, e, shard). A run that resumes at step
``s`` computes batch ``s``'s examples directly, so it sees exactly the batches an uninterrupted
run would, and the global batches do not depend on how many processes read them
(``genai_jax.data.reader``, ``genai_jax.data.loader``). Decoding and augmentation are NumPy/PIL
(``genai_jax.data.preprocess``), run in worker threads.
"""

from typing import Iterator

import ml_collections
import numpy as np

from genai_jax.data import BATCH_KEYS
from genai_jax.data import preprocess
# The tfds reading layer (re-exported: callers use pipelines.get_builder etc.); text.py builds on
# it directly, so text and pipelines do not import each other.
from genai_jax.data.reader import check_dataset, data_dir, get_builder, ordered, sharded_batches  # noqa: F401
from genai_jax.data.preprocess import fit_length  # noqa: F401
from genai_jax.errors import ConfigError
# Batch shapes without TF (the AOT report and benchmarks need no TF); re-exported for callers.
from genai_jax.data.specs import BATCH_SPECS, batch_spec  # noqa: F401

_preprocess_image = preprocess.preprocess_image  # the name tests and the digit classifier use

def batches(cfg, split: str, global_batch: int, *, train: bool, seed: int = 0,
            start_step: int = 0) -> Iterator[dict]:
  """The loop's data: this process's rows of each global batch, by ``cfg.kind`` (default image)."""
  kind = cfg.get("kind", "image")
  if kind not in BATCHES:
    raise ConfigError(f"unknown data.kind {kind!r}; set data.kind to one of {sorted(BATCHES)}",
                      keys=("data.kind",))
  return BATCHES[kind](cfg, split, global_batch, train=train, seed=seed, start_step=start_step)


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

  def decode(i, encoded, shard):  # deterministic: cached for small datasets
    if label_key is not None:
      encoded, extra = encoded
    image = preprocess.preprocess_image(preprocess.decode_image(encoded, channels_in), cfg)
    if label_key is None:
      return image
    return {BATCH_KEYS["image"]: image, "label": np.int32(extra[label_key])}

  def augment(batch, positions, shards):
    images = batch[BATCH_KEYS["image"]] if label_key is not None else batch
    if flip:
      images[:] = flip_some(images, preprocess.uniform(seed, shards, positions, 0) < 0.5)
    return batch

  stream = sharded_batches(cfg, split, global_batch, key, decode, train=train, seed=seed,
                           start_step=start_step,  # not a generator: config errors raise here
                           extra=(label_key,) if label_key else (), augment=augment)
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
                      f"data.load_size to at least image_size (or 0: no random crop)",
                      keys=("data.load_size",))
  crop = train and load > size
  domains = tuple(cfg.get("domains", ("A", "B")))
  if len(domains) != 2:
    raise ConfigError(f"data.domains={domains} must name two split suffixes, e.g. ('A', 'B')")

  load_cfg = ml_collections.ConfigDict(cfg.to_dict())  # the jitter's first resize
  load_cfg.image_size = load

  def stream(suffix, domain_seed):
    def decode(i, encoded, shard):  # deterministic: cached for small datasets
      return preprocess.preprocess_image(preprocess.decode_image(encoded, channels_in),
                                         load_cfg if crop else cfg)

    def augment(images, positions, shards):
      if crop:
        tops, lefts = (preprocess.uniform(domain_seed, shards, positions, salt) for salt in (1, 2))
        images = np.stack([preprocess.random_crop(x, size, t, l)
                           for x, t, l in zip(images, tops, lefts)])
      if flip:
        images = flip_some(images, preprocess.uniform(domain_seed, shards, positions, 0) < 0.5)
      return images
    return sharded_batches(cfg, split + suffix, global_batch, key, decode, train=train,
                           seed=domain_seed, start_step=start_step, augment=augment)

  a, b = stream(domains[0], 2 * seed), stream(domains[1], 2 * seed + 1)  # config errors raise here
  return ({"image_a": x[key], "image_b": y[key]} for x, y in zip(a, b))


def flip_some(images: np.ndarray, mirror: np.ndarray) -> np.ndarray:
  """float [k, H, W, C] with the images where ``mirror`` (bool [k]) flipped left to right."""
  return np.where(mirror[:, None, None, None], images[:, :, ::-1], images)


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
  to_float = _audio_decoder(builder.info.features[key], cfg, recorded_rate(builder, key))
  label_key = cfg.get("label_key", "label") if cfg.get("labels", False) else None

  def decode(i, encoded, shard):
    if label_key is not None:
      encoded, extra = encoded
    wave = to_float(encoded)
    room = max(len(wave) - length, 0) + 1  # crop offsets
    start = int(preprocess.uniform(seed, shard, i, 0) * room) if train else 0
    wave = fit_length(wave, length, start)
    if label_key is None:
      return wave
    return {BATCH_KEYS["audio"]: wave, "label": np.int32(extra[label_key])}

  stream = sharded_batches(cfg, split, global_batch, key, decode, train=train, seed=seed,
                           start_step=start_step,  # not a generator: config errors raise here
                           extra=(label_key,) if label_key else (), encoded=False)
  if label_key is not None:
    return stream
  return ({BATCH_KEYS["audio"]: b[key]} for b in stream)


def recorded_rate(builder, key: str):
  """The sample rate ``builder``'s audio feature ``key`` was recorded at: the tfds Audio feature's,
  else the dataset's ``sample_rate`` metadata (our builders store int16 samples as a Tensor
  feature, which opens without TensorFlow), else None."""
  rate = getattr(builder.info.features[key], "sample_rate", None)
  metadata = builder.info.metadata or {}
  return rate or metadata.get("sample_rate")


def _audio_decoder(feature, cfg=None, recorded=None):
  """an audio feature's stored samples (tfds decodes them to NumPy) -> float32 [T] (or [T, C])
  in [-1, 1] (integer PCM / (max + 1)). A ``cfg.sample_rate`` that differs from ``recorded``
  (``recorded_rate``) is a ConfigError (samples would be written and scored at the wrong rate)."""
  rate = cfg.get("sample_rate", None) if cfg is not None else None
  if rate and recorded and int(rate) != int(recorded):
    raise ConfigError(f"data.sample_rate={rate} but {cfg.name!r} is recorded at "
                      f"{recorded} Hz; set data.sample_rate={recorded}", keys=("data.sample_rate",))
  scale = preprocess.audio_scale(feature.np_dtype)
  return lambda samples: np.asarray(samples, np.float32) / scale


def audio_clips(cfg, split: str, limit: int = None, batch: int = 256) -> Iterator[tuple]:
  """The first ``limit`` (default all) examples of ``split`` once, in order, in batches of up to
  ``batch``: (float32 [b, length, 1] clips as ``audio_batches`` makes them for evaluation, int32
  [b] labels, -1 when the dataset has no ``cfg.label_key``)."""
  builder = get_builder(cfg)
  key, label_key = cfg.get("audio_key", "audio"), cfg.get("label_key", "label")
  to_float = _audio_decoder(builder.info.features[key], cfg, recorded_rate(builder, key))
  has_label = label_key in builder.info.features
  length = int(cfg.get("length", 16_384))

  def decode(i, encoded, shard):
    if has_label:
      encoded, extra = encoded
    return {"audio": fit_length(to_float(encoded), length),
            "label": np.int32(extra[label_key] if has_label else -1)}

  for b in ordered(cfg, split, key, decode, extra=(label_key,) if has_label else (), limit=limit,
                   batch=batch, encoded=False):
    yield b["audio"], b["label"]


def music_batches(cfg, split: str, global_batch: int, **kw) -> Iterator[dict]:
  """``{'tokens': int32 [global_batch / P, seq_len + 1]}`` piano-roll windows; see
  ``genai_jax.data.music``."""
  from genai_jax.data import music  # imported lazily, as text
  return music.music_batches(cfg, split, global_batch, **kw)


BATCHES = {"image": image_batches, "text": text_batches, "unpaired": unpaired_batches,
           "music": music_batches, "audio": audio_batches}  # data.kind -> batch iterator
