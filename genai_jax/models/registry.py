"""Models looked up by name: one registry (a dict name -> ``Entry``) per family.

An entry declares the ``config.model`` keys its model reads, with their defaults, and a builder
that takes the resolved settings and returns the module(s). ``settings`` resolves a config
against its entry and refuses any model key that is set (not None) but not read by the chosen
model, so a setting meant for another model is an error instead of being silently ignored; it
also turns ``model.dtype`` into a compute dtype, the one place that conversion happens. Shared
keys (image size, channels, latent size, dtype) apply to every model of the family. Adding a
model is one registry entry (and, so the command line can set its keys, a ``placeholder`` per
new key in the family's configs).
"""

import dataclasses
from typing import Any, Callable, Mapping, Optional, Sequence

import jax.numpy as jnp

from genai_jax.errors import ConfigError

# Compute dtypes a model may run in; parameters (and BatchNorm statistics) always stay float32.
DTYPES = {"float32": None, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def compute_dtype(name: str) -> Optional[Any]:
  """``config.model.dtype`` -> the compute dtype to give flax modules (None for float32)."""
  if name not in DTYPES:
    raise ConfigError(f"unknown model.dtype {name!r}; set model.dtype to one of "
                      f"{list(DTYPES)}", keys=("model.dtype",))
  return DTYPES[name]


@dataclasses.dataclass(frozen=True)
class Entry:
  """One model of a family.

  Attributes:
    build: settings dict (shared keys plus this entry's keys, defaults filled in, ``dtype`` already
      turned into a compute dtype or None) -> module or tuple of modules.
    keys: the model-specific keys this model reads, with their defaults.
  """
  build: Callable[[dict], Any]
  keys: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def settings(family: str, registry: Mapping[str, Entry], model_config, shared: Sequence[str],
             name: Optional[str] = None, name_key: str = "model.name") -> tuple[Entry, dict]:
  """Resolves ``model_config`` against ``registry``, for the model ``name`` (default:
  ``model_config.name``; ``name_key`` is the config key a user sets to choose it).

  Returns (entry, settings). Raises ConfigError for an unknown name or for a key that is set but
  not read by the chosen model.
  """
  name = model_config["name"] if name is None else name
  if name not in registry:
    raise ConfigError(f"unknown {family} model {name!r}; set {name_key} to one of "
                      f"{sorted(registry)}", keys=(name_key,))
  entry = registry[name]
  resolved = dict(entry.keys)
  for key, value in model_config.items():
    if key == "name":
      continue
    if key in shared or key in entry.keys:
      if value is not None:
        resolved[key] = tuple(value) if isinstance(value, list) else value
    elif value is not None:
      reads = sorted(set(entry.keys) | set(shared))
      raise ConfigError(f"model.{key}={value!r} does not apply to the {family} model {name!r} "
                        f"(it reads {', '.join(reads)}); drop the override or choose a model "
                        f"that reads it")
  if "dtype" in resolved:
    resolved["dtype"] = compute_dtype(resolved["dtype"])
  return entry, resolved


def all_keys(registry: Mapping[str, Entry], shared: Sequence[str]) -> set[str]:
  """Every model key a family's config may hold (for tests that keep configs and registry in step)."""
  keys = {"name", *shared}
  for entry in registry.values():
    keys |= set(entry.keys)
  return keys
