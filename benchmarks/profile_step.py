"""Per-op CPU profile of one compiled train step, ours beside PyTorch's, bucketed the same way.

  python -m benchmarks.profile_step dcgan [--repeats 3 --steps 3 --top 15]
  python -m benchmarks.profile_step lm    [--repeats 3 --steps 3 --top 15]
  python -m benchmarks.profile_step keras [--repeats 3 --steps 3 --top 15]

The steps are exactly the ones ``benchmarks.dcgan_throughput`` (DCGAN 64x64, batch 64) and
``benchmarks.lm_throughput`` (char GPT 4L/256d, context 128, batch 16) and
``benchmarks.keras_conv_throughput`` (the seeds' Keras conv GAN, 28x28, batch 128) time.

Ours: ``jax.profiler.trace`` of a few steps; XLA's CPU runtime records one event per executed
HLO instruction (thunk), named after it, on the threads that run them (two on two cores: times
summed over threads can exceed the step's wall time). Each instruction is looked up in the
compiled HLO and put in a bucket:

  dot/conv     a dot or convolution, or a fusion containing one (YNNPACK/oneDNN/Eigen GEMMs)
  optimizer    the optimiser update and gradient clipping (the innermost source frame is optax)
  copy/layout  transpose/copy/pad/slice/concatenate/broadcast/reshape, or a fusion of only these
  reduction    a reduce, or a fusion containing one (BatchNorm/LayerNorm statistics, softmax,
               losses, bias-free weight-gradient sums)
  elementwise  every other fusion or op (activations, normalisation apply, RNG)

PyTorch: ``torch.profiler`` of the same number of steps, self CPU time per aten op, bucketed
by op name, with everything under ``Optimizer.step``/``zero_grad``, ``_foreach_*`` and
``clip_grad_norm_`` counted as optimizer; its fused CPU attention kernel
(``_scaled_dot_product_flash_attention_for_cpu`` and its backward: matmuls and softmax in one)
has its own bucket. Profiling adds overhead on both sides; the fractions are what to read.

Each side is profiled ``--repeats`` times; the table gives the median ms per step of each bucket
and its share, with the min-max of the share over the repeats. For ours it adds the bytes each
bucket's ops write per step (from the HLO result shapes of the executed ops): unlike the times,
that column does not depend on what else runs on the machine, so it compares two formulations
exactly even on a busy machine.
"""

import argparse
import collections
import glob
import gzip
import json
import os
import re
import statistics
import tempfile

import jax

from benchmarks import common

BUCKETS = ("dot/conv", "attention (fused)", "copy/layout", "reduction", "elementwise",
           "optimizer", "other")

_LAYOUT = {"copy", "transpose", "pad", "slice", "concatenate", "broadcast", "reshape", "bitcast",
           "dynamic-slice", "dynamic-update-slice", "reverse", "parameter", "constant", "tuple",
           "get-tuple-element", "copy-start", "copy-done", "iota"}
