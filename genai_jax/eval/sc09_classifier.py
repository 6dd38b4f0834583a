"""A spoken-digit classifier trained here on SC09, whose outputs give WaveGAN's evaluation: the
paper's "Inception score" (``is_sc09``: exp E KL(p(y|x) || p(y)) of its 10-way softmax) and a
Fréchet distance on its penultimate features (``fd_sc09``; NOT FID: the network is this small CNN,
trained for minutes on the archive the user placed, so values compare only with other fd_sc09
values from the same classifier, whose weight fingerprint the evaluation notes name).

  python -m genai_jax.eval.sc09_classifier [--manual_dir=DIR] [--data_dir=DIR] [--name=sc09/v0.01]

trains it once (the evaluation otherwise does so on first use), caches it and prints its test
accuracy and the Inception score of the real test clips.

The network follows the WaveGAN paper's classifier in kind (a CNN on log-mel spectrograms of the
16,384-sample clips) but is smaller: three 3x3 conv + 2x2 max-pool blocks (32, 64, 128 channels),
a 128-unit ReLU layer (the features) and 10 logits. Its log-mel front end is ``log_mel`` below, a
jnp transcription of ``samples.log_mel`` (the same STFT, Hann window and HTK filterbank,
tested equal): it runs inside the jitted, mesh-sharded extractor with the network instead of one
clip at a time on the host. Each spectrogram is standardised on its own (zero mean, unit
variance), so the classifier ignores loudness.
"""

import functools
import hashlib
import json
import os
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from genai_jax import multihost

DATASET = "sc09"
FEATURES = 128
CLASSES = 10
FRAME, STEP, MELS, LOWER_HZ = 1024, 256, 64, 20.0  # samples.log_mel's defaults
SAMPLE_RATE = 16_000
MODEL_VERSION = 1  # bump when the network or its training changes: cached weights are keyed on it


@functools.lru_cache(maxsize=4)
def mel_matrix(sample_rate: int = SAMPLE_RATE) -> np.ndarray:
  """float32 [FRAME // 2 + 1, MELS]: the HTK mel filterbank ``samples.log_mel`` uses."""
  from genai_jax import samples
  return samples.mel_filterbank(MELS, FRAME // 2 + 1, sample_rate, LOWER_HZ, sample_rate / 2.0)


def log_mel(waves: jax.Array, sample_rate: int = SAMPLE_RATE) -> jax.Array:
  """float [N, T] (T >= FRAME) -> float32 [N, 1 + (T - FRAME) // STEP, MELS]: |STFT| of Hann-windowed
  frames (periodic window, no end padding, as ``tf.signal.stft``) through the mel filterbank, then
  log(x + 1e-6); ``samples.log_mel`` of each row."""
  frames = 1 + (waves.shape[1] - FRAME) // STEP
  idx = np.arange(frames)[:, None] * STEP + np.arange(FRAME)[None, :]
  window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME) / FRAME)  # periodic Hann
  spectrum = jnp.abs(jnp.fft.rfft(waves.astype(jnp.float32)[:, idx] * window, axis=-1))
  return jnp.log(spectrum @ mel_matrix(sample_rate) + 1e-6)


class DigitSpeechCNN(nn.Module):
  """float32 [N, T, 1] waveforms in [-1, 1] at 16 kHz -> (features float32 [N, 128], logits
  float32 [N, 10])."""

  @nn.compact
  def __call__(self, waves):
    x = log_mel(waves[..., 0])
    mean = x.mean((1, 2), keepdims=True)
    x = (x - mean) / (x.std((1, 2), keepdims=True) + 1e-3)
    x = x[..., None]
    for width in (32, 64, 128):
      x = nn.max_pool(nn.relu(nn.Conv(width, (3, 3))(x)), (2, 2), (2, 2))
    feats = nn.relu(nn.Dense(FEATURES)(x.reshape(len(x), -1)))
    return feats, nn.Dense(CLASSES)(feats)


