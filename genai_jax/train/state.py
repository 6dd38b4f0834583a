"""Creating and restoring a sharded train state: the one public way to get a state onto a mesh.

The loop, the evaluation and sampling CLIs, the benchmarks, the AOT report and the tests all go
through these functions, so they lay out and compile exactly what training does:

  * ``sharded_init(task, mesh)``: the state's abstract shapes (with shardings) and a jitted,
    sharded ``init`` (``jax.eval_shape`` -> shardings -> ``jax.jit(init, out_shardings=...)``);
  * ``compile_train_step(task, mesh, shardings)``: the jitted train step, state donated;
  * ``restore(config, workdir, task=...)``: a workdir's checkpoint restored into those shardings.
"""

import dataclasses
import functools
from typing import Any, Callable, Optional

import jax

from genai_jax.train import sharding


@dataclasses.dataclass(frozen=True)
class ShardedInit:
  """A task's state laid out on a mesh.

  Attributes:
    abstract: the state pytree as ``jax.ShapeDtypeStruct`` leaves carrying ``.sharding`` (what
      ``Checkpoints.restore`` and ``jit(...).lower`` take).
    shardings: the same tree of ``NamedSharding`` (flax ``Partitioned`` boxes kept).
    init: jitted ``rng uint32[2] -> state``, each leaf created directly in its sharding.
  """
  abstract: Any
  shardings: Any
  init: Callable[[jax.Array], Any]


def abstract_with_shardings(abstract_state: Any, shardings: Any) -> Any:
  """ShapeDtypeStructs of ``abstract_state`` carrying the matching leaf of ``shardings``."""
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                      abstract_state, shardings)


def sharded_init(task, mesh) -> ShardedInit:
  """Shapes only (no FLOPs, no memory) until ``init`` is called."""
  abstract = jax.eval_shape(task.init, jax.random.PRNGKey(0))
  shardings = sharding.state_shardings(abstract, mesh)
  return ShardedInit(abstract=abstract_with_shardings(abstract, shardings), shardings=shardings,
                     init=jax.jit(task.init, out_shardings=shardings))


def compile_train_step(task, mesh, state_shardings):
  """jit(train_step) with the state donated and sharded, the batch split over all devices and
  the metrics replicated (readable on every process)."""
  @functools.wraps(task.train_step)
  def train_step(state, batch):
    with sharding.use_mesh(mesh):  # FSDP: sharding.gathered and activation constraints
      return task.train_step(state, batch)
  return jax.jit(train_step,
                 in_shardings=(state_shardings, sharding.batch_sharding(mesh)),
                 out_shardings=(state_shardings, sharding.replicated(mesh)),
                 donate_argnums=0)


def check_has_checkpoints(workdir: str, step: Optional[int] = None) -> None:
  """Raises ``CheckpointError`` (one line, nothing created) unless ``workdir`` holds a
  checkpoint (``step``, if given). Cheap: a directory listing."""
  import os
  from genai_jax import storage
  from genai_jax.errors import CheckpointError
  directory = os.path.join(workdir, "checkpoints")
  steps = sorted(int(n) for n in storage.listdir(directory)
                 if n.isdigit()) if storage.isdir(directory) else []
  if not steps:
    raise CheckpointError(f"no checkpoints in {directory}; pass the --workdir of a run that "
                          f"saved one")
  if step is not None and step not in steps:
    raise CheckpointError(f"no checkpoint {step} in {directory}; it has steps {steps}")


def restore(config, workdir: str, step: Optional[int] = None, mesh=None, *, task):
  """(step, state) of ``workdir``'s checkpoint ``step`` (default: the newest), laid out as the
  training run of ``config`` lays it out on ``mesh`` (default: ``config.mesh``); ``task`` is
  that run's (``tasks.get_task(config)``). Raises ``CheckpointError`` (one line) when the
  workdir has no checkpoint or it cannot be read; creates nothing."""
  from genai_jax.train import checkpoint as ckpt_lib
  check_has_checkpoints(workdir, step)
  mesh = mesh or sharding.make_mesh(config.mesh.data, config.mesh.fsdp)
  spec = sharded_init(task, mesh)
  checkpoints = ckpt_lib.Checkpoints(workdir, create=False)
  try:
    step = checkpoints.latest_step() if step is None else step
    state = checkpoints.restore(spec.abstract, step)
  finally:
    checkpoints.close()
  return step, state


