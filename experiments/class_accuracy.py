"""Digit-classifier scores of a digits/MNIST generator's samples: per-class accuracy (class-
conditional runs), the classes that appear (any run) and the Fréchet distance on the classifier's
features beside the real-vs-real floor. Any family whose task has ``generate`` (GANs, VAEs,
diffusion); the classifier (genai_jax/eval/classifier.py) is trained once on the run's data
(sklearn_digits or full MNIST) at the run's image size and cached.

  python -m experiments.class_accuracy --workdir=W [--per_class=100] [--step=N]

Draws ``10 * per_class`` samples from the run's checkpoint (EMA weights when the run has them; a
conditional run ``per_class`` of each class) and prints
  * conditional runs: the share of class c's samples the classifier labels c (chance 10%);
  * the share of the samples labelled each class, and how many classes hold at least a tenth of a
    uniform share (a collapsed GAN shows fewer than 10), with the same for as many real test images;
  * FCD: the Fréchet distance between the samples' classifier features and those of the first
    ``num_reference`` training images, beside that of as many real eval-split images (the floor:
    what a perfect generator scores at this sample size; the distance is biased upwards at small n).
"""

import dataclasses
from typing import Optional

import numpy as np
from absl import app, flags

_FLAGS = {}


def _define_flags() -> dict:
  return dict(
      workdir=flags.DEFINE_string("workdir", None, "A digits/MNIST image generator's run.",
                                  required=True),
      per_class=flags.DEFINE_integer("per_class", 100, "Samples drawn: 10 x this (a conditional "
                                     "run: this many of each class)."),
      step=flags.DEFINE_integer("step", None, "Checkpoint step (default: the newest)."),
      seed=flags.DEFINE_integer("seed", 0, "Noise seed."),
      num_reference=flags.DEFINE_integer("num_reference", 10_000, "Training images behind the "
                                         "FCD's reference statistics."))


@dataclasses.dataclass
class DigitScores:
  """What ``score`` measured; shares and accuracies are float arrays [num_classes]."""
  step: int
  num_samples: int
  classifier_test_accuracy: float
  class_share: np.ndarray  # share of the samples the classifier labels each class
  real_class_share: np.ndarray  # the same for as many real eval-split images
  fcd: float  # samples vs the reference (train) features
  fcd_real: float  # as many real eval-split images vs the same reference: the floor
  num_reference: int
  per_class_accuracy: Optional[np.ndarray] = None  # class-conditional runs only

  @staticmethod
  def present(share: np.ndarray) -> int:
    """Classes holding at least a tenth of a uniform share."""
    return int((share >= 0.1 / len(share)).sum())


