"""Shared entry point: ``--config`` (ml_collections file with ``:preset``) and ``--workdir``."""

import os

from absl import app, flags

from genai_jax import cli
from genai_jax import multihost

_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and samples "
                               "(local or gs://); rerunning with the same one resumes.")


def run(default_config: str, after=None) -> None:
  """Parses the flags and trains, with the generator metrics of ``config.eval_gen`` handed to the
  loop as its hook; ``after(config, workdir)``, when given, runs once training has finished (e.g.
  an experiment's own evaluation of the final checkpoint)."""
  multihost.guard_startup()  # first: a stop at any point before the first step ends cleanly
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  hint = f"The keys and presets are listed in {default_config}; pass them as --config.KEY=VALUE"
  config_flag = cli.define_config(os.path.join(root, default_config),
                                  "Config file, optionally with :preset.", hint)

  def main(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments {argv[1:]}; pass settings as --config.KEY=VALUE")
    from genai_jax import errors
    cli.setup_run()
    config = config_flag.value
    name = os.path.splitext(os.path.basename(default_config))[0]
    workdir = _WORKDIR.value or os.path.join("workdirs", name)
    with errors.friendly():
      from genai_jax.eval import runner
      from genai_jax.train import distributed
      from genai_jax.train.loop import train_and_evaluate
      distributed.initialize()  # before any JAX computation; no-op on one machine
      multihost.phase("connected")
      train_and_evaluate(config, workdir, eval_gen_hook=runner.eval_gen_hook)
      if after is not None:
        after(config, workdir)

  app.run(main, flags_parser=cli.flags_parser(hint))
