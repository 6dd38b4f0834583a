"""Device mesh, state/batch shardings and global batches (data parallel + optional FSDP).

The mesh has axes ('data', 'fsdp'). Batches are split over both axes. Parameters and optimiser
state that carry flax logical axis names (``nn.with_logical_partitioning`` boxes) are laid out by
``LOGICAL_RULES`` ('embed' over 'fsdp'); the rest are replicated when fsdp == 1, otherwise each
array's largest dimension divisible by the fsdp size is split over 'fsdp' (ZeRO-3 style: XLA
all-gathers weights where they are used).
"""

from typing import Any, Mapping

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from genai_jax.errors import ConfigError

BATCH_AXES = ("data", "fsdp")

# Logical axis name -> mesh axes. FSDP shards the model width; the other weight axes stay whole
# so each matmul needs one all-gather of its weight, not a resharding of activations.
LOGICAL_RULES = (("batch", BATCH_AXES), ("embed", "fsdp"), ("vocab", None), ("heads", None),
                 ("mlp", None), ("length", None))


def make_mesh(data: int = -1, fsdp: int = 1, devices=None) -> Mesh:
  """A ('data', 'fsdp') mesh over ``devices`` (default: all); data=-1 takes what fsdp leaves."""
  devices = list(jax.devices() if devices is None else devices)
  n = len(devices)
  if fsdp < 1 or n % fsdp:
    raise ConfigError(f"mesh.fsdp={fsdp} must divide the {n} devices; set --config.mesh.fsdp to a divisor of {n}")
  if data == -1:
    data = n // fsdp
  if data * fsdp != n:
    raise ConfigError(f"mesh data={data} x fsdp={fsdp} != {n} devices; set --config.mesh.data=-1 to use all")
  return jax.make_mesh((data, fsdp), BATCH_AXES, devices=devices,
                       axis_types=(jax.sharding.AxisType.Auto,) * 2)  # let XLA propagate shardings


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) dimension split over every device."""
  return NamedSharding(mesh, P(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def _param_spec(shape, fsdp: int) -> P:
  if fsdp == 1 or not shape:
    return P()
  dims = sorted(range(len(shape)), key=lambda i: -shape[i])
  for i in dims:
    if shape[i] % fsdp == 0 and shape[i] >= fsdp:
      spec = [None] * len(shape)
      spec[i] = "fsdp"
      return P(*spec)
  return P()


def _logical_spec(box: nn.Partitioned, mesh: Mesh, rules) -> P:
  """The mesh PartitionSpec of a boxed array; a dimension its mesh axes do not divide stays whole."""
  names = box.names
  if isinstance(box, nn.LogicallyPartitioned):
    names = tuple(nn.logical_to_mesh_axes(names, rules))
  spec = []
  for size, axes in zip(box.value.shape, names):
    n = int(np.prod([mesh.shape[a] for a in ((axes,) if isinstance(axes, str) else axes or ())]))
    spec.append(axes if axes is not None and size % n == 0 else None)
  return P(*spec)


def state_shardings(abstract_state: Any, mesh: Mesh, rules=LOGICAL_RULES) -> Any:
  """NamedShardings for a state pytree of ShapeDtypeStructs (from ``jax.eval_shape``).

  Boxed leaves (``nn.Partitioned``/``nn.LogicallyPartitioned``) keep their box, holding the
  sharding, so the result has exactly the state's tree structure.
  """
  fsdp = mesh.shape["fsdp"]
  def one(x):
    if isinstance(x, nn.Partitioned):
      return x.replace_boxed(NamedSharding(mesh, _logical_spec(x, mesh, rules)))
    return NamedSharding(mesh, _param_spec(x.shape, fsdp))
  return jax.tree.map(one, abstract_state, is_leaf=lambda x: isinstance(x, nn.Partitioned))


def check_global_batch(global_batch: int, mesh: Mesh) -> None:
  n = mesh.devices.size
  procs = jax.process_count()
  if global_batch % n:
    raise ConfigError(f"batch_size={global_batch} is not divisible by the {n} devices; "
                     f"set --config.batch_size to a multiple of {n}")
  if global_batch % procs:
    raise ConfigError(f"batch_size={global_batch} is not divisible by {procs} processes; "
                     f"set --config.batch_size to a multiple of {procs}")


def global_batch(local: Mapping[str, np.ndarray], mesh: Mesh) -> dict:
  """This process's slice of a batch (numpy, leading dim = global/process_count) -> global jax.Arrays."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local.items()}
