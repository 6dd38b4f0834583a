"""Config checks shared by every experiment: fail early with one line that names the fix."""

import ml_collections

from genai_jax.errors import ConfigError

REQUIRED = ("task", "seed", "batch_size", "num_steps", "log_every", "eval_every", "eval_batches",
            "checkpoint_every", "keep_checkpoints", "mesh", "model", "data", "optimizer")


def validate(config: ml_collections.ConfigDict) -> None:
  for key in REQUIRED:
    if key not in config:
      raise ConfigError(f"config has no {key!r}; start from a file in experiments/configs/")
  for key in ("batch_size", "num_steps", "log_every", "eval_every", "checkpoint_every",
              "keep_checkpoints"):
    if int(config[key]) <= 0:
      raise ConfigError(f"--config.{key}={config[key]} must be positive")
  if config.get("eval_gen") and int(config.eval_gen.get("every", 0)) < 0:
    raise ConfigError(f"--config.eval_gen.every={config.eval_gen.every} must be >= 0 (0 turns "
                      f"it off)")
  # Before any data or compilation: an unknown model, a model key the chosen model does not read,
  # or a dtype outside float32/bfloat16/float16 is one line naming the fix.
  from genai_jax import tasks
  tasks.check_model(config)
  if "image_size" in config.data and "image_size" in config.model:
    if config.data.image_size != config.model.image_size:
      raise ConfigError(f"data.image_size={config.data.image_size} != model.image_size="
                        f"{config.model.image_size}; set both (e.g. --config.model.image_size=N "
                        f"--config.data.image_size=N)")
  if "channels" in config.data and "channels" in config.model:
    if config.data.channels != config.model.channels:
      raise ConfigError(f"data.channels={config.data.channels} != model.channels="
                        f"{config.model.channels}; set both to the same value")


def override(config: ml_collections.ConfigDict, overrides: dict) -> ml_collections.ConfigDict:
  """Sets dotted keys (``{"data.name": ...}``) on ``config`` as ``--config.KEY=VALUE`` would
  (a key the config lacks raises, as the flag does); returns ``config``."""
  for key, value in overrides.items():
    node = config
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config
