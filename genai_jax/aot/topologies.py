"""Accelerator chips and the slices/nodes the AOT report compiles for: one table, spec-sheet figures.

Per chip (one JAX device; a TPU v4/v5p chip is one "megacore" device):

  chip            HBM        bf16 dense    float32 (JAX default)  HBM bandwidth   source
  TPU v4          32 GiB     275 TFLOP/s   275 (bf16 MXU passes)  1,200 GB/s      [v4]
  TPU v5e         16 GiB     197 TFLOP/s   197 (bf16 MXU passes)    819 GB/s      [v5e]
  TPU v5p         95 GiB     459 TFLOP/s   459 (bf16 MXU passes)  2,765 GB/s      [v5p]
  TPU v6e         32 GiB     918 TFLOP/s   918 (bf16 MXU passes)  1,640 GB/s      [v6e]
  H100 SXM 80GB   79.1 GiB   989 TFLOP/s   495 (TF32 tensor)      3,350 GB/s      [h100]

  [v4]   https://cloud.google.com/tpu/docs/v4   (system architecture: chip specifications)
  [v5e]  https://cloud.google.com/tpu/docs/v5e
  [v5p]  https://cloud.google.com/tpu/docs/v5p
  [v6e]  https://cloud.google.com/tpu/docs/v6e
  [h100] NVIDIA H100 Tensor Core GPU datasheet (SXM5 column; the sparse figures halved to dense:
         BF16 1,979 -> 989 TFLOP/s, TF32 989 -> 495); usable memory 84,942,979,072 bytes as the
         driver reports it (specs/h100_sxm.txtpb).

float32: at JAX's default matmul precision (``jax.default_matmul_precision`` unset) a TPU runs a
float32 matmul or convolution as one bfloat16 pass on the MXU, and XLA:GPU on Hopper uses TF32
tensor cores, so those are the float32 peaks a default-precision train step can approach
(``precision=HIGHEST`` is several times slower on both). Peaks are matmul peaks: steps dominated
by elementwise work stay far below them, which the HBM-bandwidth bound of the roofline catches.
"""

import dataclasses
import functools
import os
from typing import Optional

GiB = 2**30


@dataclasses.dataclass(frozen=True)
class Chip:
  """One accelerator device: its memory, peak FLOP/s (dense) and HBM bandwidth (bytes/s)."""
  name: str
  hbm_bytes: int
  peak_bf16: float
  peak_fp32: float
  hbm_bandwidth: float

  def peak(self, dtype: str) -> float:
    """Peak FLOP/s for a compute dtype name ('bfloat16' or 'float32')."""
    return self.peak_bf16 if dtype == "bfloat16" else self.peak_fp32


CHIPS = {
    "v4": Chip("TPU v4", 32 * GiB, 275e12, 275e12, 1200e9),
    "v5e": Chip("TPU v5e", 16 * GiB, 197e12, 197e12, 819e9),
    "v5p": Chip("TPU v5p", 95 * GiB, 459e12, 459e12, 2765e9),
    "v6e": Chip("TPU v6e", 32 * GiB, 918e12, 918e12, 1640e9),
    "h100": Chip("NVIDIA H100 SXM 80GB", 84_942_979_072, 989e12, 495e12, 3350e9),
}

# jax Device.device_kind -> CHIPS key (for the benchmark's MFU on whatever device JAX sees).
DEVICE_KINDS = {"TPU v4": "v4", "TPU v5 lite": "v5e", "TPU v5e": "v5e", "TPU v5": "v5p",
                "TPU v5p": "v5p", "TPU v6 lite": "v6e", "TPU v6e": "v6e",
                "NVIDIA H100 80GB HBM3": "h100"}


@dataclasses.dataclass(frozen=True)
class Topology:
  """A slice or node to compile for.

  Attributes:
    name: what ``--topology`` takes (Cloud TPU accelerator-type names: v4-8 = 4 chips).
    chip: key of ``CHIPS``.
    platform: 'tpu' or 'cuda' (``get_topology_desc``'s platform).
    topology_name: libtpu's ``generation:XxYxZ`` (TPU) or the GPU model (cuda).
    kwargs: the rest of ``get_topology_desc``'s arguments. ``chips_per_host_bounds`` decides the
      host count; v4 and v5p need ``chip_config_name='megacore'`` or a chip counts as 2 devices.
    devices: expected device count (checked).
    hosts: expected host (process) count (checked).
    cost_reference: for backends whose compile reports no cost analysis (XLA:GPU), the TPU
      topology with the same device count whose compile of the same step gives FLOPs and bytes.
  """
  name: str
  chip: str
  platform: str
  topology_name: str
  kwargs: tuple
  devices: int
  hosts: int
  cost_reference: Optional[str] = None


