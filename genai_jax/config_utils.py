"""Config checks that need no family (the family ones are ``genai_jax.tasks.validate``), and
setting dotted keys: fail early with one line that names the fix."""

import ml_collections

from genai_jax.errors import ConfigError

REQUIRED = ("task", "seed", "batch_size", "num_steps", "log_every", "eval_every", "eval_batches",
            "checkpoint_every", "keep_checkpoints", "mesh", "model", "data", "optimizer")


def check_common(config: ml_collections.ConfigDict) -> None:
  """The checks that hold for every family: the required keys are there, the step counts and
  intervals are positive. ``genai_jax.tasks.validate`` runs these and the family's own."""
  for key in REQUIRED:
    if key not in config:
      raise ConfigError(f"config has no {key!r}; start from a file in experiments/configs/")
  for key in ("batch_size", "num_steps", "log_every", "eval_every", "checkpoint_every",
              "keep_checkpoints"):
    if int(config[key]) <= 0:
      raise ConfigError(f"{key}={config[key]} must be positive", keys=(key,))
  if config.get("eval_gen") and int(config.eval_gen.get("every", 0)) < 0:
    raise ConfigError(f"eval_gen.every={config.eval_gen.every} must be >= 0 (0 turns it off)",
                      keys=("eval_gen.every",))


def override(config: ml_collections.ConfigDict, overrides: dict) -> ml_collections.ConfigDict:
  """Sets dotted keys (``{"data.name": ...}``) on ``config`` as the command line's config flags would
  (a key the config lacks raises, as the flag does); returns ``config``."""
  for key, value in overrides.items():
    node = config
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config
