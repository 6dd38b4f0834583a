"""Evaluate a generator's state: pick the evaluator of the task's sample kind and run it, on a
saved checkpoint (``python -m genai_jax.eval``) or inside training (the ``config.eval_gen`` block,
through ``eval_gen_hook``, which the experiment entry point hands the loop).

Every family goes through here: the task says how to draw samples and what kind they are; nothing
here knows GANs from VAEs. The metric names of each kind are listed in its evaluator's module:
``image_evaluator`` (fid, kid, is, pr, dc, div, fcd, dacc), ``audio_evaluator`` (fd_logmel,
is_sc09, fd_sc09), ``token_evaluator`` (distinct, self_bleu, mem).
"""

from typing import Optional

from genai_jax import samples as samples_lib
from genai_jax.errors import ConfigError
from genai_jax.eval import evaluator as evaluator_lib
from genai_jax.eval import sampling
from genai_jax.eval.audio_evaluator import AudioEvaluator
from genai_jax.eval.image_evaluator import ImageEvaluator
from genai_jax.eval.token_evaluator import TokenEvaluator

EVALUATORS = {samples_lib.Images: ImageEvaluator, samples_lib.Tokens: TokenEvaluator,
              samples_lib.Audio: AudioEvaluator}
METRICS = {kind: e.METRICS for kind, e in EVALUATORS.items()}
DEFAULTS = {kind: e.DEFAULTS for kind, e in EVALUATORS.items()}
ALL = tuple(n for names in METRICS.values() for n in names)


def parse_metrics(names, kind=None) -> tuple[str, ...]:
  """Comma-separated (or sequence of) metric names -> tuple; empty -> ``kind``'s defaults.
  Raises ConfigError naming the valid choices (for ``kind``, when given)."""
  if kind is None:
    return evaluator_lib.parse_names(names, ALL)
  return evaluator_lib.parse_names(names, METRICS[kind], DEFAULTS[kind], f"{kind.__name__} samples")


def make_evaluator(config, mesh=None, task=None, **overrides) -> evaluator_lib.Evaluator:
  """The evaluator of ``task``'s sample kind (default task: built from ``config``) for
  ``config.eval_gen`` (metrics, num_samples, real_split, batch_size and the kind's ``OPTIONS``:
  weights_path, text_unit); keyword ``overrides`` win over the block."""
  g = config.get("eval_gen", None)
  g = g.to_dict() if hasattr(g, "to_dict") else dict(g or {})
  g.update({k: v for k, v in overrides.items() if v is not None})
  if task is None:
    from genai_jax import tasks
    task = tasks.get_task(config)
  kind = sampling.sample_kind(task)
  if kind not in EVALUATORS:
    raise ConfigError(f"no generator metrics for {kind.__name__} samples yet; drop the eval_gen "
                      f"block or set eval_gen.every=0", keys=("eval_gen.every",))
  cls = EVALUATORS[kind]
  options = {k: g[k] for k in cls.OPTIONS if k in g}
  return cls(config, g.get("metrics", ""), g.get("num_samples", 500), mesh, task=task,
             real_split=g.get("real_split", None) or None, batch_size=g.get("batch_size", 64),
             **options)


_LOOP_EVALUATORS = {}  # (config json, mesh, num_samples) -> Evaluator: built once per run


def loop_evaluator(config, mesh, task=None, num_samples=None) -> evaluator_lib.Evaluator:
  """The training run's evaluator for ``config.eval_gen`` (``num_samples``: an override), built
  once per (config, mesh, num_samples), so evaluations inside a run share the compiled sampler,
  the feature networks and the references."""
  key = (config.to_json(), id(mesh), num_samples)
  if key not in _LOOP_EVALUATORS:
    _LOOP_EVALUATORS[key] = make_evaluator(config, mesh, task, num_samples=num_samples)
  return _LOOP_EVALUATORS[key]


def evaluate_in_loop(config, mesh, state, step: int, task=None) -> dict:
  """The generator metrics of ``state`` at training step ``step`` as floats, with a fixed noise
  seed so successive evaluations differ only by the model. At the last step,
  ``eval_gen.num_samples_at_end`` (if set) replaces ``num_samples`` (e.g. FID over 10k samples
  during training and the published 50k at the end)."""
  final = int(config.eval_gen.get("num_samples_at_end", 0) or 0)
  n = final if final and step >= config.num_steps else None
  return loop_evaluator(config, mesh, task, n)(state, seed=config.seed)


def eval_gen_hook(config, mesh, task):
  """The training loop's hook for a ``config.eval_gen`` block (``train.loop.EvalGenHook``):
  builds the run's evaluator now, so missing Inception weights or a bad metric fail before
  training, and returns ``(state, step) -> {metric: float}`` (``evaluate_in_loop``)."""
  loop_evaluator(config, mesh, task)
  return lambda state, step: evaluate_in_loop(config, mesh, state, step, task)


def evaluate_checkpoint(config, workdir: str, metrics=None, num_samples: Optional[int] = None,
                        step=None, real_split=None, weights_path=None, batch_size: int = 64,
                        seed: int = 0):
  """(step, {metric: float}, notes) for ``workdir``'s checkpoint ``step`` (default latest);
  unset arguments come from ``config.eval_gen`` (then the kind's defaults). A workdir without
  checkpoints fails first, before any feature network is loaded or trained, and without
  creating directories."""
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
  step, state = state_lib.restore(config, workdir, step, mesh, task=task)
  return step, evaluator(state, seed), evaluator.notes