def _tpu(name, chip, shape, per_host, megacore, devices, hosts):
  kw = (("chips_per_host_bounds", per_host), ("wrap", (False,) * 3))
  if megacore:
    kw += (("chip_config_name", "megacore"),)
  return Topology(name, chip, "tpu", f"{chip}:{shape}", kw, devices, hosts)


TOPOLOGIES = {t.name: t for t in (
    _tpu("v4-8", "v4", "2x2x1", (2, 2, 1), True, 4, 1),
    _tpu("v4-16", "v4", "2x2x2", (2, 2, 1), True, 8, 2),
    _tpu("v4-32", "v4", "2x2x4", (2, 2, 1), True, 16, 4),
    _tpu("v4-64", "v4", "2x4x4", (2, 2, 1), True, 32, 8),
    _tpu("v5e-4", "v5e", "2x2", (2, 2, 1), False, 4, 1),
    _tpu("v5e-8", "v5e", "2x4", (2, 4, 1), False, 8, 1),  # the single-host v5litepod-8
    _tpu("v5e-16", "v5e", "4x4", (2, 2, 1), False, 16, 4),
    _tpu("v5e-32", "v5e", "4x8", (2, 2, 1), False, 32, 8),
    _tpu("v5p-8", "v5p", "2x2x1", (2, 2, 1), True, 4, 1),
    _tpu("v5p-16", "v5p", "2x2x2", (2, 2, 1), True, 8, 2),
    _tpu("v5p-32", "v5p", "2x2x4", (2, 2, 1), True, 16, 4),
    _tpu("v6e-8", "v6e", "2x4", (2, 4, 1), False, 8, 1),
    _tpu("v6e-16", "v6e", "4x4", (2, 2, 1), False, 16, 4),
    Topology("h100x8", "h100", "cuda", "h100", (("topology", "1x1x8"),), 8, 1,
             cost_reference="v5p-16"),  # 8 devices with 95 GiB each: fits what an H100 fits
)}


def lookup(name: str) -> Topology:
  """The topology called ``name``; ``ConfigError`` listing the valid names otherwise."""
  from genai_jax.errors import ConfigError
  if name not in TOPOLOGIES:
    raise ConfigError(f"unknown topology {name!r}; use one of: {', '.join(TOPOLOGIES)}")
  return TOPOLOGIES[name]


@functools.lru_cache(maxsize=None)
def _gpu_target_config(chip: str) -> str:
  with open(os.path.join(os.path.dirname(__file__), "specs", f"{chip}_sxm.txtpb")) as f:
    return f.read()


@functools.lru_cache(maxsize=None)
def devices(name: str) -> tuple:
  """Compile-only ``jax.Device``s of topology ``name`` (no accelerator needed).

  TPU topologies need libtpu (``pip install -e '.[aot]'``); GPU ones the CUDA plugin (same extra)
  and ``JAX_PLATFORMS=cpu`` when no GPU is attached. Raises ``UserError`` naming the install.
  """
  from jax.experimental import topologies as jax_topologies
  from genai_jax.errors import UserError
  topo = lookup(name)
  # Compiling touches no TPU, so let several processes (pytest workers, two reports, a run
  # training on this host) load libtpu at once; without this its lockfile admits only one.
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
  kwargs = dict(topo.kwargs)
  if topo.platform == "cuda":
    kwargs["target_config"] = _gpu_target_config(topo.chip)
  try:
    found = jax_topologies.get_topology_desc(topology_name=topo.topology_name,
                                             platform=topo.platform, **kwargs).devices
  except Exception as e:  # no libtpu / CUDA plugin: jax raises RuntimeError or JaxRuntimeError
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise UserError(f"cannot describe topology {name} ({first}); install the compile-only "
                    f"plugins with `pip install -e '.[aot]'`") from e
  hosts = len({d.process_index for d in found})
  if (len(found), hosts) != (topo.devices, topo.hosts):  # a libtpu that reads the kwargs differently
    raise RuntimeError(f"topology {name}: expected {topo.devices} devices on {topo.hosts} hosts, "
                       f"libtpu gave {len(found)} on {hosts}")
  return tuple(found)
