"""Creating and restoring a sharded train state: the one public way to get a state onto a mesh.

The loop, the evaluation and sampling CLIs, the benchmarks, the AOT report and the tests all go
through these functions, so they lay out and compile exactly what training does:

  * ``sharded_init(task, mesh)``: the state's abstract shapes (with shardings) and a jitted,
    sharded ``init`` (``jax.eval_shape`` -> shardings -> ``jax.jit(init, out_shardings=...)``);
  * ``compile_train_step(task, mesh, shardings)``: the jitted train step, state donated;
  * ``restore(config, workdir)``: a workdir's checkpoint restored into those shardings.
"""

import dataclasses
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
  return jax.jit(task.train_step,
                 in_shardings=(state_shardings, sharding.batch_sharding(mesh)),
                 out_shardings=(state_shardings, sharding.replicated(mesh)),
                 donate_argnums=0)


def restore(config, workdir: str, step: Optional[int] = None, mesh=None, task=None):
  """(step, state) of ``workdir``'s checkpoint ``step`` (default: the newest), laid out as the
  training run of ``config`` lays it out on ``mesh`` (default: ``config.mesh``). Raises
  ``CheckpointError`` (one line) when the workdir has no checkpoint or it cannot be read."""
  import os
  from genai_jax import tasks
  from genai_jax.errors import CheckpointError
  from genai_jax.train import checkpoint as ckpt_lib
  directory = os.path.join(workdir, "checkpoints")
  if "://" not in workdir and not os.path.isdir(directory):  # never create a typo'd workdir
    raise CheckpointError(f"no checkpoints in {directory}; pass the --workdir of a run that "
                          f"saved one")
  mesh = mesh or sharding.make_mesh(config.mesh.data, config.mesh.fsdp)
  spec = sharded_init(task or tasks.get_task(config), mesh)
  checkpoints = ckpt_lib.Checkpoints(workdir, create=False)
  try:
    step = checkpoints.latest_step() if step is None else step
    if step is None:
      raise CheckpointError(f"no checkpoints in {checkpoints.directory}; pass the --workdir of a "
                            f"run that saved one")
    state = checkpoints.restore(spec.abstract, step)
  finally:
    checkpoints.close()
  return step, state
