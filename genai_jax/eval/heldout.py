"""Held-out metrics of a saved checkpoint: the task's ``eval_step`` (a VAE's neg_elbo and k-sample
NLL bound, an LM's loss and perplexity, a diffusion model's loss, ...) averaged over batches of
any split. It is what the loop logs as split ``eval``, for one checkpoint, on the split and with
the settings a paper's number needs (the whole test split, k = 5000), which a training run would
pay for at every evaluation.

  python -m genai_jax.eval.heldout --workdir=W [--split=test] [--batches=N] [--step=S]
  python -m genai_jax.eval.heldout --workdir=W --config=FILE:PRESET --config.objective.iw_samples=5000

Restores the newest (or ``--step``) checkpoint with the run's config (``<workdir>/config.json``,
or ``--config=FILE:PRESET`` with the run's and any other ``--config.KEY`` overrides that leave the
state unchanged, such as the evaluation's k), reads ``--batches`` batches of ``batch_size`` of
``--split`` in order (defaults: ``eval_batches`` of ``data.eval_split``), prints the means and
appends them to ``metrics.jsonl`` and TensorBoard as split ``heldout_<split>``.
"""

import time
from typing import Optional

from absl import app, flags

from genai_jax import cli

_FLAGS: dict = {}


def _define_flags() -> dict:
  """The command's flags, defined only when it runs as ``python -m genai_jax.eval.heldout``:
  importing the module (for ``evaluate``) defines none, so it can share a process with the other
  commands, which define some of the same names (--workdir, --config)."""
  return {
      "config": cli.define_config(None, "The run's config file (:preset and the same --config.KEY "
                                  "overrides, plus evaluation settings); default: "
                                  "<workdir>/config.json.",
                                  "pass --config=FILE:PRESET with --config.KEY=VALUE overrides"),
      "workdir": flags.DEFINE_string("workdir", None, "The run's workdir (holds checkpoints/)."),
      "split": flags.DEFINE_string("split", None, "Split to evaluate on (default: "
                                   "data.eval_split)."),
      "batches": flags.DEFINE_integer("batches", None, "Batches of batch_size (default: "
                                      "eval_batches)."),
      "step": flags.DEFINE_integer("step", None, "Checkpoint step (default: the newest)."),
  }


def evaluate(config, workdir: str, split: Optional[str] = None, num_batches: Optional[int] = None,
             step: Optional[int] = None) -> tuple[int, dict]:
  """(step, {metric: float}) of ``workdir``'s checkpoint ``step`` (default: the newest): the task's
  ``eval_step`` means over ``num_batches`` (default ``config.eval_batches``) batches of
  ``config.batch_size`` examples of ``split`` (default ``config.data.eval_split``), read in order
  from the start, as the loop's evaluation reads them."""
  import jax
  from genai_jax import tasks
  from genai_jax.data import pipelines
  from genai_jax.errors import ConfigError
  from genai_jax.train import loop, sharding
  from genai_jax.train import state as state_lib
  tasks.validate(config)
  split = split or config.data.eval_split
  num_batches = int(config.eval_batches if num_batches is None else num_batches)
  if num_batches < 1:
    raise ConfigError(f"batches={num_batches} must be at least 1 (pass --batches=N)")
  task = tasks.get_task(config)
  if task.eval_step is None:
    raise ConfigError(f"the {config.task!r} task has no held-out metrics; use "
                      f"python -m genai_jax.eval for its samples")
  mesh = sharding.make_mesh(config.mesh.data, config.mesh.fsdp)
  step, state = state_lib.restore(config, workdir, step, mesh, task=task)
  eval_step = jax.jit(task.eval_step, out_shardings=sharding.replicated(mesh))
  batches = pipelines.batches(config.data, split, config.batch_size, train=False, seed=config.seed)
  return step, loop.evaluate_batches(state, eval_step, batches, mesh, num_batches)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  cli.setup_run()
  from genai_jax import errors
  f = {name: holder.value for name, holder in _FLAGS.items()}
  with errors.friendly():
    if not f["workdir"]:
      raise errors.ConfigError("pass --workdir=<the training run's workdir>")
    from genai_jax.train import workdir as workdir_lib
    from genai_jax.train import writers
    config = f["config"] or workdir_lib.load_config(f["workdir"])
    split = f["split"] or config.data.eval_split
    t0 = time.perf_counter()
    step, results = evaluate(config, f["workdir"], split, f["batches"], f["step"])
    print(f"heldout_{split} step {step} ({time.perf_counter() - t0:.0f}s) | " +
          " | ".join(f"{k} {v:.4f}" for k, v in results.items()), flush=True)
    writer = writers.MetricWriter(f["workdir"])
    writer.scalars(step, results, f"heldout_{split}")
    writer.close()


if __name__ == "__main__":
  _FLAGS.update(_define_flags())
  app.run(main, flags_parser=cli.flags_parser("see python -m genai_jax.eval.heldout --help"))
