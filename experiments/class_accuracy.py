"""Per-class accuracy of a class-conditional digits model's samples (any family whose task has
``generate_labelled``: the conditional GAN, conditional diffusion) under the digit classifier
(genai_jax/eval/classifier.py: trained once on the run's data, sklearn_digits or full MNIST).

  python -m experiments.class_accuracy --workdir=W [--per_class=100] [--step=N]

Draws ``per_class`` samples of each class c from the run's checkpoint (EMA weights when the run
has them) and prints the share the digit classifier (genai_jax/eval/classifier.py) labels c: a
check that the label controls the digit (chance is 10%).
"""

from absl import app, flags

_WORKDIR = flags.DEFINE_string("workdir", None, "A class-conditional digits/MNIST run.",
                               required=True)
_PER_CLASS = flags.DEFINE_integer("per_class", 100, "Samples drawn per class.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the newest).")
_SEED = flags.DEFINE_integer("seed", 0, "Noise seed.")


def class_accuracy(workdir: str, per_class: int = 100, step=None, seed: int = 0):
  """(step, per-class accuracy float [num_classes], classifier test accuracy) of ``workdir``."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from genai_jax import tasks
  from genai_jax.errors import ConfigError
  from genai_jax.eval import classifier, weights
  from genai_jax.train import state as state_lib
  from genai_jax.train import workdir as workdir_lib
  config = workdir_lib.load_config(workdir)
  tasks.validate(config)
  if config.data.name not in classifier.DATASETS:
    raise ConfigError(f"class accuracy needs a run on one of {sorted(classifier.DATASETS)}; "
                      f"{workdir} is a run on {config.data.name!r}")
  task = tasks.get_task(config)
  if not task.num_classes:
    raise ConfigError(f"{workdir} is an unconditional {config.task!r} run; class accuracy needs a "
                      f"class-conditional one (model.num_classes > 0)", keys=("model.num_classes",))
  num_classes = task.num_classes
  step, state = state_lib.restore(config, workdir, step, task=task)
  variables, test_acc = classifier.load_or_train(config.data, weights.cache_dir())
  draw = jax.jit(task.generate_labelled)
  logits_of = jax.jit(lambda x: classifier.DigitCNN().apply(variables, x)[1])
  # Every chunk holds every class equally often (a GAN's BatchNorm normalises over its batch).
  labels = np.tile(np.arange(num_classes, dtype=np.int32), per_class)
  chunk = num_classes * min(per_class, 10)
  predicted = []
  for i, start in enumerate(range(0, len(labels), chunk)):
    y = labels[start:start + chunk]
    if len(y) < chunk:  # one compiled shape: pad the last chunk, drop the extra predictions
      y = np.concatenate([y, labels[:chunk - len(y)]])
    sample = draw(state, jax.random.fold_in(jax.random.PRNGKey(seed), i), jnp.asarray(y))
    images = sample.images if hasattr(sample, "images") else sample
    predicted.append(np.asarray(logits_of(images)).argmax(-1)[:min(chunk, len(labels) - start)])
  predicted = np.concatenate(predicted)
  acc = np.array([(predicted[labels == c] == c).mean() for c in range(num_classes)])
  return step, acc, test_acc


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  from genai_jax import cli, errors
  cli.setup_run()
  with errors.friendly():
    step, acc, test_acc = class_accuracy(_WORKDIR.value, _PER_CLASS.value, _STEP.value, _SEED.value)
  print(f"step {step}: accuracy of {_PER_CLASS.value} samples per class under the digit classifier "
        f"(test accuracy {test_acc:.3f} on real digits)")
  print(" | ".join(f"{c}: {a:.2f}" for c, a in enumerate(acc)) + f" | mean {acc.mean():.3f}")


if __name__ == "__main__":
  app.run(main)
