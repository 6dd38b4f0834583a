"""Compile a config's train step for an accelerator topology from shapes alone, and report its cost.

``compile_step(config, 'v4-32')`` builds what ``train_and_evaluate`` builds (``tasks.get_task``,
``sharding.make_mesh`` over the topology's compile-only devices, ``state.sharded_init``,
``state.compile_train_step``: same shardings, same donation) and lowers it with the state's
abstract shapes and the global batch's (``specs.batch_spec``), so no parameter is
initialised and no data is read. The result, a ``StepReport``, holds XLA's per-device memory
and cost analyses, the collectives in the compiled program, and the roofline bound on step time.
"""

import copy
import dataclasses
import math
import re
from typing import Optional

from genai_jax.aot import topologies
from genai_jax.aot.topologies import GiB

_OOM_PATTERNS = (  # XLA:TPU's out-of-memory messages: (needed, available) with a unit letter
    re.compile(r"\(([\d.]+)([KMGT]?)\) exceeds available HBM \(([\d.]+)([KMGT]?)\)"),
    re.compile(r"Used ([\d.]+)([KMGT]?) of ([\d.]+)([KMGT]?) hbm"),
)
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
# An HLO instruction's opcode (not its %name): "= f32[...] all-reduce(" or "all-gather-start(".
_COLLECTIVE = re.compile(r"(?<![%\w.-])(all-reduce|all-gather|reduce-scatter)(?:-start)?\(")
COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter")


@dataclasses.dataclass
class StepReport:
  """What one AOT compile of a train step says. Sizes are bytes per device; FLOPs per device and
  step; ``None`` where the backend does not report it."""
  topology: topologies.Topology
  chip: topologies.Chip
  mesh: dict  # axis name -> size
  hosts: int
  batch_size: int  # global
  items_per_step: int  # batch_size * task.items_per_example
  unit: str  # task.unit: images, tokens, ...
  dtype: str  # compute dtype (config.model.dtype, default float32)
  argument_bytes: Optional[int] = None
  output_bytes: Optional[int] = None
  alias_bytes: Optional[int] = None
  temp_bytes: Optional[int] = None
  code_bytes: Optional[int] = None
  flops: Optional[float] = None
  bytes_accessed: Optional[float] = None
  cost_source: str = ""  # where FLOPs/bytes come from when not from this compile
  collectives: dict = dataclasses.field(default_factory=dict)
  windowed: dict = dataclasses.field(default_factory=dict)  # count_windowed_einsums
  while_loops: int = 0  # while instructions in the compiled step: their bodies are counted once
  hand_flops: Optional[float] = None  # transformers: 6 N + 12 L T d per token, per device
  oom: Optional[str] = None  # the compiler's out-of-memory message
  needed_bytes: Optional[float] = None  # what the compiler said it needed, when it did not fit

  @property
  def devices(self) -> int:
    return math.prod(self.mesh.values())

  @property
  def peak_bytes(self) -> Optional[int]:
    """Arguments + outputs - donated (aliased) buffers + temporaries + program."""
    if self.argument_bytes is None:
      return None
    return (self.argument_bytes + self.output_bytes - self.alias_bytes + self.temp_bytes +
            self.code_bytes)

  @property
  def fits(self) -> bool:
    return self.oom is None and self.peak_bytes is not None and self.peak_bytes <= self.chip.hbm_bytes

  @property
  def compute_seconds(self) -> Optional[float]:
    return None if self.flops is None else self.flops / self.chip.peak(self.dtype)

  @property
  def memory_seconds(self) -> Optional[float]:
    return None if self.bytes_accessed is None else self.bytes_accessed / self.chip.hbm_bandwidth

  @property
  def roofline_seconds(self) -> Optional[float]:
    """Lower bound on one step: max(FLOPs / peak FLOP/s, bytes accessed / HBM bandwidth), per
    device (all devices run in parallel; collectives and host input are not counted)."""
    times = [t for t in (self.compute_seconds, self.memory_seconds) if t is not None]
    return max(times) if times else None

  @property
  def ceiling(self) -> Optional[float]:
    """Items (images, tokens) per second at the roofline bound."""
    t = self.roofline_seconds
    return self.items_per_step / t if t else None


def _parse_oom(message: str) -> Optional[float]:
  for pattern in _OOM_PATTERNS:
    m = pattern.search(message)
    if m:
      return float(m.group(1)) * _UNITS[m.group(2)]
  return None


