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
    sample: optional (State, Batch) -> {name: float32 [N, H, W, C] in [-1, 1]}: image sets from
      fixed noise (and, e.g. for reconstructions, from ``Batch``, a fixed batch of the eval
      split). At every eval the loop writes each as a grid ``<workdir>/<name>/step_<step>.png``
      and ``<workdir>/<name>/latest.png`` and to TensorBoard.
    finite_metrics: metric names that must stay finite; the loop stops naming the first that is not.
    unit: what the progress line counts ("images", "tokens", ...).
    items_per_example: how many ``unit`` one batch element holds (e.g. seq_len tokens).
    render_text: optional host function int [N, ...] -> str. When set, ``sample`` returns token
      arrays instead of images and the loop writes ``<workdir>/<name>/step_<step>.txt`` and
      ``latest.txt`` instead of grids.
    baselines: optional host function () -> {name: float}, figures a trained model must beat on
      the eval split (e.g. the unigram loss); the loop prints and logs them once per run as
      split ``baseline``, so the eval curve can be read against them.
  """
  init: Callable[[jax.Array], State]
  train_step: Callable[[State, Batch], tuple[State, Metrics]]
  eval_step: Optional[Callable[[State, Batch], Metrics]] = None
  sample: Optional[Callable[[State, Batch], Mapping[str, jax.Array]]] = None
  finite_metrics: tuple[str, ...] = ()
  unit: str = "examples"
  items_per_example: int = 1
  render_text: Optional[Callable[[Any], str]] = None
  baselines: Optional[Callable[[], Mapping[str, float]]] = None
