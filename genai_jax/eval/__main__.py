"""Evaluate a saved checkpoint of any family: image metrics (FID/KID/IS/precision/recall/
density/coverage, FCD-digits, GAN D accuracy) or text metrics (distinct-n, self-BLEU, memorisation).

  python -m genai_jax.eval.weights          # once: fetch + convert the FID Inception weights
  python -m genai_jax.eval --workdir=workdirs/demo \\
      --config=experiments/configs/dcgan_celeba.py:demo [--num_samples=500] \\
      [--metrics=fid,kid,is,pr,dc] [--step=N] [--real_split=train]

Restores the latest (or ``--step``) checkpoint of ``--workdir`` with the run's config (the
training run's ``--config`` and overrides: checkpoints hold arrays, not the config), draws
``num_samples`` samples through the task's ``generate``, scores them by their kind (images:
against up to ``num_samples`` images of ``real_split``, default the config's train split, with
reference features cached per dataset/split/size/count; text: also on real held-out windows),
prints the metrics and appends them to ``<workdir>/metrics.jsonl`` and TensorBoard as split
``eval_gen`` at the checkpoint's step. Unset flags come from the config's ``eval_gen`` block (and
then the sample kind's defaults; see ``genai_jax.eval.runner``). Fully offline once the weights
are converted.
"""

import time

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "The training run's config file (with "
                                          ":preset and the same --config.KEY overrides).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "The run's workdir (holds checkpoints/).")
_NUM = flags.DEFINE_integer("num_samples", None, "Generated samples (and at most this many real "
                            "ones); default: the config's eval_gen.num_samples.")
_METRICS = flags.DEFINE_string("metrics", None, "Comma-separated; images: fid,kid,is,pr,dc,fcd,dacc; "
                               "text: distinct,self_bleu,mem. Default: the config's eval_gen.metrics, "
                               "else the sample kind's defaults.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
_SPLIT = flags.DEFINE_string("real_split", None, "Real split to compare with (default: data.train_split).")
_WEIGHTS = flags.DEFINE_string("weights", None, "Converted Inception .npz (default: the cache).")
_BATCH = flags.DEFINE_integer("batch_size", 64, "Feature-extraction batch (split over devices).")
_SEED = flags.DEFINE_integer("seed", 0, "Noise seed of the generated set.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  from genai_jax import errors
  with errors.friendly():
    if _WORKDIR.value is None or _CONFIG.value is None:
      raise errors.ConfigError("pass --workdir=<run dir> and --config=<the run's config, e.g. "
                               "experiments/configs/dcgan_celeba.py:demo>")
    from genai_jax.eval import runner
    from genai_jax.train import writers
    t0 = time.perf_counter()
    step, results, notes = runner.evaluate_checkpoint(
        _CONFIG.value, _WORKDIR.value, _METRICS.value, _NUM.value, _STEP.value, _SPLIT.value,
        _WEIGHTS.value, _BATCH.value, _SEED.value)
    for note in notes:
      print(f"note: {note}")
    print(f"eval_gen step {step} ({time.perf_counter() - t0:.0f}s) | " +
          " | ".join(f"{k} {v:.4f}" for k, v in results.items()), flush=True)
    writer = writers.MetricWriter(_WORKDIR.value)
    writer.scalars(step, results, "eval_gen")
    writer.close()


if __name__ == "__main__":
  app.run(main)