def _data_cfg(data_cfg, **kw):
  import ml_collections
  cfg = ml_collections.ConfigDict(data_cfg.to_dict())
  cfg.update(kind="audio", **kw)
  return cfg


def accuracy(variables: dict, data_cfg, split: str = "test", batch: int = 256) -> float:
  """Top-1 accuracy of the classifier on every clip of ``split`` (clips as the pipeline fits them)."""
  from genai_jax.data import pipelines
  model = DigitSpeechCNN()
  predict = jax.jit(lambda v, x: model.apply(v, x)[1].argmax(-1))
  right = total = 0
  for x, y in pipelines.audio_clips(_data_cfg(data_cfg), split, batch=batch):
    right += int((np.asarray(predict(variables, x)) == y).sum())
    total += len(y)
  return right / total


def train(data_cfg, steps: int = 3000, batch: int = 64, lr: float = 1e-3, seed: int = 0,
          max_shift: int = 2000) -> tuple[dict, float]:
  """Trains ``DigitSpeechCNN`` on the train split (Adam with a cosine decay, each clip shifted in
  time by up to ``max_shift`` samples, wrapping round); returns (variables, test-split accuracy).

  Every process reads the whole split in the same seeded order (one shard, permuted per epoch;
  not its shard of the training pipeline), so each trains the same classifier."""
  from genai_jax.data import loader, pipelines, preprocess, reader
  cfg = _data_cfg(data_cfg)
  model = DigitSpeechCNN()
  builder = pipelines.get_builder(cfg)
  src = reader.open_shard(builder, "train", "audio", extra=("label",), name=cfg.name,
                          encoded=False)
  scale = preprocess.audio_scale(builder.info.features["audio"].np_dtype)
  length = int(cfg.get("length", 16_384))

  def read(step):
    idx = loader.indices(len(src), np.arange(step * batch, (step + 1) * batch), train=True,
                         seed=seed, shard=0)
    def job(part):
      exs = [src[int(i)] for i in part]
      return {"audio": np.stack([preprocess.fit_length(ex["audio"] / scale, length) for ex in exs]),
              "label": np.array([ex["label"] for ex in exs], np.int32)}
    return [functools.partial(job, c) for c in loader.chunks(idx, loader.default_threads())]
  stream = loader.threaded(read, 0, steps)
  first = next(stream)
  params = model.init(jax.random.PRNGKey(seed), first["audio"][:1])["params"]
  tx = optax.adam(optax.cosine_decay_schedule(lr, steps))
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, x, y, key):
    shifts = jax.random.randint(key, (len(x),), -max_shift, max_shift + 1)
    x = jax.vmap(lambda w, s: jnp.roll(w, s, axis=0))(x, shifts)  # cheap augmentation
    def loss_fn(p):
      _, logits = model.apply({"params": p}, x)
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    grads = jax.grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  key = jax.random.PRNGKey(seed + 1)
  b = first
  for i in range(steps):
    params, opt_state = step(params, opt_state, b["audio"], b["label"], jax.random.fold_in(key, i))
    if i + 1 < steps:
      b = next(stream)
  variables = {"params": params}
  return variables, accuracy(variables, cfg)


def cache_path(data_cfg, cache_dir: str, steps: int) -> str:
  """Where the classifier of ``data_cfg``'s prepared dataset is cached: keyed on the dataset
  (name, version, split sizes), the clip length, the training steps and ``MODEL_VERSION``."""
  from genai_jax.data import pipelines
  builder = pipelines.get_builder(data_cfg)
  sizes = {k: v.num_examples for k, v in builder.info.splits.items()}
  raw = json.dumps([data_cfg.name, str(builder.info.version), sizes,
                    int(data_cfg.get("length", 16_384)), steps, MODEL_VERSION], sort_keys=True)
  tag = hashlib.sha1(raw.encode()).hexdigest()[:10]
  return os.path.join(cache_dir, f"{data_cfg.name.replace('/', '-')}_classifier_{tag}.npz")


