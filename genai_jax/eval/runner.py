"""Evaluate a generator's state: sample N images, read N real ones, compute the chosen metrics.

Used by ``python -m genai_jax.eval`` (a saved checkpoint) and by the training loop (the
``config.eval_gen`` block). Metric names (``--metrics`` / ``eval_gen.metrics``):

  fid   FID with the TF-2015 Inception pool3 features          -> fid
  kid   KID (unbiased polynomial MMD, subsets)                  -> kid, kid_std
  is    Inception Score on the 1008 logits (needs weights with  -> is, is_std
        the logits layer; default_1.pt has none, so it is skipped with a note)
  pr    precision/recall on Inception features (k=3)            -> precision, recall
  dc    density/coverage on Inception features (k=5)            -> density, coverage
  fcd   Fréchet classifier distance on digits (not FID)         -> fcd_digits
  dacc  held-out D accuracy, eval split vs. fresh fakes (GANs)  -> d_acc, d_acc_real, d_acc_fake
"""

import os
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from genai_jax.errors import ConfigError
from genai_jax.eval import fid as fid_lib
from genai_jax.eval import metrics as metrics_lib

ALL = ("fid", "kid", "is", "pr", "dc", "fcd", "dacc")
_INCEPTION = {"fid", "kid", "is", "pr", "dc"}


def parse_metrics(names) -> tuple[str, ...]:
  names = tuple(n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip())
  bad = [n for n in names if n not in ALL]
  if bad or not names:
    raise ConfigError(f"unknown metrics {bad or names}; choose from {','.join(ALL)}")
  return names


def _check_gan(config) -> None:
  if config.task != "gan":
    raise ConfigError(f"generator metrics support task 'gan', not {config.task!r}; "
                      f"evaluate a GAN workdir or drop the eval_gen block")


def make_generator(config):
  """Jitted (g_params, g_batch_stats, key) -> float32 [batch_size, S, S, C] in [-1, 1], with
  batch-statistics BN as the task's ``sample`` grid. Build once and reuse: each call of this
  function is a new jit cache entry."""
  _check_gan(config)
  from genai_jax.tasks import gan
  gen, _ = gan.make_models(config)
  bs = int(config.batch_size)

  @jax.jit
  def one(g_params, g_stats, key):
    z = jax.random.normal(key, (bs, config.model.z_dim))
    return gan._apply(gen, g_params, g_stats, z)[0].astype(jnp.float32)
  return one


