"""Model families as pure functions the shared loop calls; see ``base.Task``.

``FAMILIES`` is the one table of families: dispatch (``get_task``), model checks
(``check_model``, ``validate``), continuation and the benchmarks read it, so a new family is one
line here plus its module. A family module is imported only when a config names one of its
tasks, so one family never loads another. Every family module exposes the same names:

  make_task(config) -> Task      the pure functions the loop runs
  MODELS                         name -> ``models.registry.Entry``: the models it can build
  SHARED_KEYS                    the model keys every one of its models reads
  model_settings(config)         (Entry, resolved settings) of ``config.model``; ConfigError if
                                 the model is unknown or a set key does not apply to it
"""

import dataclasses
import importlib

import jax.numpy as jnp

from genai_jax import config_utils
from genai_jax.errors import ConfigError
from genai_jax.tasks.base import Task


@dataclasses.dataclass(frozen=True)
class Family:
  """One model family: the module that implements it and the ``config.task`` values it serves."""
  module: str
  tasks: tuple[str, ...]
  label: str  # how messages name it ("GAN")


# name -> Family. Adding a family: one line here (and its module, configs and tests).
FAMILIES = {
    "gan": Family("genai_jax.tasks.gan", ("gan",), "GAN"),
    "vae": Family("genai_jax.tasks.vae", ("vae",), "VAE"),
    "lm": Family("genai_jax.tasks.lm", ("causal_lm", "masked_lm", "gru_lm"), "LM"),
    "cyclegan": Family("genai_jax.tasks.cyclegan", ("cyclegan",), "CycleGAN"),
    "diffusion": Family("genai_jax.tasks.diffusion", ("diffusion",), "diffusion"),
}


def task_names() -> list[str]:
  """Every ``config.task`` value some family serves, in table order."""
  return [t for f in FAMILIES.values() for t in f.tasks]


def family_name(task: str) -> str:
  """The ``FAMILIES`` key that serves ``config.task`` == ``task``; ConfigError if none does."""
  for name, family in FAMILIES.items():
    if task in family.tasks:
      return name
  raise ConfigError(f"task={task!r} is no family's task; set task to one of {task_names()}",
                    keys=("task",))


def family_module(config):
  """The module of the family that serves ``config.task`` (imported on first use)."""
  return importlib.import_module(FAMILIES[family_name(config.task)].module)


def get_task(config) -> Task:
  """Builds the task named by ``config.task``."""
  return family_module(config).make_task(config)


def model_settings(config) -> dict:
  """``config.model`` resolved against its family's registry: the chosen model's keys with its
  defaults filled in and ``dtype`` (where the family reads one) a compute dtype, None meaning
  float32. ConfigError for an unknown model or a key the model does not read."""
  return family_module(config).model_settings(config)[1]


def compute_dtype(config) -> jnp.dtype:
  """The dtype ``config``'s model computes in (``model.dtype`` converted once, by the registry;
  float32 where the family has no dtype key). Parameters always stay float32."""
  return jnp.dtype(model_settings(config).get("dtype") or jnp.float32)


def check_model(config) -> None:
  """Resolves ``config.model`` against its family's model registry without building anything:
  an unknown model, a key the chosen model does not read or a bad dtype is a ConfigError here,
  before any data is read or anything compiled."""
  model_settings(config)


def validate(config) -> None:
  """Every check a config can fail before data or compilation, each a one-line ConfigError:
  the family-free ones (``config_utils.check_common``), the model (``check_model``) and the
  agreement of the data's and the model's image size and channels."""
  config_utils.check_common(config)
  check_model(config)
  for key in ("image_size", "channels"):
    if key in config.data and key in config.model and config.data[key] != config.model[key]:
      raise ConfigError(f"data.{key}={config.data[key]} != model.{key}={config.model[key]}; set "
                        f"model.{key} and data.{key} to the same value",
                        keys=(f"data.{key}", f"model.{key}"))
