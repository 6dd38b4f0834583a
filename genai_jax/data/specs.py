"""The global batch each ``data.kind`` feeds a train step, as shapes: no TF, no data read.

The AOT report and the accelerator benchmarks compile against these, so they run on images that
have JAX but no TensorFlow (a TPU VM, a CUDA container). ``pipelines`` re-exports them.
"""

import jax

from genai_jax.errors import ConfigError


def image_batch_spec(cfg, global_batch: int) -> dict:
  """``{'image': float32 [global_batch, S, S, C]}`` shapes of ``image_batches``' global batch,
  plus ``'label': int32 [global_batch]`` when ``cfg.labels``."""
  spec = {"image": jax.ShapeDtypeStruct((global_batch, cfg.image_size, cfg.image_size, cfg.channels),
                                        jax.numpy.float32)}
  if cfg.get("labels", False):
    spec["label"] = jax.ShapeDtypeStruct((global_batch,), jax.numpy.int32)
  return spec


def text_batch_spec(cfg, global_batch: int) -> dict:
  """``{'tokens': int32 [global_batch, seq_len + 1]}`` shapes of ``text_batches``' global batch."""
  return {"tokens": jax.ShapeDtypeStruct((global_batch, cfg.seq_len + 1), jax.numpy.int32)}


def unpaired_batch_spec(cfg, global_batch: int) -> dict:
  """``{'image_a', 'image_b'}``: float32 [global_batch, S, S, C] each, as ``unpaired_batches``."""
  one = image_batch_spec(cfg, global_batch)["image"]
  return {"image_a": one, "image_b": one}


def audio_batch_spec(cfg, global_batch: int) -> dict:
  """``{'audio': float32 [global_batch, length, 1]}`` shapes of ``audio_batches``' global batch,
  plus ``'label': int32 [global_batch]`` when ``cfg.labels``."""
  spec = {"audio": jax.ShapeDtypeStruct((global_batch, int(cfg.get("length", 16_384)), 1),
                                        jax.numpy.float32)}
  if cfg.get("labels", False):
    spec["label"] = jax.ShapeDtypeStruct((global_batch,), jax.numpy.int32)
  return spec


# data.kind -> batch shapes (music: piano-roll windows as token rows, data/music.py)
BATCH_SPECS = {"image": image_batch_spec, "text": text_batch_spec, "unpaired": unpaired_batch_spec,
               "music": text_batch_spec, "audio": audio_batch_spec}


def batch_spec(cfg, global_batch: int) -> dict:
  """The global batch ``batches(cfg, ...)`` feeds a train step, as ``{key: jax.ShapeDtypeStruct}``
  (no sharding), from ``cfg`` (``config.data``) alone: no data is read. What the AOT report and
  benchmarks compile against; a new ``data.kind`` registers its function in ``BATCH_SPECS``."""
  kind = cfg.get("kind", "image")
  if kind not in BATCH_SPECS:
    raise ConfigError(f"unknown data.kind {kind!r}; set data.kind to one of {sorted(BATCH_SPECS)}",
                      keys=("data.kind",))
  return BATCH_SPECS[kind](cfg, global_batch)