# State fields that hold what a model has learnt (copied by fine-tuning); the rest (optimiser
# moments, step, rng) start fresh unless ``init_from_keep_optimizer`` asks to keep them.
_WEIGHT_SUFFIXES = ("params", "batch_stats")
_OPTIMIZER_SUFFIXES = ("opt_state",)


def parse_init_from(value: str) -> tuple[str, Optional[int]]:
  """'WORKDIR' or 'WORKDIR:STEP' -> (workdir, step or None); gs:// paths keep their colon."""
  head, sep, tail = value.rpartition(":")
  if sep and tail.isdigit() and head and not head.endswith(":/"):
    return head, int(tail)
  return value, None


def _copy_fields(fresh, source, suffixes) -> Any:
  """``fresh`` with every dataclass field whose name ends in one of ``suffixes`` taken from
  ``source`` (same tree structure and shapes, laid out in ``fresh``'s shardings)."""
  from genai_jax.errors import ConfigError
  updates = {}
  for field in dataclasses.fields(fresh):
    if not field.name.endswith(suffixes):
      continue
    dst, src = getattr(fresh, field.name), getattr(source, field.name)
    dst_paths = jax.tree_util.tree_flatten_with_path(dst)[0]
    src_leaves = dict((jax.tree_util.keystr(p), x)
                      for p, x in jax.tree_util.tree_flatten_with_path(src)[0])
    for path, leaf in dst_paths:
      key = jax.tree_util.keystr(path)
      if key not in src_leaves or src_leaves[key].shape != leaf.shape:
        got = "missing" if key not in src_leaves else str(tuple(src_leaves[key].shape))
        raise ConfigError(f"init_from: {field.name}{key} is {got} in the source run but "
                          f"{tuple(leaf.shape)} here; fine-tune with the source's model "
                          f"settings (see its config.json)")
    updates[field.name] = jax.tree.map(
        lambda d, s: jax.device_put(s.astype(d.dtype), d.sharding), dst,
        jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(dst),
                                     [src_leaves[jax.tree_util.keystr(p)] for p, _ in dst_paths]))
  return fresh.replace(**updates)


def initial_state(config, spec: ShardedInit, mesh, *, get_task: Callable) -> Any:
  """A fresh state for ``config`` (seeded by ``config.seed``), or, with
  ``config.init_from='WORKDIR[:STEP]'``, one whose weights (every ``*params`` and
  ``*batch_stats`` field) come from that run's checkpoint: fine-tuning. The step counts from 0;
  the optimiser state (moments, schedule position) starts fresh unless
  ``config.init_from_keep_optimizer``. ``get_task``: config -> Task (``tasks.get_task``), for the
  source run, whose data and model may differ from this one's."""
  from genai_jax.errors import ConfigError
  from genai_jax.train import workdir as workdir_lib
  fresh = spec.init(jax.random.PRNGKey(config.seed))
  if not config.get("init_from", ""):
    return fresh
  src_dir, step = parse_init_from(config.init_from)
  src_config = workdir_lib.load_config(src_dir)
  if src_config.task != config.task:
    raise ConfigError(f"init_from={config.init_from} is a {src_config.task!r} run; this is a "
                      f"{config.task!r} run; fine-tune from a run of the same task")
  step, source = restore(src_config, src_dir, step, mesh, task=get_task(src_config))
  suffixes = _WEIGHT_SUFFIXES + (_OPTIMIZER_SUFFIXES if config.get("init_from_keep_optimizer",
                                                                   False) else ())
  state = _copy_fields(fresh, source, suffixes)
  if jax.process_index() == 0:
    print(f"fine-tuning from {src_dir} step {step} ({', '.join(suffixes)} copied)", flush=True)
  return state