def count_collectives(hlo_text: str) -> dict:
  """{'all-reduce': n, 'all-gather': n, 'reduce-scatter': n} instructions in an HLO module.

  XLA:TPU emits a reduce-scatter as a fusion computation named ``all-reduce-scatter*`` holding
  an all-reduce and the slice each device keeps; such an all-reduce counts as a reduce-scatter.
  """
  counts = dict.fromkeys(COLLECTIVES, 0)
  in_scatter_fusion = False
  for line in hlo_text.splitlines():
    if line and not line[0].isspace():  # a computation's header or closing brace
      in_scatter_fusion = line.lstrip("%").startswith("all-reduce-scatter")
      continue
    for m in _COLLECTIVE.finditer(line):
      kind = m.group(1)
      counts["reduce-scatter" if kind == "all-reduce" and in_scatter_fusion else kind] += 1
  return counts


_WHILE = re.compile(r"\swhile\(")
_WHILE_OP = re.compile(r"\swhile\(.*op_name=\"([^\"]*)\"")


def count_windowed_einsums(hlo_text: str) -> dict:
  """{'all-gather': n, 'reduce-scatter': n}: XLA:TPU's windowed einsums, while loops that overlap
  a matmul with its collective chunk by chunk. One in a gradient (its op_name under
  ``transpose(``) reduce-scatters the weight's gradient; one in the forward all-gathers it."""
  counts = {"all-gather": 0, "reduce-scatter": 0}
  for m in _WHILE_OP.finditer(hlo_text):
    if m.group(1).rsplit("/", 1)[-1].startswith("dot_general"):
      counts["reduce-scatter" if "transpose(" in m.group(1) else "all-gather"] += 1
  return counts


def count_while_loops(hlo_text: str) -> int:
  """While instructions in an HLO module (a ``lax.scan``/``fori_loop`` XLA did not unroll).

  XLA's cost analysis counts a while loop's body once, whatever its trip count, so a step with
  one under-reports FLOPs and bytes. Measured: sngan_cifar10 (n_dis 5) with its four early D
  steps in a ``scan`` reported 310 GFLOP on v4-8 for n_dis 2, 3 and 5 alike; unrolled, 310, 407
  and 603 GFLOP.
  """
  return len(_WHILE.findall(hlo_text))


def _cost(compiled) -> tuple:
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax: one dict per partition
    cost = cost[0] if cost else None
  if not cost:
    return None, None
  return cost.get("flops"), cost.get("bytes accessed")


def lower(config, devices):
  """(task, mesh, lowered train step) of ``config`` on ``devices`` from shapes alone, built by
  the functions ``train_and_evaluate`` uses. Traced for the devices' platform when they are
  TPUs (``models.backend``), so platform-dependent kernels are the ones a TPU run would use."""
  from genai_jax.models import backend
  if devices and devices[0].platform == "tpu":
    with backend.compiling_for("tpu"):
      return _lower(config, devices)
  return _lower(config, devices)


def _lower(config, devices):
  import jax
  from genai_jax import tasks
  from genai_jax.data import specs
  from genai_jax.train import sharding
  from genai_jax.train import state as state_lib
  tasks.validate(config)
  mesh = sharding.make_mesh(config.mesh.data, config.mesh.fsdp, devices=devices)
  sharding.check_global_batch(config.batch_size, mesh)
  task = tasks.get_task(config)
  spec = state_lib.sharded_init(task, mesh)
  step = state_lib.compile_train_step(task, mesh, spec.shardings)
  batch_sharding = sharding.batch_sharding(mesh)
  batch = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=batch_sharding)
           for k, v in specs.batch_spec(config.data, config.batch_size).items()}
  return task, mesh, step.lower(spec.abstract, batch)


_WHILE_LOWERED = re.compile(r"stablehlo\.while")
_NO_WINDOWED_EINSUM = {"xla_tpu_enable_windowed_einsum_for_all_gather": False,
                       "xla_tpu_enable_windowed_einsum_for_reduce_scatter": False}


def hand_count(task, config, devices: int) -> Optional[float]:
  """Per-device training FLOPs of one step by hand: 6 N + 12 L T d per token (PaLM appendix B;
  ``transformer.flops_per_token``), the global batch's tokens over ``devices``; None unless the
  task is a transformer LM."""
  if config.get("task") not in ("causal_lm", "masked_lm"):
    return None
  from genai_jax.models import transformer
  from genai_jax.tasks import lm
  cfg = lm.build(config).model.cfg
  seq_len = task.items_per_example
  return transformer.flops_per_token(cfg, seq_len) * config.batch_size * seq_len / devices


def _compile(lowered, options=None):
  """(compiled, None) or (None, out-of-memory message)."""
  import jax
  try:
    return lowered.compile(compiler_options=options), None
  except jax.errors.JaxRuntimeError as e:
    if "RESOURCE_EXHAUSTED" not in str(e):
      raise
    return None, str(e).strip().splitlines()[0]