_CONTAINERS = {"while", "call", "conditional", "async-start", "async-done"}
_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(?:\([^=]*?\)|\S+)\s+([a-z][\w\-]*)\(")


_BYTES = {"f64": 8, "s64": 8, "u64": 8, "c64": 8, "f32": 4, "s32": 4, "u32": 4, "bf16": 2,
          "f16": 2, "s16": 2, "u16": 2, "s8": 1, "u8": 1, "pred": 1}


def shape_bytes(shape: str) -> int:
  """Bytes of an HLO shape string, e.g. 'f32[64,8]{1,0}' or a tuple '(f32[2], s32[])'."""
  total = 0
  for dtype, dims in re.findall(r"\b([a-z]+\d*)\[([\d,]*)\]", shape):
    n = 1
    for d in filter(None, dims.split(",")):
      n *= int(d)
    total += n * _BYTES.get(dtype, 4)
  return total


def parse_hlo(text: str) -> tuple[dict, dict, dict]:
  """({instruction name: bucket}, {instruction name: 'shape op_name'}, {instruction name: bytes
  of its result}) for every instruction of a compiled module's ``as_text()``."""
  files = dict(re.findall(r'^(\d+) "(.*)"$', text.split("FunctionNames")[0], re.M))
  locations = dict(re.findall(r"^(\d+) \{file_name_id=(\d+)", text, re.M))
  frames = dict(re.findall(r"^(\d+) \{file_location_id=(\d+)", text, re.M))

  def innermost_file(line):
    m = re.search(r"stack_frame_id=(\d+)", line)
    loc = frames.get(m.group(1)) if m else None
    return files.get(locations.get(loc, ""), "")

  computations, current, instrs, about, out_bytes = collections.defaultdict(set), None, {}, {}, {}
  for line in text.splitlines():
    if line and not line[0].isspace() and line.rstrip().endswith("{"):
      current = line.split()[1 if line.startswith("ENTRY") else 0].lstrip("%")
      continue
    m = _INSTR.match(line)
    if not m:
      continue
    name, opcode = m.groups()
    computations[current].add(opcode)
    called = re.search(r"calls=%?([\w.\-]+)", line)
    instrs[name] = (opcode, called.group(1) if called else None, innermost_file(line))
    shape = line.split("=", 1)[1].strip()
    shape = shape[:shape.index(")") + 1] if shape.startswith("(") else shape.split()[0]
    out_bytes[name] = shape_bytes(shape)
    op_name = re.search(r'op_name="([^"]*)"', line)
    about[name] = f"{shape} {op_name.group(1).removeprefix('jit(train_step)/') if op_name else ''}"

  buckets = {}
  for name, (opcode, called, source) in instrs.items():
    if opcode in _CONTAINERS:
      continue  # their bodies' instructions are recorded (and counted) on their own
    ops = computations.get(called, set()) if opcode == "fusion" else {opcode}
    if ops & {"dot", "convolution"} or (opcode == "custom-call" and "matmul" in name):
      buckets[name] = "dot/conv"
    elif "/optax/" in source and "/losses/" not in source:
      buckets[name] = "optimizer"
    elif ops <= _LAYOUT:
      buckets[name] = "copy/layout"
    elif ops & {"reduce", "reduce-window", "all-reduce"}:
      buckets[name] = "reduction"
    else:
      buckets[name] = "elementwise"
  return buckets, about, out_bytes


def profile_jax(run, steps: int, trace_dir: str):
  """({bucket: seconds per step}, {instruction: seconds per step}, wall seconds per step,
  {instruction: bucket}, {instruction: description}, {bucket: bytes written per step})."""
  import time
  buckets, about, out_bytes = parse_hlo(run.step.lower(*run.args()).compile().as_text())
  t0 = time.perf_counter()
  with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
    run(steps)
  wall = (time.perf_counter() - t0) / steps
  path = max(glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"), recursive=True),
             key=os.path.getmtime)
  with gzip.open(path) as f:
    events = json.load(f)["traceEvents"]
  per_bucket, per_op, written = collections.Counter(), collections.Counter(), collections.Counter()
  for e in events:
    if e.get("ph") == "X" and e["name"] in buckets:
      per_bucket[buckets[e["name"]]] += e["dur"] * 1e-6 / steps
      written[buckets[e["name"]]] += out_bytes[e["name"]] / steps
      per_op[e["name"]] += e["dur"] * 1e-6 / steps
  return per_bucket, per_op, wall, buckets, about, written


_TORCH_DOT = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::convolution_backward",
              "aten::mkldnn_convolution", "aten::_convolution", "aten::convolution",
              "aten::_slow_conv2d", "aten::slow_conv_transpose2d", "aten::_nnpack",
              "aten::addbmm", "aten::linear", "aten::matmul", "aten::conv", "mkldnn::")
_TORCH_ATTN = ("flash_attention", "scaled_dot_product")
_TORCH_LAYOUT = ("copy_", "clone", "contiguous", "transpose", "permute", "view", "reshape", "cat",
                 "pad", "slice", "select", "narrow", "expand", "as_strided", "split", "unsqueeze",
                 "squeeze", "aten::t", "unbind", "stack", "flip", "chunk", "alias", "detach",
                 "numpy_T", "unfold", "im2col", "col2im")
_TORCH_REDUCE = ("batch_norm", "layer_norm", "sum", "mean", "norm", "softmax", "nll_loss",
                 "cross_entropy", "binary_cross_entropy", "var", "amax", "max", "logsumexp")


def torch_bucket(name: str, ancestors) -> str:
  if any(a.startswith(("Optimizer.", "optimizer")) or "clip_grad" in a for a in ancestors) \
      or name.startswith("aten::_foreach"):
    return "optimizer"
  if any(k in name for k in _TORCH_ATTN):
    return "attention (fused)"
  if name.startswith(_TORCH_DOT):
    return "dot/conv"
  if name in ("aten::empty", "aten::empty_strided", "aten::resize_", "aten::zeros",
              "aten::empty_like", "aten::zeros_like", "aten::ones_like", "aten::item",
              "aten::_local_scalar_dense", "aten::to", "aten::_to_copy", "aten::lift_fresh",
              "aten::scalar_tensor", "aten::result_type"):
    return "other"
  short = name.split("::")[-1]
  if any(short == k or short.startswith(k) or short.endswith(k) or k == name for k in _TORCH_LAYOUT):
    return "copy/layout"
  if any(k in short for k in _TORCH_REDUCE):
    return "reduction"
  return "elementwise"