def generate(config, state, num: int, seed: int = 0, generator=None) -> np.ndarray:
  """``num`` images float32 [num, S, S, C] in [-1, 1] from a GAN state, in batches of
  ``config.batch_size``; ``generator`` from ``make_generator`` (default: built here)."""
  one = generator or make_generator(config)
  key = jax.random.PRNGKey(seed)
  out = [np.asarray(jax.device_get(one(state.g_params, state.g_batch_stats, jax.random.fold_in(key, i))))
         for i in range(-(-num // int(config.batch_size)))]
  return np.concatenate(out)[:num]


def real_images(data_cfg, split: str, num: int) -> np.ndarray:
  """The first ``min(num, size of split)`` images of ``split``, float32 [n, S, S, C] in [-1, 1],
  preprocessed as the training pipeline does (no flip), each image once."""
  from genai_jax.data import pipelines
  builder = pipelines.get_builder(data_cfg)
  key = data_cfg.get("image_key", "image")
  raw, _ = pipelines.read_split(builder, split, key)
  channels_in = builder.info.features[key].shape[-1]
  import tensorflow as tf
  ds = raw.take(num).map(lambda enc: pipelines._preprocess_image(
      tf.io.decode_image(enc, channels=channels_in, expand_animations=False), data_cfg))
  return np.concatenate(list(ds.batch(512).as_numpy_iterator()))


def make_discriminator(config):
  """Jitted (d_params, d_batch_stats, images [B, S, S, C]) -> D's logits float32 [B], with
  batch-statistics BN as the loop's GAN eval_step. Build once and reuse."""
  _check_gan(config)
  from genai_jax.tasks import gan
  _, disc = gan.make_models(config)
  return jax.jit(lambda p, s, x: gan._apply(disc, p, s, x)[0].reshape(-1))


def discriminator_logits(config, state, images: np.ndarray, discriminator=None) -> np.ndarray:
  """D's logits float32 [N] for images [N, S, S, C]; ``discriminator`` from
  ``make_discriminator`` (default: built here)."""
  fn = discriminator or make_discriminator(config)
  bs = int(config.batch_size)
  out = []
  for i in range(0, len(images), bs):  # a short last batch recompiles once; eval-only cost
    out.append(np.asarray(fn(state.d_params, state.d_batch_stats, jnp.asarray(images[i:i + bs]))))
  return np.concatenate(out)


class Evaluator:
  """Holds the feature networks and the cached reference features between evaluations."""

  def __init__(self, config, metrics: Sequence[str], num_samples: int, mesh=None,
               real_split: Optional[str] = None, cache_dir: Optional[str] = None,
               weights_path: Optional[str] = None, batch_size: int = 64):
    self.config, self.metrics = config, parse_metrics(metrics)
    self.num_samples, self.mesh, self.batch_size = int(num_samples), mesh, batch_size
    self.real_split = real_split or config.data.train_split
    from genai_jax.eval import weights as weights_lib
    self.cache_dir = cache_dir or weights_lib.cache_dir()
    self.notes = []
    self._inception = self._fcd = None
    self._refs = {}
    # Compiled once per evaluator, so evaluations inside a training run do not recompile.
    self._generator = make_generator(config)
    self._discriminator = make_discriminator(config) if "dacc" in self.metrics else None
    self._held_out = None  # the eval split's images for dacc, read once
    if _INCEPTION & set(self.metrics):
      from genai_jax.eval import inception
      w = weights_lib.load(weights_path)
      self._inception = inception.make_extractor(w, mesh, batch_size)
      self._inception_tag = "incep2015_" + weights_lib.fingerprint(w)
      if "is" in self.metrics and not inception.has_logits(w):
        self.notes.append("is skipped: these Inception weights have no 1008-way logits layer "
                          "(default_1.pt exports pool3 only); convert weights that include fc/")
    if "fcd" in self.metrics:
      from genai_jax.eval import classifier
      if config.data.name != classifier.DATASET or config.data.channels != 1:
        raise ConfigError(f"fcd (Fréchet classifier distance on digits) needs data.name="
                          f"'{classifier.DATASET}' with 1 channel; drop fcd from the metrics")
      variables, acc = classifier.load_or_train(config.data, self.cache_dir)
      self._fcd = classifier.make_extractor(variables, mesh)
      self.notes.append(f"fcd_digits uses a digit CNN trained here (test accuracy {acc:.3f}); "
                        f"it is not FID")

  def _reference(self, name: str, extract) -> dict:
    c = self.config.data
    n = min(self.num_samples, self._split_size())
    key = fid_lib.reference_key(c.name, self.real_split, c.image_size, c.channels, n, name)
    path = os.path.join(self.cache_dir, "reference_stats", key + ".npz")
    if key not in self._refs:
      self._refs[key] = fid_lib.cached_reference(
          path, lambda: extract(real_images(c, self.real_split, n)))
    return self._refs[key]

  def _split_size(self) -> int:
    from genai_jax.data import pipelines
    builder = pipelines.get_builder(self.config.data)
    return builder.info.splits[self.real_split].num_examples

  def __call__(self, state, seed: int = 0) -> dict:
    """float metrics for ``state`` (names in the module docstring)."""
    fake = generate(self.config, state, self.num_samples, seed, self._generator)
    out = {}
    if self._inception is not None:
      real = self._reference(self._inception_tag, self._inception)
      f = self._inception(fake)
      if "fid" in self.metrics:
        out["fid"] = fid_lib.fid_from_features(real["pool3"], f["pool3"])
      if "kid" in self.metrics:
        out["kid"], out["kid_std"] = fid_lib.kid(real["pool3"], f["pool3"])
      if "is" in self.metrics and "logits" in f:
        out["is"], out["is_std"] = fid_lib.inception_score(f["logits"])
      if "pr" in self.metrics:
        out.update(metrics_lib.precision_recall(real["pool3"], f["pool3"]))
      if "dc" in self.metrics:
        out.update(metrics_lib.density_coverage(real["pool3"], f["pool3"]))
    if self._fcd is not None:
      real = self._reference("digitcnn", self._fcd)
      out["fcd_digits"] = fid_lib.fid_from_features(real["features"], self._fcd(fake)["features"])
    if "dacc" in self.metrics:
      c = self.config.data
      if self._held_out is None:
        self._held_out = real_images(c, c.eval_split, self.num_samples)
      fakes = generate(self.config, state, len(self._held_out), seed + 1, self._generator)
      logits = lambda x: discriminator_logits(self.config, state, x, self._discriminator)
      out.update(metrics_lib.discriminator_accuracy(logits(self._held_out), logits(fakes)))
    return out


_LOOP_EVALUATORS = {}  # (config json, mesh) -> Evaluator: feature nets and references built once per run


def evaluate_in_loop(config, mesh, state, step: int) -> dict:
  """The training loop's hook for a ``config.eval_gen`` block (every, num_samples, metrics,
  optional real_split): the generator metrics of ``state`` as floats, with a fixed noise seed so
  successive evaluations differ only by the model."""
  g = config.eval_gen
  key = (config.to_json(), id(mesh))
  if key not in _LOOP_EVALUATORS:
    _LOOP_EVALUATORS[key] = Evaluator(config, g.get("metrics", "fid,kid,pr,dc"),
                                      g.get("num_samples", 500), mesh,
                                      real_split=g.get("real_split", None) or None)
  del step  # same noise at every evaluation
  return _LOOP_EVALUATORS[key](state, seed=config.seed)


def evaluate_checkpoint(config, workdir: str, metrics, num_samples: int, step=None,
                        real_split=None, weights_path=None, batch_size: int = 64, seed: int = 0):
  """(step, {metric: float}, notes) for ``workdir``'s checkpoint ``step`` (default: latest).

  A workdir without checkpoints fails first, in a second, before any feature network is loaded
  or trained, and without creating directories."""
  from genai_jax import config_utils
  from genai_jax.train import sharding
  from genai_jax.train import state as state_lib
  config_utils.validate(config)
  state_lib.check_has_checkpoints(workdir, step)
  mesh = sharding.make_mesh(config.mesh.data, config.mesh.fsdp)
  evaluator = Evaluator(config, metrics, num_samples, mesh, real_split=real_split,
                        weights_path=weights_path, batch_size=batch_size)
  step, state = state_lib.restore(config, workdir, step, mesh)
  return step, evaluator(state, seed), evaluator.notes
