"""A run's workdir: checked before any slow set-up, and remembering the run's config.

``<workdir>/config.json`` holds the resolved config of the latest start of the run, so later
commands (``python -m genai_jax.eval``, ``genai_jax.sample_lm``, fine-tuning from the run) need
only ``--workdir``. Resuming checks the new config against it: the settings that shape the
state (task, model, data shapes, optimiser kind) must match; schedules, step counts, logging and
evaluation settings may change.
"""

import json
import os
from typing import Optional

import ml_collections

from genai_jax import storage
from genai_jax.errors import CheckpointError, ConfigError, UserError

CONFIG_FILE = "config.json"

# Keys whose change makes a checkpoint unusable (different arrays), as dotted prefixes. The rest
# (num_steps, learning rates, eval/log cadence, data paths) may change between resumes.
STATE_KEYS = ("task", "model", "optimizer.name", "data.name", "data.image_size",
              "data.channels", "data.seq_len", "data.vocab", "data.vocab_size", "data.kind")


def check_writable(workdir: str) -> None:
  """Raises one-line ``UserError`` unless ``workdir`` is (or can be made) a writable directory.
  Creates it (a training run needs it anyway)."""
  if storage.is_remote(workdir):
    storage.check_reachable(workdir)  # gs:// support and credentials; a bucket's permissions
    return  # are checked by the first write (an object store has no cheap permission test)
  path = os.path.abspath(workdir)
  probe = path
  while not os.path.exists(probe):
    probe = os.path.dirname(probe)
  if not os.path.isdir(probe):
    where = "is a file" if probe == path else f"is inside the file {probe}"
    raise UserError(f"--workdir={workdir} {where}, not a directory; pass a directory path")
  try:
    os.makedirs(path, exist_ok=True)
    test = os.path.join(path, f".write_test.{os.getpid()}")  # per process: hosts share it
    with open(test, "w") as f:
      f.write("ok")
    os.remove(test)
  except OSError as e:
    raise UserError(f"cannot write to --workdir={workdir} ({e.strerror}); pass a --workdir you "
                    f"can write to") from None


def _flat(config, prefix="") -> dict:
  out = {}
  for k, v in (config.items() if hasattr(config, "items") else []):
    key = f"{prefix}{k}"
    if isinstance(v, (dict, ml_collections.ConfigDict)):
      out.update(_flat(v, key + "."))
    else:
      out[key] = list(v) if isinstance(v, tuple) else v
  return out


def _to_dict(config) -> dict:
  return json.loads(config.to_json()) if hasattr(config, "to_json") else dict(config)


def load_config(workdir: str, required: bool = True) -> Optional[ml_collections.ConfigDict]:
  """The config ``workdir``'s run recorded (locked ConfigDict), or None if it has none and not
  ``required``."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not storage.exists(path):
    if not required:
      return None
    what = ("no such directory" if not storage.is_remote(workdir) and not os.path.isdir(workdir)
            else f"no {CONFIG_FILE} in it")
    raise CheckpointError(f"--workdir={workdir}: {what}; pass the workdir of a training run, or "
                          f"its --config=FILE:PRESET")
  try:
    data = json.loads(storage.read_text(path))
  except json.JSONDecodeError as e:
    raise CheckpointError(f"{path} is not valid JSON ({e}); pass --config=FILE:PRESET with "
                          f"the run's settings") from None
  config = ml_collections.ConfigDict(data)
  config.lock()
  return config


def differing_state_keys(saved, config) -> dict:
  """{dotted key under ``STATE_KEYS``: (saved value, new value)} for the keys whose values differ
  between two configs (a key present on one side only counts, as '<unset>')."""
  a, b = _flat(_to_dict(saved)), _flat(_to_dict(config))
  def relevant(k):
    return any(k == p or k.startswith(p + ".") for p in STATE_KEYS)
  return {k: (a.get(k, "<unset>"), b.get(k, "<unset>")) for k in sorted(set(a) | set(b))
          if relevant(k) and a.get(k, "<unset>") != b.get(k, "<unset>")}


def check_resume(config, workdir: str) -> None:
  """Raises ``ConfigError`` naming the differing keys if ``workdir`` holds a run whose state
  cannot be restored under ``config``."""
  saved = load_config(workdir, required=False)
  diff = differing_state_keys(saved, config) if saved is not None else {}
  if diff:
    shown = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in list(diff.items())[:6])
    more = f" and {len(diff) - 6} more" if len(diff) > 6 else ""
    raise ConfigError(f"--workdir={workdir} holds a run with a different model or data "
                      f"({shown}{more}); pass a new --workdir, or drop those overrides to resume")


def save_config(config, workdir: str) -> None:
  """Writes ``config`` as ``<workdir>/config.json`` (process 0 only; replaces the old one)."""
  import jax
  if jax.process_index() != 0:
    return
  storage.write_text_atomic(json.dumps(_to_dict(config), indent=2, sort_keys=True) + "\n",
                            os.path.join(workdir, CONFIG_FILE))