def compile_step(config, topology: str, reference_cost: bool = True) -> StepReport:
  """Compiles ``config``'s train step for ``topology`` (a ``topologies.TOPOLOGIES`` name) and
  reports memory, cost and collectives. A step that does not fit is reported (``fits`` False,
  ``oom`` set), not raised. Raises ``ConfigError`` for configs training would reject.

  ``reference_cost``: where the backend reports no cost analysis (XLA:GPU), compile the same step
  once more for the topology's ``cost_reference`` to get FLOPs and bytes; False leaves them None.
  """
  from genai_jax import tasks
  from genai_jax.errors import ConfigError
  topo = topologies.lookup(topology)
  devices = topologies.devices(topology)
  if config.batch_size % topo.hosts:
    raise ConfigError(f"batch_size={config.batch_size} is not divisible by the {topo.hosts} hosts "
                      f"of {topology}; set batch_size to a multiple of {topo.hosts}",
                      keys=("batch_size",))
  task, mesh, lowered = lower(config, devices)
  report = StepReport(topology=topo, chip=topologies.CHIPS[topo.chip], mesh=dict(mesh.shape),
                      hosts=topo.hosts, batch_size=config.batch_size,
                      items_per_step=config.batch_size * task.items_per_example, unit=task.unit,
                      dtype=tasks.compute_dtype(config).name)
  compiled, report.oom = _compile(lowered)
  if compiled is None:
    report.needed_bytes = _parse_oom(report.oom)
    return report
  mem = compiled.memory_analysis()
  report.argument_bytes, report.output_bytes = mem.argument_size_in_bytes, mem.output_size_in_bytes
  report.alias_bytes, report.temp_bytes = mem.alias_size_in_bytes, mem.temp_size_in_bytes
  report.code_bytes = mem.generated_code_size_in_bytes
  hlo = compiled.as_text()
  report.collectives, report.while_loops = count_collectives(hlo), count_while_loops(hlo)
  report.windowed = count_windowed_einsums(hlo)
  report.flops, report.bytes_accessed = _cost(compiled)
  report.hand_flops = hand_count(task, config, report.devices)
  if report.while_loops and not _WHILE_LOWERED.search(lowered.as_text()) and topo.platform == "tpu":
    # The loops are XLA:TPU's own windowed einsums (a weight's all-gather or its gradient's
    # reduce-scatter overlapped with the matmul, one chunk per iteration), which cost analysis
    # counts once: count FLOPs and bytes on the same program compiled without them.
    plain, _ = _compile(lowered, _NO_WINDOWED_EINSUM)
    if plain is not None and not count_while_loops(plain.as_text()):
      report.flops, report.bytes_accessed = _cost(plain)
      report.while_loops = 0
      report.cost_source = ("counted on the same step compiled without XLA's windowed-einsum "
                            "loops, whose bodies cost analysis counts once")
  if report.flops is None and topo.cost_reference and reference_cost:
    # XLA:GPU compiles report no cost analysis: count the same step partitioned the same way
    # over a TPU topology with as many devices (its FLOPs are the program's; its bytes reflect
    # TPU fusion, an estimate of GPU traffic).
    _, _, ref_lowered = lower(config, topologies.devices(topo.cost_reference))
    ref, _ = _compile(ref_lowered)
    if ref is not None:
      report.flops, report.bytes_accessed = _cost(ref)
      report.cost_source = f"from the same step compiled for {topo.cost_reference}"
  return report


def batch_quantum(config, topology: str) -> int:
  """Global batches the run accepts are multiples of this: devices, hosts and data shards."""
  topo = topologies.lookup(topology)
  q = math.lcm(topo.devices, topo.hosts)
  shards = config.data.get("shards") if "shards" in config.data else None
  return math.lcm(q, int(shards)) if shards else q


def with_batch(config, batch_size: int):
  c = copy.deepcopy(config)
  c.batch_size = batch_size
  return c


