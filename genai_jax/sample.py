"""Write a grid of samples from a checkpoint of any image family (GAN, VAE, diffusion).

  python -m genai_jax.sample --workdir=W [--num=64] [--step=N] [--seed=0] [--out=PATH] \\
      [--steps=S] [--guidance=G] [--label=L|all] [--batch_size=64]

The run's config comes from ``<workdir>/config.json`` (``--config=FILE:PRESET`` with the run's
overrides for runs without one); the task is built through the family table
(``tasks.get_task``), the checkpoint (newest, or ``--step``) is restored as training lays it out,
and ``--num`` samples are drawn through the task (``Task.generate``: EMA weights where the family
samples from them) ``--batch_size`` at a time and written as one PNG grid, ``samples.grid_cols``
columns filled row by row, to ``--out`` (default ``<workdir>/samples/sample_step<N>.png``, with
``_label<L>``, ``_steps<S>``, ``_guidance<G>``, ``_seed<K>`` added for the flags given).

Class-conditional models (``Task.num_classes`` > 0) draw through ``Task.generate_labelled``:
``--label=L`` fills the grid with class L; without it (or with ``--label=all``) grid row r holds
class r mod num_classes, as in the training loop's grid (``--num=100``: a 10x10 grid, one row per
digit). ``--steps`` and ``--guidance`` set ``sampler.steps`` and ``sampler.guidance`` for families
with a sampler (diffusion); guidance needs a class-conditional model. Samples of other kinds have
their own tools: tokens and piano rolls ``genai_jax.sample_lm``; audio the WAVs the loop writes.
"""

import os
from typing import Optional

from absl import app, flags

from genai_jax import cli

def _define_flags() -> dict:
  """The command's flags, defined only when it runs as ``python -m genai_jax.sample``: importing
  the module (for ``sample_grid``) defines none, so it can share a process with the other
  commands, which define some of the same names (--workdir, --config)."""
  return {
      "config": cli.define_config(None, "The run's config (file:preset and overrides); default: "
                                  "<workdir>/config.json.", "see python -m genai_jax.sample --help"),
      "workdir": flags.DEFINE_string("workdir", None, "The run's workdir (holds config.json and "
                                     "checkpoints/)."),
      "num": flags.DEFINE_integer("num", 64, "Samples in the grid."),
      "step": flags.DEFINE_integer("step", None, "Checkpoint step (default: the newest)."),
      "seed": flags.DEFINE_integer("seed", 0, "Noise seed."),
      "out": flags.DEFINE_string("out", None, "PNG path (local or gs://); default: "
                                 "<workdir>/samples/sample_step<N>.png."),
      "steps": flags.DEFINE_integer("steps", None, "Sampler steps (diffusion; default: the run's "
                                    "sampler.steps)."),
      "guidance": flags.DEFINE_float("guidance", None, "Classifier-free guidance weight w, out = "
                                     "(1 + w) out(y) - w out(null) (class-conditional diffusion; "
                                     "default: the run's sampler.guidance)."),
      "label": flags.DEFINE_string("label", None, "Class-conditional models: a class index for "
                                   "the whole grid, or 'all' (the default): row r = class r."),
      "batch_size": flags.DEFINE_integer("batch_size", 64, "Samples drawn per call."),
  }


_FLAGS = {}  # filled by _define_flags when the module runs as the command

ALL = "all"


