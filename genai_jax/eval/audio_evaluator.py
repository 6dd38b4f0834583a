"""Generator metrics of audio samples (``samples.Audio``), compared with up to N real clips of
``real_split``, read as the eval pipeline does. Names (``--metrics`` / ``eval_gen.metrics``;
empty: the defaults, marked *):

  fd_logmel* Fréchet distance of per-clip log-mel mean/std       -> fd_logmel
             statistics (``eval.audio_metrics``; not FAD: no VGGish)
  (data.name 'sc09' only: a spoken-digit CNN trained here on SC09, ``eval.sc09_classifier``;
  the defaults skip them on other data):
  is_sc09*  WaveGAN's Inception score: exp E KL(p(y|x) || p(y)) -> is_sc09, is_sc09_std (10 splits),
            of the classifier's softmax (~10 for balanced,       is_sc09_real (the real clips')
            confidently recognised digits; 1 for one digit)
  fd_sc09*  Fréchet distance on the classifier's 128 penultimate -> fd_sc09
            features (not FID)
"""

import os

import numpy as np

from genai_jax import samples as samples_lib
from genai_jax.errors import ConfigError
from genai_jax.eval import evaluator
from genai_jax.eval import fid as fid_lib
from genai_jax.eval import sampling

_SC09 = ("is_sc09", "fd_sc09")  # need data.name sc09 (its digit classifier)


def real_audio(data_cfg, split: str, num: int) -> np.ndarray:
  """The first ``min(num, size of split)`` clips of ``split``, float32 [n, length, 1] in [-1, 1],
  padded/cropped as the eval pipeline does (from the start), each clip once."""
  from genai_jax.data import pipelines
  return np.concatenate([x for x, _ in pipelines.audio_clips(data_cfg, split, limit=num)])


class AudioEvaluator(evaluator.Evaluator):
  """``evaluator.Evaluator`` for audio clips."""
  KIND = samples_lib.Audio
  METRICS = ("fd_logmel", "is_sc09", "fd_sc09")
  DEFAULTS = ("fd_logmel", "is_sc09", "fd_sc09")

  def __init__(self, config, metrics, num_samples: int, mesh=None, *, task, **shared):
    super().__init__(config, metrics, num_samples, mesh, task=task, **shared)
    from genai_jax.eval import sc09_classifier
    c = self.config.data
    self._sc09 = None
    if not set(_SC09) & set(self.metrics):
      return
    if c.name.partition("/")[0] != sc09_classifier.DATASET:
      if self.defaulted:  # a default, not a request: skip it on other data
        self.metrics = tuple(m for m in self.metrics if m not in _SC09)
        if not self.metrics:
          raise ConfigError(f"no default generator metrics for audio on data.name={c.name!r} "
                            f"(is_sc09/fd_sc09 need sc09); drop the eval_gen block or set "
                            f"eval_gen.every=0", keys=("eval_gen.every",))
        return
      raise ConfigError(f"is_sc09/fd_sc09 score clips with a spoken-digit classifier trained on "
                        f"SC09, but data.name={c.name!r}; train on data.name=sc09 or drop them "
                        f"from the metrics", keys=("data.name",))
    abstract = sampling.sample_shape(task)
    shape, length = abstract.waveforms.shape, int(c.get("length", 16_384))
    if abstract.sample_rate != sc09_classifier.SAMPLE_RATE:
      raise ConfigError(f"is_sc09/fd_sc09 hear 16 kHz clips, but the task generates "
                        f"{abstract.sample_rate} Hz; drop them from the metrics")
    if shape[1] != length:
      raise ConfigError(f"is_sc09/fd_sc09 compare generated clips with real clips of "
                        f"data.length={length} samples, but the task generates {shape[1]}; set "
                        f"data.length={shape[1]} or drop them from the metrics",
                        keys=("data.length",))
    variables, acc = sc09_classifier.load_or_train(c, self.cache_dir)
    self._sc09 = sc09_classifier.make_extractor(variables, self.mesh, self.batch_size)
    self._sc09_tag = "sc09cnn_" + sc09_classifier.fingerprint(variables)
    self.notes.append(f"is_sc09/fd_sc09 use a spoken-digit CNN trained here on {c.name} (test "
                      f"accuracy {acc:.3f}, weights {self._sc09_tag}); fd_sc09 is not FID")

  def _sc09_reference(self) -> dict:
    """{'features', 'logits'} of the first min(N, split size) clips of ``real_split``, cached."""
    from genai_jax.data import pipelines
    c, n = self.config.data, self.num_real()
    key = f"{c.name}_{self.real_split}_{int(c.get('length', 16_384))}samples_n{n}_{self._sc09_tag}"
    path = os.path.join(self.cache_dir, "reference_stats", key.replace("/", "-") + ".npz")
    if key not in self._refs:
      def real():
        return self._sc09(np.concatenate([x for x, _ in pipelines.audio_clips(
            c, self.real_split, limit=n, batch=512)]))
      self._refs[key] = fid_lib.cached_reference(path, real)
    return self._refs[key]

  def _logmel_metrics(self, fake: np.ndarray, sample_rate: int) -> dict:
    """{'fd_logmel'} of clips float32 [N, T, C] against the real clips' log-mel statistics."""
    from genai_jax.eval import audio_metrics
    if "logmel" not in self._refs:
      real = real_audio(self.config.data, self.real_split, self.num_samples)
      self._refs["logmel"] = audio_metrics.logmel_features(real, sample_rate)
      self.notes.append(f"fd_logmel: {len(fake)} generated clips against {len(real)} real clips "
                        f"of the {self.real_split} split (log-mel statistics, not FAD)")
    feats = audio_metrics.logmel_features(fake, sample_rate)
    return {"fd_logmel": audio_metrics.fd_logmel(self._refs["logmel"], feats)}

  def __call__(self, state, seed: int = 0) -> dict:
    sample = self._generate(state, self.num_samples, seed)
    fake = np.asarray(sample.waveforms, np.float32)
    out = self._logmel_metrics(fake, sample.sample_rate) if "fd_logmel" in self.metrics else {}
    if self._sc09 is None:
      return out
    if fake.shape[-1] != 1:
      fake = fake.mean(-1, keepdims=True)  # the classifier hears mono, as the data pipeline gives
    if not any(k.endswith(self._sc09_tag) for k in self._refs):
      self.notes.append(f"{len(fake)} generated clips against {self.num_real()} real clips of "
                        f"the {self.real_split} split")
    real, f = self._sc09_reference(), self._sc09(fake)
    if "is_sc09" in self.metrics:
      out["is_sc09"], out["is_sc09_std"] = fid_lib.inception_score(f["logits"], splits=10)
      out["is_sc09_real"], _ = fid_lib.inception_score(real["logits"], splits=10)
    if "fd_sc09" in self.metrics:
      out["fd_sc09"] = fid_lib.fid_from_features(real["features"], f["features"])
    return out