def batch_sweep(config, topology: str, resolution: int = 16, on_probe=None) -> tuple:
  """(largest fitting global batch or 0, smallest failing one or None, {batch: StepReport}).

  Batches are multiples of ``batch_quantum``. Doubles from ``config.batch_size`` until a compile
  does not fit (halves if the first does not), then bisects until the gap is at most
  1/``resolution`` of the fitting batch (each probe is one full compile). ``on_probe(report)`` is
  called after each.
  """
  q = batch_quantum(config, topology)
  probes = {}

  def fits(k):
    report = compile_step(with_batch(config, k * q), topology)
    probes[k * q] = report
    if on_probe:
      on_probe(report)
    return report.fits

  k = max(1, config.batch_size // q)
  if fits(k):
    lo, hi = k, None
    while hi is None and lo < 2**30 // q:
      if fits(2 * lo):
        lo *= 2
      else:
        hi = 2 * lo
  else:
    lo, hi = 0, k
    while hi > 1:
      if fits(hi // 2):
        lo = hi // 2
        break
      hi //= 2
  while lo and hi and hi - lo > max(1, lo // resolution):
    mid = (lo + hi) // 2
    if fits(mid):
      lo = mid
    else:
      hi = mid
  return lo * q, (hi * q if hi else None), probes


def _size(b: Optional[float]) -> str:
  if b is None:
    return "n/a"
  return f"{b / GiB:.2f} GiB" if b >= GiB / 10 else f"{b / 2**20:.1f} MiB"


def _num(x: float) -> str:
  for div, suffix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
    if abs(x) >= div:
      return f"{x / div:.3g} {suffix}"
  return f"{x:.3g} "


def table(report: StepReport, title: str = "") -> str:
  """The report as an aligned two-column table (one row per figure)."""
  r, chip = report, report.chip
  rows = []
  if title:
    rows.append(("config", title))
  rows += [
      ("topology", f"{r.topology.name}: {r.devices} x {chip.name} on {r.hosts} host"
                   f"{'s' if r.hosts > 1 else ''}"),
      ("mesh", " x ".join(f"{k}={v}" for k, v in r.mesh.items())),
      ("global batch", f"{r.batch_size} ({r.items_per_step:,} {r.unit}/step), compute {r.dtype}"),
  ]
  if r.oom is None:
    pct = 100 * r.peak_bytes / chip.hbm_bytes
    rows += [
        ("arguments / device", _size(r.argument_bytes) +
         (f" ({_size(r.alias_bytes)} donated, reused by the outputs)" if r.alias_bytes else "")),
        ("temporaries / device", _size(r.temp_bytes)),
        ("outputs / device", _size(r.output_bytes)),
        ("peak / device", f"{_size(r.peak_bytes)} of {_size(chip.hbm_bytes)} HBM ({pct:.1f}%)"),
    ]
    src = f" ({r.cost_source})" if r.cost_source else ""
    if r.while_loops:
      src += (f" (at least: XLA counts the body of each of the step's {r.while_loops} while "
              f"loop{'s' if r.while_loops > 1 else ''} once, not per iteration)")
    rows.append(("FLOPs / device / step", (_num(r.flops) + "FLOP" if r.flops is not None
                                           else "n/a (the backend reports none)") + src))
    if r.hand_flops:
      ratio = (f"{r.flops / r.hand_flops:.2f}x" if r.flops is not None and not r.while_loops
               else "n/a (XLA's count is partial)" if r.flops is not None else "n/a")
      rows.append(("hand count / device", f"{_num(r.hand_flops)}FLOP (6N + 12LTd per token, global "
                   f"batch over {r.devices} devices); XLA / hand = {ratio}"))
    rows.append(("HBM bytes / device / step", (_num(r.bytes_accessed) + "B" if r.bytes_accessed
                                               is not None else "n/a") + src))
    if r.roofline_seconds:
      bound = ("compute" if (r.compute_seconds or 0) >= (r.memory_seconds or 0) else "HBM bandwidth")
      rows.append(("roofline step time", f">= {r.roofline_seconds * 1e3:.3g} ms ({bound}-bound: "
                   f"{_num(chip.peak(r.dtype))}FLOP/s {r.dtype}, {_num(chip.hbm_bandwidth)}B/s HBM)"))
      rows.append(("throughput ceiling", f"<= {r.ceiling:,.0f} {r.unit}/s"))
    windowed = ", ".join(f"{v} {k}" for k, v in r.windowed.items() if v)
    rows.append(("collectives", ", ".join(f"{k} {v}" for k, v in r.collectives.items()) +
                 (f"; windowed einsums (a matmul overlapped with its collective): {windowed}"
                  if windowed else "")))
  else:
    rows.append(("compile", r.oom[:160]))
  width = max(len(k) for k, _ in rows)
  return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


def verdict(report: StepReport, config=None) -> str:
  """``fits`` or ``does not fit: needs X GiB of Y GiB per device; <fixes>``."""
  if report.fits:
    return "fits"
  r, chip = report, report.chip
  needed = r.needed_bytes if r.oom is not None else r.peak_bytes
  need = f"needs {needed / GiB:.1f} GiB" if needed else "needs more"
  fixes = []
  if r.mesh.get("fsdp", 1) < r.devices:
    fixes.append(f"raise --config.mesh.fsdp (now {r.mesh.get('fsdp', 1)}) to shard the state")
  fixes.append(f"lower --config.batch_size (now {r.batch_size}; --batch_sweep finds the largest "
               f"that fits)")
  if config is not None and "dtype" in config.model and r.dtype != "bfloat16":
    fixes.append("set --config.model.dtype=bfloat16")
  return (f"does not fit: {need} of {chip.hbm_bytes / GiB:.1f} GiB HBM per device; "
          + ", or ".join(fixes))