def grid_labels(num: int, num_classes: int):
  """int32 [num]: the labels of a grid where row r holds class r mod ``num_classes`` (the loop's
  layout: ``samples.grid_cols(num)`` columns, filled row by row)."""
  import numpy as np
  from genai_jax import samples
  return ((np.arange(num) // samples.grid_cols(num)) % num_classes).astype(np.int32)


def default_out(workdir: str, step: int, label=None, steps=None, guidance=None,
                seed: int = 0) -> str:
  """``<workdir>/samples/sample_step<step>[_label<L>][_steps<S>][_guidance<G>][_seed<K>].png``:
  the flags given name the file, so grids of different settings do not overwrite each other."""
  name = f"sample_step{step}"
  if label is not None:
    name += f"_label{label}"
  if steps is not None:
    name += f"_steps{steps}"
  if guidance is not None:
    name += f"_guidance{guidance:g}"
  if seed:
    name += f"_seed{seed}"
  return os.path.join(workdir, "samples", name + ".png")


def _parse_label(label: Optional[str]):
  """None, ALL or an int from ``--label``."""
  from genai_jax.errors import UserError
  if label is None or label.strip().lower() == ALL:
    return None if label is None else ALL
  try:
    return int(label)
  except ValueError:
    raise UserError(f"--label={label} is not a class index; pass an integer class or "
                    f"--label=all") from None


def _check_flags(workdir, num, steps, batch_size) -> None:
  from genai_jax.errors import UserError
  if not workdir:
    raise UserError("pass --workdir=DIR of a trained GAN, VAE or diffusion run")
  if num < 1:
    raise UserError(f"--num={num} must be at least 1")
  if steps is not None and steps < 1:
    raise UserError(f"--steps={steps} must be at least 1 sampler step")
  if batch_size < 1:
    raise UserError(f"--batch_size={batch_size} must be at least 1")


def _image_task(config, workdir: str):
  """The run's Task, checked to draw images (one line naming the right tool otherwise)."""
  from genai_jax import samples, tasks
  from genai_jax.errors import UserError
  from genai_jax.eval import sampling
  tasks.validate(config)
  task = tasks.get_task(config)
  if task.generate is None:
    raise UserError(f"{workdir} is a {config.task!r} run, whose task draws no samples of its "
                    f"own (no Task.generate); the training loop writes its grids under "
                    f"{workdir}")
  kind = sampling.sample_kind(task)  # shapes only
  if kind in (samples.Tokens, samples.PianoRoll):
    raise UserError(f"{workdir} is a {config.task!r} run, whose samples are "
                    f"{kind.__name__} (not images); sample it with python -m "
                    f"genai_jax.sample_lm --workdir={workdir}")
  if kind is not samples.Images:
    raise UserError(f"{workdir} is a {config.task!r} run, whose samples are {kind.__name__} "
                    f"(not images); the training loop writes them (WAVs and spectrograms) under "
                    f"{workdir}/samples/, and python -m genai_jax.eval --workdir={workdir} "
                    f"scores them")
  return task


def _sampler_overrides(config, workdir, task, steps, guidance) -> dict:
  """{sampler.steps, sampler.guidance} to set, checked against the run's family and model."""
  from genai_jax.errors import UserError
  given = {"--steps": steps, "--guidance": guidance}
  for flag, value in given.items():
    if value is not None and "sampler" not in config:
      raise UserError(f"{flag} applies to diffusion only (families with a sampler); {workdir} "
                      f"is a {config.task!r} run: drop {flag}")
  if guidance is not None and guidance != 0.0 and not task.num_classes:
    raise UserError(f"--guidance={guidance:g} needs a class-conditional model (guidance mixes "
                    f"the class's and the null label's outputs); {workdir} holds an "
                    f"unconditional one: drop --guidance")
  out = {}
  if steps is not None:
    out["sampler.steps"] = int(steps)
  if guidance is not None:
    out["sampler.guidance"] = float(guidance)
  return out


def _labels(task, label, num: int, workdir: str):
  """int32 [num] labels to draw for a class-conditional task, else None."""
  import numpy as np
  from genai_jax.errors import UserError
  if not task.num_classes:
    if label is not None:
      raise UserError(f"--label={label}: {workdir} holds an unconditional model (no classes); "
                      f"drop --label")
    return None
  if label is None or label == ALL:
    return grid_labels(num, task.num_classes)
  if not 0 <= label < task.num_classes:
    raise UserError(f"--label={label} is not a class of this model; pass --label in "
                    f"[0, {task.num_classes}) or --label=all")
  return np.full((num,), label, np.int32)


def _draw_labelled(task, state, labels, seed: int, batch_size: int, mesh):
  """Images of ``labels`` (int32 [num]) drawn ``batch_size`` at a time through
  ``task.generate_labelled`` with keys ``fold_in(PRNGKey(seed), i)``; the last call padded to
  the same size (one compilation), its extra samples dropped."""
  import jax
  import numpy as np
  from genai_jax import samples
  from genai_jax.train import sharding
  draw = jax.jit(task.generate_labelled, out_shardings=sharding.replicated(mesh))
  key = jax.random.PRNGKey(seed)
  size = min(len(labels), batch_size)
  parts = []
  for i, start in enumerate(range(0, len(labels), size)):
    part = labels[start:start + size]
    padded = np.pad(part, (0, size - len(part)))
    parts.append(samples.take(jax.device_get(draw(state, jax.random.fold_in(key, i), padded)),
                              len(part)))
  return samples.concatenate(parts)


def sample_grid(workdir: str, num: int = 64, step: Optional[int] = None, seed: int = 0,
                out: Optional[str] = None, steps: Optional[int] = None,
                guidance: Optional[float] = None, label: Optional[str] = None,
                batch_size: int = 64, config=None) -> tuple[str, int, Optional[object]]:
  """Writes a PNG grid of ``num`` samples of ``workdir``'s checkpoint (the module docstring) under
  ``config`` (default: the run's config.json); returns (path, checkpoint step, int32 [num] labels
  drawn or None). Every mistake is a one-line ``UserError`` raised before anything is written or
  compiled."""
  from genai_jax import config_utils, outputs, samples, tasks
  from genai_jax.errors import ConfigError, UserError
  from genai_jax.eval import sampling
  from genai_jax.train import sharding
  from genai_jax.train import state as state_lib
  from genai_jax.train import workdir as workdir_lib
  _check_flags(workdir, num, steps, batch_size)
  label = _parse_label(label)
  config = config or workdir_lib.load_config(workdir)
  task = _image_task(config, workdir)
  overrides = _sampler_overrides(config, workdir, task, steps, guidance)
  labels = _labels(task, label, num, workdir)
  if overrides:
    config_utils.override(config, overrides)
    try:
      task = tasks.get_task(config)
    except ConfigError as e:  # e.g. more steps than a DDPM schedule has
      flag = "--steps" if "sampler.steps" in e.keys else "--guidance"
      raise UserError(f"{flag} does not fit this run: {e}") from None
  state_lib.check_has_checkpoints(workdir, step)  # before any compilation; creates nothing
  mesh = sharding.make_mesh(config.mesh.data, config.mesh.fsdp)
  step, state = state_lib.restore(config, workdir, step, mesh, task=task)
  if labels is None:
    drawn = sampling.generate(task, state, num, seed, min(num, batch_size),
                              sampler=sampling.make_sampler(task, mesh))
  else:
    drawn = _draw_labelled(task, state, labels, seed, batch_size, mesh)
  path = out or default_out(workdir, step, label, steps, guidance, seed)
  grid = outputs.image_grid(drawn.images, cols=samples.grid_cols(num))
  try:
    outputs.save_png(grid, path)
  except OSError as e:
    raise UserError(f"cannot write --out={path} ({e.strerror or e}); pass a PNG path you can "
                    f"write to") from None
  return path, step, labels


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  cli.setup_run()
  from genai_jax import errors
  f = {name: holder.value for name, holder in _FLAGS.items()}
  with errors.friendly():
    path, step, labels = sample_grid(
        f["workdir"], f["num"], f["step"], f["seed"], f["out"], f["steps"], f["guidance"],
        f["label"], f["batch_size"], f["config"])
  rows = "" if labels is None or len(set(labels.tolist())) < 2 else ", row r = class r"
  print(f"wrote {path} ({f['num']} samples of step {step}{rows})", flush=True)


if __name__ == "__main__":
  _FLAGS.update(_define_flags())
  app.run(main, flags_parser=cli.flags_parser("see python -m genai_jax.sample --help"))
