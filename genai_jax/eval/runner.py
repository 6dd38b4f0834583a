"""Evaluate a generator's state: draw N samples through ``Task.generate``, score them by kind.

Used by ``python -m genai_jax.eval`` (a saved checkpoint) and by the training loop (the
``config.eval_gen`` block), for every family: the task says how to draw samples and what kind
they are; nothing here knows GANs from VAEs. Metric names (``--metrics`` / ``eval_gen.metrics``;
empty: the kind's defaults, marked *):

Images (compared with up to N real images of ``real_split``):
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
Tokens (text metrics on ``eval_gen.text_unit``: whitespace 'words' (default) or 'tokens'; each
also reported on N real windows of the eval split of the same length, as ``real_<name>``):
  distinct*  distinct-1/2/3 over all samples                     -> distinct_1, distinct_2, distinct_3
  self_bleu* BLEU-4 of each sample against the others            -> self_bleu
  mem*       share of 8-grams found verbatim in the train split  -> mem_8gram
Audio (compared with up to N real clips of ``real_split``, read as the eval pipeline does):
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
from typing import Optional, Sequence

import jax
import numpy as np

from genai_jax import samples as samples_lib
from genai_jax.errors import ConfigError
from genai_jax.eval import fid as fid_lib
from genai_jax.eval import metrics as metrics_lib

METRICS = {samples_lib.Images: ("fid", "kid", "is", "pr", "dc", "div", "fcd", "dacc"),
           samples_lib.Tokens: ("distinct", "self_bleu", "mem"),
           samples_lib.Audio: ("fd_logmel", "is_sc09", "fd_sc09")}
DEFAULTS = {samples_lib.Images: ("fid", "kid", "pr", "dc", "div"),
            samples_lib.Tokens: ("distinct", "self_bleu", "mem"),
            samples_lib.Audio: ("fd_logmel", "is_sc09", "fd_sc09")}
ALL = tuple(n for names in METRICS.values() for n in names)
_INCEPTION = {"fid", "kid", "is", "pr", "dc", "div"}
_SC09 = ("is_sc09", "fd_sc09")  # need data.name sc09 (its digit classifier)
MEM_N = 8  # memorisation n-gram length
TEXT_UNITS = ("words", "tokens")


def parse_metrics(names, kind=None) -> tuple[str, ...]:
  """Comma-separated (or sequence of) metric names -> tuple; empty -> ``kind``'s defaults.
  Raises ConfigError naming the valid choices (for ``kind``, when given)."""
  names = tuple(n.strip() for n in (names.split(",") if isinstance(names, str) else names or ())
                if n.strip())
  if not names and kind is not None:
    return DEFAULTS[kind]
  allowed = METRICS[kind] if kind is not None else ALL
  bad = [n for n in names if n not in allowed]
  if bad or not names:
    what = f"{kind.__name__} samples" if kind is not None else "samples"
    raise ConfigError(f"unknown metrics for {what}: {bad or names}; choose from {','.join(allowed)}")
  return names


def sample_shape(task, n: int = 1):
  """``task.generate``'s output for ``n`` samples as shapes (``jax.ShapeDtypeStruct`` leaves of
  its kind); no compute."""
  if task.generate is None:
    raise ConfigError("this task cannot draw samples (its Task has no generate); drop the "
                      "eval_gen block or --config.eval_gen.every")
  abstract = jax.eval_shape(task.init, jax.random.PRNGKey(0))
  return jax.eval_shape(lambda s, k: task.generate(s, k, n), abstract, jax.random.PRNGKey(0))


def sample_kind(task) -> type:
  """The kind (``samples.Images``, ...) ``task.generate`` returns; shapes only, no compute."""
  return type(sample_shape(task))


def make_sampler(task, mesh=None):
  """Jitted ``(state, key, n) -> kind`` of ``task.generate`` (n static), output replicated on
  ``mesh``. Build once and reuse: each call of this function is a new jit cache entry."""
  if mesh is None:
    return jax.jit(task.generate, static_argnums=2)
  from genai_jax.train import sharding
  return jax.jit(task.generate, static_argnums=2, out_shardings=sharding.replicated(mesh))


def generate(task, state, num: int, seed: int = 0, batch_size: int = 64, sampler=None):
  """``num`` samples of ``task`` (host numpy, in its kind), drawn ``batch_size`` at a time with
  keys ``fold_in(PRNGKey(seed), i)``; ``sampler`` from ``make_sampler`` (default: built here)."""
  one = sampler or make_sampler(task)
  key = jax.random.PRNGKey(seed)
  parts = [jax.device_get(one(state, jax.random.fold_in(key, i), int(batch_size)))
           for i in range(-(-num // int(batch_size)))]
  return samples_lib.take(samples_lib.concatenate(parts), num)


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


def real_audio(data_cfg, split: str, num: int) -> np.ndarray:
  """The first ``min(num, size of split)`` clips of ``split``, float32 [n, length, 1] in [-1, 1],
  padded/cropped as the eval pipeline does (from the start), each clip once."""
  from genai_jax.data import pipelines
  return np.concatenate([x for x, _ in pipelines.audio_clips(data_cfg, split, limit=num)])


def real_token_windows(config, split: str, num: int, length: int) -> np.ndarray:
  """int32 [n <= num, length]: the first ``num`` windows of ``split`` as the eval pipeline reads
  them (in order, no shuffling), cut to ``length`` tokens."""
  from genai_jax.data import pipelines
  rows, bs = [], int(config.batch_size)
  for batch in pipelines.batches(config.data, split, bs, train=False, seed=config.seed):
    rows.extend(np.asarray(batch["tokens"])[:, :length])
    if len(rows) >= num:
      break
  return np.stack(rows[:num]).astype(np.int32)


class Evaluator:
  """Scores samples of one run's task; holds the compiled sampler, the feature networks and the
  cached references between evaluations (so evaluations inside a training run do not recompile).

  Args:
    config: the run's config. metrics: names (see the module docstring; empty: the defaults of
    the task's sample kind). num_samples: N generated (and at most N real) samples.
    real_split: the real images' split (default data.train_split). batch_size: feature
    extraction batch. task: the run's task (default: built from ``config``). text_unit: 'words'
    or 'tokens' for token samples.
  """

  def __init__(self, config, metrics: Sequence[str], num_samples: int, mesh=None,
               real_split: Optional[str] = None, cache_dir: Optional[str] = None,
               weights_path: Optional[str] = None, batch_size: int = 64, task=None,
               text_unit: str = "words"):
    from genai_jax import tasks
    self.config, self.task = config, task or tasks.get_task(config)
    self.kind = sample_kind(self.task)
    if self.kind not in METRICS:
      raise ConfigError(f"no generator metrics for {self.kind.__name__} samples yet; drop the "
                        f"eval_gen block or set --config.eval_gen.every=0")
    self.metrics = parse_metrics(metrics, self.kind)
    defaulted = not (metrics.strip() if isinstance(metrics, str) else metrics)
    self.num_samples, self.mesh, self.batch_size = int(num_samples), mesh, batch_size
    self.real_split = real_split or config.data.train_split
    from genai_jax.eval import weights as weights_lib
    self.cache_dir = cache_dir or weights_lib.cache_dir()
    self.notes = []
    self._inception = self._fcd = None
    self._refs = {}
    self._sampler = make_sampler(self.task, mesh)
    self._discriminator = None
    self._held_out = None  # the eval split's images for dacc, read once
    if "dacc" in self.metrics:
      if self.task.discriminate is None:
        raise ConfigError(f"dacc needs a discriminator, which task {config.task!r} does not have "
                          f"(GANs do); drop dacc from the metrics")
      self._discriminator = jax.jit(self.task.discriminate)
    if self.kind is samples_lib.Tokens:
      self._init_text(text_unit)
      return
    if self.kind is samples_lib.Audio:
      self._init_audio(defaulted)
      return
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
      if config.data.name not in classifier.DATASETS or config.data.channels != 1:
        raise ConfigError(f"fcd (Fréchet classifier distance on digits) needs data.name in "
                          f"{sorted(classifier.DATASETS)} with 1 channel; drop fcd from the metrics")
      variables, acc = classifier.load_or_train(config.data, self.cache_dir)
      self._fcd = classifier.make_extractor(variables, mesh)
      self.notes.append(f"fcd_digits uses a digit CNN trained here (test accuracy {acc:.3f}); "
                        f"it is not FID")

  # --- images ------------------------------------------------------------------------------------

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

  def num_real(self) -> int:
    """How many real images the image metrics compare with (min of N and the split's size)."""
    return min(self.num_samples, self._split_size())

  def _generate(self, state, num: int, seed: int):
    return generate(self.task, state, num, seed, self.config.batch_size, self._sampler)

  def _image_metrics(self, state, seed: int) -> dict:
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

  def _logits(self, state, images: np.ndarray) -> np.ndarray:
    bs = int(self.config.batch_size)  # a short last batch recompiles once; eval-only cost
    return np.concatenate([np.asarray(self._discriminator(state, images[i:i + bs]))
                           for i in range(0, len(images), bs)])

  # --- audio -------------------------------------------------------------------------------------

  def _init_audio(self, defaulted: bool) -> None:
    from genai_jax.eval import sc09_classifier
    c = self.config.data
    self._sc09 = None
    if not set(_SC09) & set(self.metrics):
      return
    if c.name.partition("/")[0] != sc09_classifier.DATASET:
      if defaulted:  # a default, not a request: skip it on other data
        self.metrics = tuple(m for m in self.metrics if m not in _SC09)
        if not self.metrics:
          raise ConfigError(f"no default generator metrics for audio on data.name={c.name!r} "
                            f"(is_sc09/fd_sc09 need sc09); drop the eval_gen block or set "
                            f"--config.eval_gen.every=0")
        return
      raise ConfigError(f"is_sc09/fd_sc09 score clips with a spoken-digit classifier trained on "
                        f"SC09, but data.name={c.name!r}; train on --config.data.name=sc09 or "
                        f"drop them from the metrics")
    abstract = sample_shape(self.task)
    shape, length = abstract.waveforms.shape, int(c.get("length", 16_384))
    if abstract.sample_rate != sc09_classifier.SAMPLE_RATE:
      raise ConfigError(f"is_sc09/fd_sc09 hear 16 kHz clips, but the task generates "
                        f"{abstract.sample_rate} Hz; drop them from the metrics")
    if shape[1] != length:
      raise ConfigError(f"is_sc09/fd_sc09 compare generated clips with real clips of "
                        f"data.length={length} samples, but the task generates {shape[1]}; set "
                        f"--config.data.length={shape[1]} or drop them from the metrics")
    variables, acc = sc09_classifier.load_or_train(c, self.cache_dir)
    self._sc09 = sc09_classifier.make_extractor(variables, self.mesh, self.batch_size)
    self._sc09_tag = "sc09cnn_" + sc09_classifier.fingerprint(variables)
    self.notes.append(f"is_sc09/fd_sc09 use a spoken-digit CNN trained here on {c.name} (test "
                      f"accuracy {acc:.3f}, weights {self._sc09_tag}); fd_sc09 is not FID")

  def _audio_reference(self) -> dict:
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

  def _audio_metrics(self, state, seed: int) -> dict:
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
    real, f = self._audio_reference(), self._sc09(fake)
    if "is_sc09" in self.metrics:
      out["is_sc09"], out["is_sc09_std"] = fid_lib.inception_score(f["logits"], splits=10)
      out["is_sc09_real"], _ = fid_lib.inception_score(real["logits"], splits=10)
    if "fd_sc09" in self.metrics:
      out["fd_sc09"] = fid_lib.fid_from_features(real["features"], f["features"])
    return out

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

  # --- text --------------------------------------------------------------------------------------

  def _init_text(self, text_unit: str) -> None:
    from genai_jax.eval import text_metrics
    if text_unit not in TEXT_UNITS:
      raise ConfigError(f"unknown eval_gen.text_unit {text_unit!r}; set it to one of "
                        f"{list(TEXT_UNITS)}")
    self.text_unit = text_unit
    self._words = text_metrics.WordIds() if text_unit == "words" else None
    self._mem_index = None
    if "mem" in self.metrics and self.config.data.get("packing", "windows") != "windows":
      raise ConfigError("mem (memorisation) indexes the whole training text, which a streamed "
                        "corpus (data.packing='stream') is too large for; drop mem from the metrics")

  def _units(self, sample) -> list:
    """A Tokens sample's generated parts as int sequences of ``text_unit``."""
    if self._words is None:
      return [np.asarray(row[sample.prompt_len:]) for row in np.asarray(sample.tokens)]
    return [self._words(t) for t in sample.texts()]

  def _text_scores(self, seqs: list) -> dict:
    from genai_jax.eval import text_metrics
    out = {}
    if "distinct" in self.metrics:
      for n in (1, 2, 3):
        out[f"distinct_{n}"] = text_metrics.distinct_n(seqs, n)
    if "self_bleu" in self.metrics:
      out["self_bleu"] = text_metrics.self_bleu(seqs)
    if "mem" in self.metrics:
      out[f"mem_{MEM_N}gram"] = text_metrics.memorisation(seqs, self._memorisation_index())
    return out

  def _memorisation_index(self):
    if self._mem_index is None:
      from genai_jax.data import text
      from genai_jax.eval import text_metrics
      train = text.split_tokens(self.config.data, self.config.data.train_split)
      if self._words is not None:
        train = self._words(text.vocabulary(self.config.data).decode(train))
      self._mem_index = text_metrics.NgramIndex(train, MEM_N)
    return self._mem_index

  def _text_metrics(self, state, seed: int) -> dict:
    fake = self._generate(state, self.num_samples, seed)
    out = self._text_scores(self._units(fake))
    if "real" not in self._refs:  # real held-out windows as long as the generated text
      length = fake.tokens.shape[1] - fake.prompt_len
      windows = real_token_windows(self.config, self.config.data.eval_split, self.num_samples,
                                   length)
      real = samples_lib.Tokens(windows, fake.detokenise, 0)
      self._refs["real"] = {f"real_{k}": v for k, v in self._text_scores(self._units(real)).items()}
      self.notes.append(f"real_* metrics: {len(windows)} windows of {length} tokens of the "
                        f"{self.config.data.eval_split} split")
    return {**out, **self._refs["real"]}

  def __call__(self, state, seed: int = 0) -> dict:
    """float metrics for ``state`` (names in the module docstring)."""
    if self.kind is samples_lib.Tokens:
      return self._text_metrics(state, seed)
    if self.kind is samples_lib.Audio:
      return self._audio_metrics(state, seed)
    return self._image_metrics(state, seed)


_LOOP_EVALUATORS = {}  # (config json, mesh) -> Evaluator: feature nets and references built once per run


def make_evaluator(config, mesh=None, task=None, **overrides) -> Evaluator:
  """An Evaluator for ``config.eval_gen`` (metrics, num_samples, real_split, text_unit; keyword
  ``overrides`` win over the block)."""
  g = config.get("eval_gen", None)
  g = g.to_dict() if hasattr(g, "to_dict") else dict(g or {})
  g.update({k: v for k, v in overrides.items() if v is not None})
  return Evaluator(config, g.get("metrics", ""), g.get("num_samples", 500), mesh,
                   real_split=g.get("real_split", None) or None, task=task,
                   weights_path=g.get("weights_path"), batch_size=g.get("batch_size", 64),
                   text_unit=g.get("text_unit", "words"))


def loop_evaluator(config, mesh, task=None, num_samples=None) -> Evaluator:
  """The training run's Evaluator for ``config.eval_gen`` (``num_samples``: an override), built
  once per (config, mesh, num_samples): the loop builds it before training, so missing weights
  or a bad metric fail at once."""
  key = (config.to_json(), id(mesh), num_samples)
  if key not in _LOOP_EVALUATORS:
    _LOOP_EVALUATORS[key] = make_evaluator(config, mesh, task, num_samples=num_samples)
  return _LOOP_EVALUATORS[key]


def evaluate_in_loop(config, mesh, state, step: int, task=None) -> dict:
  """The training loop's hook for a ``config.eval_gen`` block: the generator metrics of
  ``state`` as floats, with a fixed noise seed so successive evaluations differ only by the model.
  At the last step, ``eval_gen.num_samples_at_end`` (if set) replaces ``num_samples`` (e.g. FID
  over 10k samples during training and the published 50k at the end)."""
  final = int(config.eval_gen.get("num_samples_at_end", 0) or 0)
  n = final if final and step >= config.num_steps else None
  return loop_evaluator(config, mesh, task, n)(state, seed=config.seed)


def evaluate_checkpoint(config, workdir: str, metrics=None, num_samples: Optional[int] = None,
                        step=None, real_split=None, weights_path=None, batch_size: int = 64,
                        seed: int = 0):
  """(step, {metric: float}, notes) for ``workdir``'s checkpoint ``step`` (default latest);
  unset arguments come from ``config.eval_gen`` (then the kind's defaults). A workdir without
  checkpoints fails first, before any feature network is loaded or trained, and without
  creating directories."""
  from genai_jax import config_utils
  from genai_jax import tasks
  from genai_jax.train import sharding
  from genai_jax.train import state as state_lib
  tasks.validate(config)
  state_lib.check_has_checkpoints(workdir, step)
  mesh = sharding.make_mesh(config.mesh.data, config.mesh.fsdp)
  task = tasks.get_task(config)
  evaluator = make_evaluator(config, mesh, task, metrics=metrics, num_samples=num_samples,
                             real_split=real_split, weights_path=weights_path,
                             batch_size=batch_size)
  step, state = state_lib.restore(config, workdir, step, mesh, task)
  return step, evaluator(state, seed), evaluator.notes