def profile_torch(run, steps: int):
  """({bucket: seconds per step}, {op: seconds per step}, wall seconds per step)."""
  import time
  import torch
  with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
    t0 = time.perf_counter()
    run(steps)
    wall = (time.perf_counter() - t0) / steps
  per_bucket, per_op = collections.Counter(), collections.Counter()
  for e in prof.events():
    if e.name.startswith(("ProfilerStep", "Optimizer.", "autograd::", "torch::autograd")) \
        or not e.name.startswith("aten::"):
      # Python-level labels and autograd nodes: their time is their children's (self time of
      # autograd nodes is bookkeeping, counted as other).
      if e.name.startswith(("autograd::", "torch::autograd")):
        per_bucket["other"] += e.self_cpu_time_total * 1e-6 / steps
      continue
    ancestors, p = [], e.cpu_parent
    while p is not None:
      ancestors.append(p.name)
      p = p.cpu_parent
    b = torch_bucket(e.name, ancestors)
    per_bucket[b] += e.self_cpu_time_total * 1e-6 / steps
    per_op[f"{e.name} [{b}]"] += e.self_cpu_time_total * 1e-6 / steps
  return per_bucket, per_op, wall


def summarise(label, results):
  """Prints one side's table: median ms/step per bucket, median share (min-max over repeats)."""
  walls = [r[2] for r in results]
  totals = [sum(r[0].values()) for r in results]
  print(f"\n{label}: wall {1e3 * statistics.median(walls):.1f} ms/step (min {1e3 * min(walls):.1f}, "
        f"max {1e3 * max(walls):.1f}) under the profiler; recorded op time "
        f"{1e3 * statistics.median(totals):.1f} ms/step (summed over threads)")
  written = results[0][5] if len(results[0]) > 5 else None
  print(f"  {'bucket':<18} {'ms/step':>8} {'share':>6}  {'share min-max':>13}"
        + ("  MB written/step" if written else ""))
  for b in BUCKETS:
    ms = [1e3 * r[0].get(b, 0.0) for r in results]
    shares = [100 * r[0].get(b, 0.0) / t for r, t in zip(results, totals)]
    if max(ms) == 0:
      continue
    print(f"  {b:<18} {statistics.median(ms):8.1f} {statistics.median(shares):5.1f}%  "
          f"{min(shares):5.1f}-{max(shares):4.1f}%"
          + (f"  {written.get(b, 0) / 1e6:12.1f}" if written else ""))
  if written:
    print(f"  distinct ops executed: {len(results[0][1])}; MB written per step, all ops: "
          f"{sum(written.values()) / 1e6:.1f}")


def top_ops(label, per_op, n, describe=lambda k: k):
  print(f"\n{label}: top {n} ops (last repeat, ms/step)")
  for k, v in per_op.most_common(n):
    print(f"  {1e3 * v:7.2f}  {describe(k)}")


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("model", choices=["dcgan", "lm", "keras"])
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--steps", type=int, default=3, help="steps per profiled repeat")
  p.add_argument("--top", type=int, default=15, help="list the N most expensive ops of each side")
  p.add_argument("--no-torch", action="store_true")
  p.add_argument("--impl", default="subpixel", choices=["subpixel", "xla"], help="dcgan, keras: model.conv_impl")
  common.add_machine_args(p)
  a = p.parse_args()
  common.check_machine(a.allow_busy)

  if a.model == "dcgan":
    from benchmarks import dcgan_throughput as bench
    ours = bench.jax_runner(64, 64, 64, a.impl, "float32")
    make_ref = lambda: bench.torch_runner(64, 64, 64)
    print(f"DCGAN 64x64 width 64, batch 64, float32, conv_impl={a.impl}", flush=True)
  elif a.model == "keras":
    from benchmarks import keras_conv_throughput as bench
    ours = bench.jax_runner(128, a.impl)
    make_ref = lambda: bench.torch_runner(128)
    print(f"seed_keras_conv_mnist 28x28x1 width 128, batch 128, float32, conv_impl={a.impl}",
          flush=True)
  else:
    from benchmarks import lm_throughput as bench
    ns = argparse.Namespace(dropout=0.0, dtype="float32", **bench.PRESETS["small"])
    ours = bench.jax_runner(ns, 65)
    make_ref = lambda: bench.torch_runner(ns, 65)
    print("char GPT 4L 4H 256d, context 128, batch 16, vocab 65, float32", flush=True)
  ours(2)  # compile + warm up
  ref = None if a.no_torch else common.torch_reference(make_ref, warmup=2)

  jax_results, torch_results = [], []
  with tempfile.TemporaryDirectory() as tmp:
    for r in range(a.repeats):
      jax_results.append(profile_jax(ours, a.steps, os.path.join(tmp, str(r))))
      if ref is not None:
        torch_results.append(profile_torch(ref, a.steps))
  summarise("genai_jax (XLA CPU)", jax_results)
  buckets, about = jax_results[-1][3:5]
  top_ops("genai_jax", jax_results[-1][1], a.top, lambda k: f"{k} [{buckets[k]}] {about[k]}")
  for b in ("copy/layout", "elementwise", "reduction"):
    top_ops(f"genai_jax {b}", collections.Counter(
        {k: v for k, v in jax_results[-1][1].items() if buckets[k] == b}), a.top,
        lambda k: f"{k} {about[k]}")
  if torch_results:
    summarise("PyTorch", torch_results)
    top_ops("PyTorch", torch_results[-1][1], a.top)


if __name__ == "__main__":
  main()