def load_or_train(data_cfg, cache_dir: str, steps: int = 3000) -> tuple[dict, float]:
  """(variables, test accuracy) of the classifier for ``data_cfg``, trained once and cached as
  .npz in ``cache_dir`` (``weights.cache_dir()`` by default in the evaluation; on several
  processes by process 0, while the others wait to read it)."""
  path = cache_path(data_cfg, cache_dir, steps)
  return multihost.leader_first(f"the SC09 classifier {path}",
                                lambda: _load_or_train(data_cfg, path, steps))


def _load_or_train(data_cfg, path: str, steps: int) -> tuple[dict, float]:
  from flax import traverse_util
  if os.path.exists(path):
    with np.load(path) as f:
      flat = {tuple(k.split("/")): f[k] for k in f.files if k != "test_accuracy"}
      acc = float(f["test_accuracy"])
    return {"params": traverse_util.unflatten_dict(flat)}, acc
  multihost.phase("classifier")
  variables, acc = train(data_cfg, steps=steps)
  flat = {"/".join(k): np.asarray(v) for k, v in traverse_util.flatten_dict(variables["params"]).items()}
  multihost.save_npz(path, test_accuracy=acc, **flat)
  return variables, acc


def fingerprint(variables: dict) -> str:
  """A short hash of the weights (cached real-clip features are keyed on it)."""
  from flax import traverse_util
  from genai_jax.eval import weights
  flat = traverse_util.flatten_dict(variables["params"])
  return weights.fingerprint({"/".join(k): np.asarray(v) for k, v in flat.items()})


def make_extractor(variables: dict, mesh: Optional[object] = None, batch_size: int = 256):
  """Host function float [N, T, 1] waveforms in [-1, 1] -> {'features': float32 [N, 128],
  'logits': float32 [N, 10]} (jitted, batches split over ``mesh`` when given; see
  ``inception.batched_extractor``)."""
  from genai_jax.eval import inception
  model = DigitSpeechCNN()

  def forward(v, x):
    feats, logits = model.apply(v, x)
    return {"features": feats, "logits": logits}
  return inception.batched_extractor(forward, variables, mesh, batch_size)


def main(argv=None) -> None:
  import argparse
  import ml_collections
  from genai_jax import errors
  from genai_jax.data import pipelines
  from genai_jax.eval import fid, weights
  p = argparse.ArgumentParser(description="Train (once) and cache the SC09 digit classifier.")
  p.add_argument("--name", default=DATASET, help="sc09 (the v0.02 archive) or sc09/v0.01")
  p.add_argument("--data_dir", default="", help="tfds data dir (default $TFDS_DATA_DIR or ~/tensorflow_datasets)")
  p.add_argument("--manual_dir", default="", help="where the archive is (default <data_dir>/downloads/manual)")
  p.add_argument("--length", type=int, default=16_384, help="samples per clip (WaveGAN: 16384)")
  p.add_argument("--steps", type=int, default=3000)
  p.add_argument("--cache_dir", default="", help="default: $GENAI_JAX_CACHE or ~/.cache/genai_jax")
  args = p.parse_args(argv)
  cfg = ml_collections.ConfigDict({"kind": "audio", "name": args.name, "data_dir": args.data_dir,
                                   "manual_dir": args.manual_dir, "length": args.length})
  cache = args.cache_dir or weights.cache_dir()
  with errors.friendly():
    variables, acc = load_or_train(cfg, cache, args.steps)
    clips = np.concatenate([x for x, _ in pipelines.audio_clips(cfg, "test", batch=512)])
    score, std = fid.inception_score(make_extractor(variables)(clips)["logits"], splits=10)
    print(f"{args.name} classifier {fingerprint(variables)}: test accuracy {acc:.4f}; Inception "
          f"score of the {len(clips)} real test clips {score:.2f} +- {std:.2f} (10 splits); "
          f"cached at {cache_path(cfg, cache, args.steps)}")


if __name__ == "__main__":
  main()
