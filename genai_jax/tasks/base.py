"""The contract between a model family and the shared training loop."""

import dataclasses
from typing import Any, Callable, Mapping, Optional

import jax

State = Any  # a pytree (flax.struct.dataclass) holding params, optimiser state, step and rng
Batch = Mapping[str, jax.Array]
Metrics = Mapping[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class Task:
  """Pure functions that make one model family trainable by ``train_and_evaluate``.

  Attributes:
    init: rng (uint32[2]) -> State. The loop runs it under ``jax.jit`` with the state's shardings.
    train_step: (State, Batch) -> (State, Metrics). Pure; draws randomness from
      ``fold_in(state.rng, state.step)``; metrics are float32 scalars averaged over the global batch.
    eval_step: optional (State, Batch) -> Metrics, scalars averaged over the batch; the loop
      averages them over ``config.eval_batches`` batches of the eval split.
    sample: optional (State, Batch) -> {name: sample kind} (``genai_jax.samples``: Images,
      Audio, Tokens, PianoRoll): the sets the loop writes at every eval, from fixed noise (and,
      e.g. for reconstructions or prompts, from ``Batch``, a fixed batch of the eval split). The
      loop writes each by its kind only (``samples.write``): ``<workdir>/<name>/step_<step>.png``
      grids, WAVs with log-mel spectrograms, text, or MIDI with WAVs and piano-roll PNGs, each
      with a ``latest`` copy, and to TensorBoard.
    finite_metrics: metric names that must stay finite; the loop stops naming the first that is not.
    unit: what the progress line counts ("images", "tokens", ...).
    items_per_example: how many ``unit`` one batch element holds (e.g. seq_len tokens).
    baselines: optional host function () -> {name: float}, figures a trained model must beat on
      the eval split (e.g. the unigram loss); the loop prints and logs them once per run as
      split ``baseline``, so the eval curve can be read against them.
    generate: optional (State, rng uint32[2], n: static int) -> sample kind holding n
      unconditional samples from the model, jittable with ``n`` static. The generator evaluation
      (``eval.runner``: FID/KID/... for images, text diversity for tokens) draws through it.
      A class-conditional model draws each label uniformly over its classes here.
    num_classes: > 0 for a class-conditional model (labels int32 in [0, num_classes)), whose
      Task then also has ``generate_labelled``; 0 for an unconditional one.
    generate_labelled: optional (State, rng uint32[2], labels int32 [n]) -> sample kind holding
      n samples, sample i of class ``labels[i]``, with the weights (EMA) and settings (e.g.
      guidance) ``generate`` uses; jittable (n is the labels' static shape). Set exactly when
      ``num_classes`` > 0 (class-conditional GANs and diffusion); the sampling CLI
      (``genai_jax.sample``) draws a grid's rows of one class each through it.
    discriminate: optional (State, real-shaped samples in [-1, 1]: images float32 [B, H, W, C]
      or audio [B, T, C]) -> float32 [B] logits (> 0: real), deterministic (no training-time
      randomness), for the held-out discriminator accuracy (``dacc``); GANs only.
  """
  init: Callable[[jax.Array], State]
  train_step: Callable[[State, Batch], tuple[State, Metrics]]
  eval_step: Optional[Callable[[State, Batch], Metrics]] = None
  sample: Optional[Callable[[State, Batch], Mapping[str, Any]]] = None
  finite_metrics: tuple[str, ...] = ()
  unit: str = "examples"
  items_per_example: int = 1
  baselines: Optional[Callable[[], Mapping[str, float]]] = None
  generate: Optional[Callable[[State, jax.Array, int], Any]] = None
  discriminate: Optional[Callable[[State, jax.Array], jax.Array]] = None
  num_classes: int = 0
  generate_labelled: Optional[Callable[[State, jax.Array, jax.Array], Any]] = None

  def __post_init__(self):
    # A family bug, not a user's mistake: the sampling CLI trusts num_classes to mean labels work.
    if (self.num_classes > 0) != (self.generate_labelled is not None):
      raise ValueError(f"Task: generate_labelled must be set exactly when num_classes > 0 "
                       f"(num_classes={self.num_classes})")