def score(workdir: str, per_class: int = 100, step=None, seed: int = 0,
          num_reference: int = 10_000) -> DigitScores:
  """Scores of ``workdir``'s samples under its data's digit classifier (see the module doc)."""
  import jax
  import jax.numpy as jnp
  from genai_jax import tasks
  from genai_jax.errors import ConfigError
  from genai_jax.eval import classifier, weights
  from genai_jax.eval import fid as fid_lib
  from genai_jax.eval.image_evaluator import real_images
  from genai_jax.train import state as state_lib
  from genai_jax.train import workdir as workdir_lib
  config = workdir_lib.load_config(workdir)
  tasks.validate(config)
  if config.data.name not in classifier.DATASETS or config.data.get("channels", 1) != 1:
    raise ConfigError(f"digit-classifier scores need a 1-channel run on one of "
                      f"{sorted(classifier.DATASETS)}; {workdir} is a run on {config.data.name!r}")
  task = tasks.get_task(config)
  if task.generate is None:
    raise ConfigError(f"{workdir} is a {config.task!r} run, which draws no samples (no "
                      f"Task.generate); score a GAN, VAE or diffusion run")
  num_classes = 10
  step, state = state_lib.restore(config, workdir, step, task=task)
  variables, test_acc = classifier.load_or_train(config.data, weights.cache_dir())
  apply = jax.jit(lambda x: classifier.DigitCNN().apply(variables, x))
  # A conditional run: every chunk holds every class equally often (a GAN's BatchNorm normalises
  # over its batch); an unconditional one draws chunks of the same size.
  labels = np.tile(np.arange(num_classes, dtype=np.int32), per_class)
  chunk = num_classes * min(per_class, 10)
  if task.num_classes:
    draw = jax.jit(task.generate_labelled)
  else:
    draw = jax.jit(lambda s, k, y: task.generate(s, k, len(y)))
  feats, predicted = [], []
  for i, start in enumerate(range(0, len(labels), chunk)):
    y = labels[start:start + chunk]
    if len(y) < chunk:  # one compiled shape: pad the last chunk, drop the extra outputs
      y = np.concatenate([y, labels[:chunk - len(y)]])
    sample = draw(state, jax.random.fold_in(jax.random.PRNGKey(seed), i), jnp.asarray(y))
    images = sample.images if hasattr(sample, "images") else sample
    f, logits = (np.asarray(a)[:min(chunk, len(labels) - start)] for a in apply(images))
    feats.append(f)
    predicted.append(logits.argmax(-1))
  feats, predicted = np.concatenate(feats), np.concatenate(predicted)
  n = len(labels)

  extract = classifier.make_extractor(variables)
  train_split = config.data.get("train_split", "train")
  reference = extract(real_images(config.data, train_split, num_reference))["features"]
  held_out = real_images(config.data, config.data.eval_split, n)
  if len(held_out) < n:
    raise ConfigError(f"the {config.data.eval_split} split holds {len(held_out)} images, fewer "
                      f"than the {n} samples; lower --per_class")
  real = classifier.make_extractor(variables, logits=True)(held_out)  # features, classes: one pass
  real_pred = np.asarray(real["logits"]).argmax(-1)
  share = lambda p: np.bincount(p, minlength=num_classes) / len(p)  # noqa: E731
  acc = None
  if task.num_classes:
    acc = np.array([(predicted[labels == c] == c).mean() for c in range(num_classes)])
  return DigitScores(step=step, num_samples=n, classifier_test_accuracy=test_acc,
                     class_share=share(predicted), real_class_share=share(real_pred),
                     fcd=fid_lib.fid_from_features(reference, feats),
                     fcd_real=fid_lib.fid_from_features(reference, real["features"]),
                     num_reference=len(reference), per_class_accuracy=acc)


def report(s: DigitScores) -> str:
  """The lines ``main`` prints."""
  row = lambda a: " | ".join(f"{c}: {v:.2f}" for c, v in enumerate(a))  # noqa: E731
  lines = [f"step {s.step}: {s.num_samples:,} samples under the digit classifier (test accuracy "
           f"{s.classifier_test_accuracy:.3f} on real digits)"]
  if s.per_class_accuracy is not None:
    lines.append(f"per-class accuracy: {row(s.per_class_accuracy)} | mean "
                 f"{s.per_class_accuracy.mean():.3f}")
  lines.append(f"class shares of the samples: {row(s.class_share)} | classes present "
               f"{s.present(s.class_share)}/{len(s.class_share)} (real test images: "
               f"{s.present(s.real_class_share)}, shares {s.real_class_share.min():.2f}-"
               f"{s.real_class_share.max():.2f})")
  lines.append(f"FCD vs {s.num_reference:,} training images: samples {s.fcd:.2f} | "
               f"{s.num_samples:,} real test images {s.fcd_real:.2f} (the floor at this size)")
  return "\n".join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  from genai_jax import cli, errors
  cli.setup_run()
  f = {k: v.value for k, v in _FLAGS.items()}
  with errors.friendly():
    print(report(score(f["workdir"], f["per_class"], f["step"], f["seed"], f["num_reference"])))


if __name__ == "__main__":
  _FLAGS.update(_define_flags())
  app.run(main)
