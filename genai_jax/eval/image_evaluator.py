"""Generator metrics of image samples (``samples.Images``), compared with up to N real images of
``real_split``. Names (``--metrics`` / ``eval_gen.metrics``; empty: the defaults, marked *):

  fid*  FID with the TF-2015 Inception pool3 features          -> fid
  kid*  KID (unbiased polynomial MMD, subsets)                  -> kid, kid_std
  is    Inception Score on the 1008 logits (needs weights with  -> is, is_std
        the logits layer; default_1.pt has none, so it is skipped with a note)
  pr*   precision/recall on Inception features (k=3)            -> precision, recall
  dc*   density/coverage on Inception features (k=5)            -> density, coverage
  div*  mode-collapse watch: mean pairwise Inception-feature      -> diversity, diversity_fake
        distance of the fakes / that of the reals (first 2000 of each; ~1 healthy, -> 0 collapse)
  fcd   Fréchet classifier distance on digits (not FID)         -> fcd_digits
  dacc  held-out D accuracy, eval split vs. fresh fakes (tasks  -> d_acc, d_acc_real, d_acc_fake
        with ``Task.discriminate``: GANs)
"""

import os
from typing import Optional

import jax
import numpy as np

from genai_jax import samples as samples_lib
from genai_jax.errors import ConfigError
from genai_jax.eval import evaluator
from genai_jax.eval import fid as fid_lib
from genai_jax.eval import metrics as metrics_lib

_INCEPTION = {"fid", "kid", "is", "pr", "dc", "div"}


def real_images(data_cfg, split: str, num: int) -> np.ndarray:
  """The first ``min(num, size of split)`` images of ``split``, float32 [n, S, S, C] in [-1, 1],
  preprocessed as the training pipeline does (no flip), each image once."""
  from genai_jax.data import pipelines, preprocess
  builder = pipelines.get_builder(data_cfg)
  key = data_cfg.get("image_key", "image")
  channels_in = builder.info.features[key].shape[-1]
  decode = lambda i, enc, shard: preprocess.preprocess_image(  # noqa: E731
      preprocess.decode_image(enc, channels_in), data_cfg)
  return np.concatenate(list(pipelines.ordered(data_cfg, split, key, decode, limit=num, batch=512)))


class ImageEvaluator(evaluator.Evaluator):
  """``evaluator.Evaluator`` for images; ``weights_path``: converted Inception weights (default:
  the cache)."""
  KIND = samples_lib.Images
  METRICS = ("fid", "kid", "is", "pr", "dc", "div", "fcd", "dacc")
  DEFAULTS = ("fid", "kid", "pr", "dc", "div")
  OPTIONS = ("weights_path",)  # the eval_gen keys this kind reads beyond the shared ones

  def __init__(self, config, metrics, num_samples: int, mesh=None, *, task,
               weights_path: Optional[str] = None, **shared):
    super().__init__(config, metrics, num_samples, mesh, task=task, **shared)
    self._inception = self._fcd = self._discriminator = None
    self._held_out = None  # the eval split's images for dacc, read once
    if "dacc" in self.metrics:
      if task.discriminate is None:
        raise ConfigError(f"dacc needs a discriminator, which task {config.task!r} does not have "
                          f"(GANs do); drop dacc from the metrics")
      self._discriminator = jax.jit(task.discriminate)
    if _INCEPTION & set(self.metrics):
      from genai_jax.eval import inception
      from genai_jax.eval import weights as weights_lib
      w = weights_lib.load(weights_path)
      self._inception = inception.make_extractor(w, mesh, self.batch_size)
      self._inception_tag = "incep2015_" + weights_lib.fingerprint(w)
      if "is" in self.metrics and not inception.has_logits(w):
        self.notes.append("is skipped: these Inception weights have no 1008-way logits layer "
                          "(default_1.pt exports pool3 only); convert weights that include fc/")
    if "fcd" in self.metrics:
      from genai_jax.eval import classifier
      if config.data.name not in classifier.DATASETS or config.data.channels != 1:
        raise ConfigError(f"fcd (Fréchet classifier distance on digits) needs data.name in "
                          f"{sorted(classifier.DATASETS)} with 1 channel; drop fcd from the metrics")
      variables, acc = classifier.load_or_train(config.data, self.cache_dir)
      self._fcd = classifier.make_extractor(variables, mesh)
      self.notes.append(f"fcd_digits uses a digit CNN trained here (test accuracy {acc:.3f}); "
                        f"it is not FID")

  def _reference(self, name: str, extract) -> dict:
    c = self.config.data
    n = self.num_real()
    key = fid_lib.reference_key(c.name, self.real_split, c.image_size, c.channels, n, name)
    path = os.path.join(self.cache_dir, "reference_stats", key + ".npz")
    if key not in self._refs:
      self._refs[key] = fid_lib.cached_reference(
          path, lambda: extract(real_images(c, self.real_split, n)))
    return self._refs[key]

  def _logits(self, state, images: np.ndarray) -> np.ndarray:
    bs = int(self.config.batch_size)  # a short last batch recompiles once; eval-only cost
    return np.concatenate([np.asarray(self._discriminator(state, images[i:i + bs]))
                           for i in range(0, len(images), bs)])

  def __call__(self, state, seed: int = 0) -> dict:
    fake = self._generate(state, self.num_samples, seed).images
    out = {}
    if not self._refs and (self._inception is not None or self._fcd is not None):
      self.notes.append(f"{len(fake)} generated images against {self.num_real()} real images of "
                        f"the {self.real_split} split")
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
      if "div" in self.metrics:
        out.update(metrics_lib.diversity(real["pool3"], f["pool3"]))
    if self._fcd is not None:
      real = self._reference("digitcnn", self._fcd)
      out["fcd_digits"] = fid_lib.fid_from_features(real["features"], self._fcd(fake)["features"])
    if "dacc" in self.metrics:
      c = self.config.data
      if self._held_out is None:
        self._held_out = real_images(c, c.eval_split, self.num_samples)
      fakes = self._generate(state, len(self._held_out), seed + 1).images
      out.update(metrics_lib.discriminator_accuracy(self._logits(state, self._held_out),
                                                    self._logits(state, fakes)))
    return out
