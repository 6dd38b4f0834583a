"""Evaluate a saved checkpoint of any family: image metrics (FID/KID/IS/precision/recall/
density/coverage, FCD-digits, GAN D accuracy) or text metrics (distinct-n, self-BLEU, memorisation).

  python -m genai_jax.eval.weights          # once: fetch + convert the FID Inception weights
  python -m genai_jax.eval --workdir=workdirs/demo [--num_samples=500] \\
      [--metrics=fid,kid,is,pr,dc] [--step=N] [--real_split=train]

Restores the latest (or ``--step``) checkpoint of ``--workdir`` with the config the run recorded
in ``<workdir>/config.json`` (or ``--config=FILE:PRESET`` plus the run's overrides, for runs
without one), draws ``num_samples`` samples through the task's ``generate``, scores them by their
kind (images: against up to ``num_samples`` images of ``real_split``, default the config's train
split, with reference features cached per dataset/split/size/count; text: also on real held-out
windows), prints the metrics and appends them to ``<workdir>/metrics.jsonl`` and TensorBoard as
split ``eval_gen`` at the checkpoint's step. Unset flags come from the config's ``eval_gen`` block
(and then the sample kind's defaults; see ``genai_jax.eval.runner``). Fully offline once the weights
are converted.
"""

import time

from absl import app, flags

from genai_jax import cli

_CONFIG = cli.define_config(None, "The run's config file (:preset and the same --config.KEY "
                            "overrides); default: <workdir>/config.json.",
                            "pass --config=FILE:PRESET with --config.KEY=VALUE overrides")
_WORKDIR = flags.DEFINE_string("workdir", None, "The run's workdir (holds checkpoints/).")
_NUM = flags.DEFINE_integer("num_samples", None, "Generated samples (and at most this many real "
                            "ones); default: the config's eval_gen.num_samples.")
_METRICS = flags.DEFINE_string("metrics", None, "Comma-separated; images: fid,kid,is,pr,dc,div,fcd,"
                               "dacc; text: distinct,self_bleu,mem; audio: fd_logmel (and on sc09 "
                               "is_sc09,fd_sc09). Default: the config's eval_gen.metrics, else the "
                               "sample kind's defaults.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
_SPLIT = flags.DEFINE_string("real_split", None, "Real split to compare with (default: data.train_split).")
_WEIGHTS = flags.DEFINE_string("weights", None, "Converted Inception .npz (default: the cache).")
_BATCH = flags.DEFINE_integer("batch_size", 64, "Feature-extraction batch (split over devices).")
_SEED = flags.DEFINE_integer("seed", 0, "Noise seed of the generated set.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  cli.setup_run()
  from genai_jax import errors
  with errors.friendly():
    if not _WORKDIR.value:
      raise errors.ConfigError("pass --workdir=<the training run's workdir>")
    if _NUM.value is not None and _NUM.value <= 0:
      raise errors.ConfigError(f"--num_samples={_NUM.value} must be positive")
    from genai_jax.eval import runner
    from genai_jax.train import workdir as workdir_lib
    from genai_jax.train import writers
    config = _CONFIG.value or workdir_lib.load_config(_WORKDIR.value)
    t0 = time.perf_counter()
    step, results, notes = runner.evaluate_checkpoint(
        config, _WORKDIR.value, _METRICS.value, _NUM.value, _STEP.value, _SPLIT.value,
        _WEIGHTS.value, _BATCH.value, _SEED.value)
    for note in notes:
      print(f"note: {note}")
    print(f"eval_gen step {step} ({time.perf_counter() - t0:.0f}s) | " +
          " | ".join(f"{k} {v:.4f}" for k, v in results.items()), flush=True)
    writer = writers.MetricWriter(_WORKDIR.value)
    writer.scalars(step, results, "eval_gen")
    writer.close()


if __name__ == "__main__":
  app.run(main, flags_parser=cli.flags_parser("see python -m genai_jax.eval --help"))
