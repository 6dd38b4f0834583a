"""Per-class accuracy of a class-conditional digits GAN's samples under the digit classifier
(genai_jax/eval/classifier.py: trained once on the run's data, sklearn_digits or full MNIST).

  python -m experiments.class_accuracy --workdir=W [--per_class=100] [--step=N]

Draws ``per_class`` samples of each class c from the run's checkpoint (EMA weights when the run
has them) and prints the share the digit classifier (genai_jax/eval/classifier.py) labels c: a
check that the label controls the digit (chance is 10%).
"""

from absl import app, flags

_WORKDIR = flags.DEFINE_string("workdir", None, "A class-conditional digits/MNIST GAN run.",
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
  from genai_jax.tasks import gan
  from genai_jax.train import state as state_lib
  from genai_jax.train import workdir as workdir_lib
  config = workdir_lib.load_config(workdir)
  tasks.validate(config)
  if config.task != "gan" or config.data.name not in classifier.DATASETS:
    raise ConfigError(f"class accuracy needs a GAN run on one of {sorted(classifier.DATASETS)}; "
                      f"{workdir} is a {config.task!r} run on {config.data.name!r}")
  num_classes = int(config.model.get("num_classes", None) or 0)
  step, state = state_lib.restore(config, workdir, step, task=tasks.get_task(config))
  variables, test_acc = classifier.load_or_train(config.data, weights.cache_dir())
  draw = jax.jit(lambda s, k, y: gan.labelled_samples(config, s, k, y))
  logits_of = jax.jit(lambda x: classifier.DigitCNN().apply(variables, x)[1])
  # One batch holding every class, as in training: G's BatchNorm normalises over the batch, so a
  # batch of a single class would have its class-dependent BN shifts subtracted out again.
  labels = np.tile(np.arange(num_classes, dtype=np.int32), per_class)
  images = draw(state, jax.random.PRNGKey(seed), jnp.asarray(labels))
  predicted = np.asarray(logits_of(images)).argmax(-1)
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
