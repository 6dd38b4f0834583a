"""Shared entry point: ``--config`` (ml_collections file with ``:preset``) and ``--workdir``."""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and samples "
                               "(local or gs://); rerunning with the same one resumes.")


def run(default_config: str) -> None:
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  config_flag = config_flags.DEFINE_config_file(
      "config", os.path.join(root, default_config), "Config file, optionally with :preset.",
      lock_config=True)

  def main(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments {argv[1:]}; pass settings as --config.KEY=VALUE")
    from genai_jax import errors
    if not flags.FLAGS["verbosity"].present:  # Orbax logs every save at INFO; --verbosity=0 shows it
      logging.set_verbosity(logging.WARNING)
    config = config_flag.value
    name = os.path.splitext(os.path.basename(default_config))[0]
    workdir = _WORKDIR.value or os.path.join("workdirs", name)
    with errors.friendly():
      from genai_jax.train import distributed
      from genai_jax.train.loop import train_and_evaluate
      distributed.initialize()  # before any JAX computation; no-op on one machine
      train_and_evaluate(config, workdir)

  def parse_flags(argv):
    try:
      return flags.FLAGS(argv)
    except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
      # e.g. --config.model.widht=3: one line naming the key, not a parser traceback.
      msg = " ".join(str(e).replace("\\n", " ").replace("\n", " ").replace("\\", "").split()).strip("'\"")
      print(f"error: bad flag or config override: {msg}. The keys and presets are listed in "
            f"{default_config}; pass them as --config.KEY=VALUE", file=sys.stderr)
      sys.exit(2)

  app.run(main, flags_parser=parse_flags)
