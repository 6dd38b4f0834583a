"""What every sample kind's evaluator shares: the run's task and its compiled sampler, the metric
names asked for, the real split, and the references cached between evaluations (so evaluations
inside a training run do not recompile or reread).

One subclass per kind: ``image_evaluator``, ``audio_evaluator``, ``token_evaluator``;
``runner.make_evaluator`` picks the one of the task's sample kind.
"""

import abc
from typing import Optional, Sequence

from genai_jax.errors import ConfigError
from genai_jax.eval import sampling


def parse_names(names, allowed: Sequence[str], defaults: Optional[Sequence[str]] = None,
                what: str = "samples") -> tuple[str, ...]:
  """Comma-separated (or sequence of) metric names -> tuple; empty -> ``defaults`` (when given).
  Raises ConfigError naming the ``allowed`` choices."""
  names = tuple(n.strip() for n in (names.split(",") if isinstance(names, str) else names or ())
                if n.strip())
  if not names and defaults is not None:
    return tuple(defaults)
  bad = [n for n in names if n not in allowed]
  if bad or not names:
    raise ConfigError(f"unknown metrics for {what}: {bad or names}; choose from {','.join(allowed)}")
  return names


class Evaluator(abc.ABC):
  """Scores ``num_samples`` samples of one run's task; call it with a state: ``{metric: float}``.

  Args:
    config: the run's config. metrics: names of ``METRICS`` (empty: ``DEFAULTS``).
    num_samples: N generated (and at most N real) samples. mesh: where the sampler and feature
    networks run (None: the default device). task: the run's task. real_split: the real
    samples' split (default data.train_split). cache_dir: feature networks and reference
    statistics (default: ``eval.weights.cache_dir()``). batch_size: feature extraction batch.
  """
  KIND: type  # the sample kind scored (``samples.Images``, ...)
  METRICS: tuple = ()  # the names this kind offers
  DEFAULTS: tuple = ()  # the names an empty ``metrics`` means
  OPTIONS: tuple = ()  # the eval_gen keys (and keyword arguments) this kind adds to the shared

  def __init__(self, config, metrics, num_samples: int, mesh=None, *, task,
               real_split: Optional[str] = None, cache_dir: Optional[str] = None,
               batch_size: int = 64):
    self.config, self.task, self.kind = config, task, self.KIND
    self.metrics = parse_names(metrics, self.METRICS, self.DEFAULTS, f"{self.KIND.__name__} samples")
    self.defaulted = not (metrics.strip() if isinstance(metrics, str) else metrics)
    self.num_samples, self.mesh, self.batch_size = int(num_samples), mesh, batch_size
    self.real_split = real_split or config.data.train_split
    from genai_jax.eval import weights as weights_lib
    self.cache_dir = cache_dir or weights_lib.cache_dir()
    self.notes = []  # what the figures are measured against, for the reader
    self._refs = {}
    self._sampler = sampling.make_sampler(task, mesh)

  def _generate(self, state, num: int, seed: int):
    return sampling.generate(self.task, state, num, seed, self.config.batch_size, self._sampler)

  def _split_size(self) -> int:
    from genai_jax.data import pipelines
    builder = pipelines.get_builder(self.config.data)
    return builder.info.splits[self.real_split].num_examples

  def num_real(self) -> int:
    """How many real samples the metrics compare with (min of N and the split's size)."""
    return min(self.num_samples, self._split_size())

  @abc.abstractmethod
  def __call__(self, state, seed: int = 0) -> dict:
    """float metrics for ``state`` (names in the subclass's module docstring), from samples
    drawn with noise seed ``seed``."""
