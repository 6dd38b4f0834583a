"""Train-step throughput, MFU and peak memory of each family's flagship step on whatever JAX sees.

  python -m benchmarks.accelerator                   # make bench-accel
  python -m benchmarks.accelerator --sizes=accelerator --steps=20 --rounds=3

Runs the training step ``train_and_evaluate`` runs (``state.sharded_init`` and
``state.compile_train_step`` on a mesh over all local devices) on a fixed random batch shaped by
``specs.batch_spec``, for: DCGAN (batch 64 and 512, float32 and bfloat16), the MLP VAE and
the baby GPT (bfloat16). ``--sizes`` picks the geometry: ``accelerator`` is the flagship (DCGAN
64x64 width 64 on CelebA's shape, VAE 784-500-20 batch 128, baby GPT 6x384 context 256 batch 64,
and the GPT-2-small geometry of the ``gpt125m`` preset, 12x768 context 1024 batch 32);
``cpu`` (default on a CPU) shrinks the DCGAN to 32x32 width 32 at batch 16/64 and the GPT to the
demo's 4x128 context 128, so the whole table takes a few minutes on 2 cores.

Each row's config reads the family's embedded demo data (``on_disk``: faces, digits, text as
bytes) at the row's shapes, and besides the bare step runs through ``train_and_evaluate``
(``measure_loop``: the loader reading and decoding from disk, the batch copied to the devices
ahead of the step (on a CPU handed to the step as NumPy: ``prefetch.device_batches``), metrics
fetched at log steps, checkpoints at the preset's interval,
evaluation off): the ``loop`` column, ``l/s`` the loop's rate over the bare step's, and ``cpu``
the bare step's CPU seconds a step over the loop's (all of the process's threads), the ratio
that other jobs on a shared machine barely move (``--no-loop``: the bare step only, on random
batches of the same shapes). The loop runs ``--loop_repeats`` times, each between two sets of
bare rounds; a run's ratios are taken against those two sets only (the machine's speed drifts
over minutes), and the row prints their medians. ``input/core``: the loader alone on the row's
data (``loader_rate``), decoding every example, in items a second of host CPU time, to size a
machine's input side (the rate from the decoded cache is printed beside it).

Per row: images/s or tokens/s (median of ``--rounds`` rounds of ``--steps`` steps, more if they
take under ``--min_round_s``, step N
dispatched before waiting for step N-1, as the loop does), achieved TFLOP/s and MFU against the device's peak
for the row's compute dtype (the chip table of ``genai_jax.aot.topologies``; on a CPU the
vector-ISA estimate of ``benchmarks.lm_throughput``), and peak device memory
(``memory_stats()['peak_bytes_in_use']`` where the backend tracks it, otherwise XLA's compiled
estimate, marked ``~``). FLOPs per step come from XLA's cost analysis of the compiled step; where
the backend reports none (XLA:GPU), from the same step compiled for the host CPU.
"""

import argparse
import math
import os
import statistics
import time

import jax
import numpy as np

from benchmarks import common


def _settings(c) -> dict:
  """``c.model`` with the model's defaults filled in (configs leave most keys None)."""
  from genai_jax import tasks
  return tasks.model_settings(c)


def configs(sizes: str):
  """[(label, config)] for ``sizes`` 'accelerator' or 'cpu'."""
  from experiments.configs import dcgan_celeba, gpt_shakespeare, vae_mnist
  small = sizes == "cpu"
  rows = []
  for dtype in ("float32", "bfloat16"):
    for batch in ((16, 64) if small else (64, 512)):
      c = dcgan_celeba.get_config()
      c.batch_size = batch
      c.model.dtype = dtype
      if small:
        c.model.update(width=32, image_size=32)
        c.data.image_size = 32
      rows.append((f"DCGAN {c.model.image_size}x{c.model.image_size} w{_settings(c)['width']}", c))
  rows.append(("VAE MLP 784-500-20", vae_mnist.get_config()))
  g = gpt_shakespeare.get_config("demo" if small else "baby_gpt")
  g.model.update(dtype="bfloat16", dropout=0.0)
  g.data.update(name="tiny_shakespeare", vocab_size=65)  # no dataset needed: 65 chars, as nanoGPT
  m = _settings(g)
  rows.append((f"GPT {m['num_layers']}x{m['d_model']} ctx {g.data.seq_len}", g))
  if not small:  # GPT-2 small geometry, the size where MFU on a GPU/TPU means something
    g = gpt_shakespeare.get_config("gpt125m")
    g.data.update(vocab_size=256)  # bytes: no dataset needed
    m = _settings(g)
    rows.append((f"GPT {m['num_layers']}x{m['d_model']} ctx {g.data.seq_len}", g))
  if jax.devices()[0].platform == "gpu":
    # XLA's own (cuDNN) transposed/strided convolutions beside the sub-pixel default, which was
    # chosen for CPUs; cuDNN's fused attention beside the default XLA one.
    for label, c in [r for r in rows if r[0].startswith("DCGAN")]:
      c2 = c.copy_and_resolve_references()
      c2.model.conv_impl = "xla"
      rows.append((f"{label} conv xla", c2))
    for label, c in [r for r in rows if r[0].startswith("GPT")]:
      c2 = c.copy_and_resolve_references()
      c2.model.attention_impl = "cudnn"
      rows.append((f"{label} cudnn", c2))
  return rows


def on_disk(config):
  """``config`` reading the family's embedded demo data from disk (prepared on first use), with
  the row's shapes: images resized to the row's size and channels, text as bytes (vocabulary
  256). The step and the loop columns both run this config, so their ratio compares like with
  like."""
  from experiments.configs import dcgan_celeba, gpt_shakespeare, vae_mnist
  from genai_jax import tasks
  c = config.copy_and_resolve_references()
  family = tasks.family_name(c.task)
  demo = {"gan": dcgan_celeba, "vae": vae_mnist, "lm": gpt_shakespeare}
  if family not in demo:
    raise ValueError(f"no demo data for the {family!r} family; the table benchmarks {sorted(demo)}")
  data = demo[family].get_config("demo").data
  if family == "lm":
    data.update(seq_len=c.data.seq_len, vocab="byte", vocab_size=256)
  else:
    data.update(image_size=c.data.image_size, channels=c.data.channels)
  data.shards = math.gcd(8, c.batch_size)  # shards must divide the row's batch
  c.data = data
  return c


def measure_loop(config, steps: int, rounds: int, workdir: str, checkpoint_every=None) -> dict:
  """The loop's time per step: ``config`` through ``train_and_evaluate`` (data read from disk and
  decoded by the loader, metrics fetched at log steps, a checkpoint every ``checkpoint_every``
  steps (default: the preset's own), evaluation off), ``(rounds + 2) * steps`` steps logged every
  ``steps``. Over the ``rounds`` middle log intervals (the first includes compiling; the last, the
  final save): ``loop_step_s``, wall-clock seconds a step, taken where the loop takes its own
  ``perf`` rate (``Progress.rate``), and ``loop_cpu_s``, this process's CPU seconds a step (all
  threads: loader, prefetch, saves), which other jobs on a shared machine barely change."""
  import time
  from unittest import mock
  from genai_jax.train import writers
  from genai_jax.train.loop import train_and_evaluate
  c = config.copy_and_resolve_references()
  c.update(num_steps=(rounds + 2) * steps, log_every=steps,
           checkpoint_every=checkpoint_every or c.checkpoint_every,
           eval_every=10**9, eval_batches=0, keep_checkpoints=1)
  if "eval_gen" in c:
    c.eval_gen.update(every=0, at_end=False)
  marks, rate = {}, writers.Progress.rate

  def timed_rate(progress, step):  # called once a log step, as the loop times its perf rows
    marks[step] = (time.perf_counter(), time.process_time())
    return rate(progress, step)

  with mock.patch.object(writers.Progress, "rate", timed_rate):
    train_and_evaluate(c, workdir)
  first, last = steps, (rounds + 1) * steps
  if first not in marks or last not in marks:
    return {"loop_step_s": None, "loop_cpu_s": None}
  n = last - first
  return {"loop_step_s": (marks[last][0] - marks[first][0]) / n,
          "loop_cpu_s": (marks[last][1] - marks[first][1]) / n}


def loader_rate(config, items_per_example: int, seconds: float = 2.0,
                cached: bool = True) -> dict:
  """The loader alone on ``config``'s training data (``pipelines.batches``, its threads, no step
  beside it): ``per_core``, items a second of the process's CPU time (all threads: what one host
  core gives, so a user can size a machine's input side), and ``wall``, items a second of wall
  clock. Timed for ``seconds`` after a warm-up of ``seconds`` (the decoded cache fills then, as
  in a long run's first epoch). ``cached=False`` turns the decoded cache off (``data.cache_mb=0``):
  every example decoded every time, as for a dataset too big to keep in memory."""
  from genai_jax.data import pipelines
  c = config.copy_and_resolve_references()
  if not cached:
    with c.data.unlocked():  # cache_mb is optional in data configs
      c.data.cache_mb = 0
  it = pipelines.batches(c.data, c.data.train_split, c.batch_size, train=True, seed=c.seed)
  items = c.batch_size * items_per_example
  try:
    for _ in ("warm-up", "timed"):
      n, w0, c0 = 0, time.perf_counter(), time.process_time()
      while time.perf_counter() - w0 < seconds:
        next(it)
        n += 1
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
  finally:
    it.close()
  return {"per_core": n * items / cpu if cpu > 0 else None, "wall": n * items / wall}


def _batch(config, mesh):
  """A fixed random global batch of the shapes the pipeline yields (values do not change cost)."""
  from genai_jax.data import specs
  from genai_jax.train import sharding
  rng = np.random.default_rng(0)
  host = {}
  for k, s in specs.batch_spec(config.data, config.batch_size).items():
    if np.issubdtype(s.dtype, np.integer):
      host[k] = rng.integers(0, 2, s.shape).astype(s.dtype)  # token ids valid in any vocabulary
    else:
      host[k] = rng.uniform(-1, 1, s.shape).astype(s.dtype)
  return sharding.global_batch(host, mesh)


def _flops(compiled, step, abstract_state, batch) -> tuple:
  """(FLOPs per step summed over devices, where from); ``step`` is the task's pure train_step."""
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) and cost else cost
  n = jax.device_count()
  if cost and cost.get("flops") and jax.devices()[0].platform != "gpu":
    return cost["flops"] * n, "XLA"
  # XLA:GPU's cost analysis leaves out the cuBLAS/cuDNN custom calls that do most of the work
  # (measured on an H100: 3.7 of the GPT-2-small step's ~21 TFLOP): the same step compiled for one
  # host CPU device counts the whole batch, as the AOT report does for a TPU.
  from genai_jax.train import sharding
  cpu = sharding.make_mesh(devices=jax.devices("cpu")[:1])
  rep = jax.sharding.NamedSharding(cpu, jax.sharding.PartitionSpec())
  on_cpu = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=rep),
                        (abstract_state, batch))
  cost = jax.jit(step).lower(*on_cpu).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) and cost else cost
  return (cost or {}).get("flops"), "XLA (host CPU compile)"


def paired_ratios(sets: list, loops: list, steps: int) -> dict:
  """Each loop run against the bare rounds just before and after it, and the medians.

  ``sets``: ``len(loop runs) + 1`` lists of (seconds, CPU seconds) of bare rounds of ``steps``
  steps, loop run ``i`` having run between ``sets[i]`` and ``sets[i + 1]``; ``loops``: [(i,
  ``measure_loop``'s dict)]. The machine's speed drifts over minutes (other tenants, clocks), so
  a run is compared with its neighbours only, never with rounds taken minutes away. Returns
  ``loop_ratios`` / ``cpu_ratios`` (each run's bare rate over its loop rate: bare seconds a
  step / loop seconds a step, and the same in CPU seconds), their medians ``loop_ratio`` /
  ``cpu_ratio``, and the median ``loop_step_s`` / ``loop_cpu_s`` (None without loop runs)."""
  out = {"loop_ratios": [], "cpu_ratios": [], "loop_ratio": None, "cpu_ratio": None,
         "loop_step_s": None, "loop_cpu_s": None}
  for i, run_loop in loops:
    around = sets[i] + sets[i + 1]
    out["loop_ratios"].append(statistics.median(s for s, _ in around) / steps
                              / run_loop["loop_step_s"])
    out["cpu_ratios"].append(statistics.median(c for _, c in around) / steps
                             / run_loop["loop_cpu_s"])
  if loops:
    out["loop_ratio"] = statistics.median(out["loop_ratios"])
    out["cpu_ratio"] = statistics.median(out["cpu_ratios"])
    for k in ("loop_step_s", "loop_cpu_s"):
      out[k] = statistics.median(x[k] for _, x in loops)
  return out


def measure(config, steps: int, rounds: int, with_loop: bool = True,
            min_round_s: float = 0.0, loop_repeats: int = 3, loader_s: float = 2.0) -> dict:
  """Times ``config``'s train step on all local devices (and, ``with_loop``, the same config
  through the training loop: ``measure_loop``, logging every round's steps, ``loop_repeats``
  times, each followed by a set of bare rounds); returns the row's figures, each the median of
  its measurements: ``loop_ratio`` and ``cpu_ratio`` are the medians of each loop run's rate
  (CPU seconds a step) against the median of the bare rounds just before and after it
  (``loop_ratios``: each run's). A round is ``steps`` steps, more if that takes under
  ``min_round_s``. ``loader_s``: seconds for each ``loader_rate`` pass (0: not measured)."""
  from genai_jax import tasks
  from genai_jax.train import sharding
  from genai_jax.train import state as state_lib
  mesh = sharding.make_mesh()
  task = tasks.get_task(config)
  spec = state_lib.sharded_init(task, mesh)
  batch = _batch(config, mesh)
  step = state_lib.compile_train_step(task, mesh, spec.shardings)
  compiled = step.lower(spec.abstract, batch).compile()
  counted = task
  if "attention_impl" in config.model:  # cuDNN's has no CPU lowering: count the same math as XLA's
    counted_config = config.copy_and_resolve_references()
    counted_config.model.attention_impl = "xla"
    counted = tasks.get_task(counted_config)
  flops, flops_src = _flops(compiled, counted.train_step, spec.abstract, batch)
  box = [spec.init(jax.random.PRNGKey(0)), None]
  cpu = []  # CPU seconds of each timed round

  def run(n):
    t0 = time.process_time()
    for _ in range(n):
      box[0], metrics = compiled(box[0], batch)
      if box[1] is not None:  # step N dispatched, then wait for N-1 (no transfer): the least
        jax.block_until_ready(box[1])  # a loop must do to stay one step ahead, as ours does
      box[1] = metrics
    jax.block_until_ready(box[1])
    cpu.append(time.process_time() - t0)

  run(2)  # warm up
  t0 = time.perf_counter()
  run(3)
  if min_round_s:  # tiny steps: rounds long enough to time on a shared machine
    steps = max(steps, math.ceil(min_round_s * 3 / (time.perf_counter() - t0)))
  print(f"rounds of {steps} steps", flush=True)
  items = config.batch_size * task.items_per_example
  show = lambda s: f"{items * steps / s:,.0f} {task.unit}/s"  # noqa: E731

  def bare_set():  # (seconds, CPU seconds) of each of ``rounds`` rounds
    cpu.clear()
    seconds = common.alternate_rounds(run, None, steps, rounds, show)
    return list(zip(seconds, cpu))

  sets = [bare_set()]
  loops = []  # (run index, measure_loop's dict) of the runs that timed their stretch
  if with_loop:
    import tempfile
    for i in range(loop_repeats):
      with tempfile.TemporaryDirectory() as workdir:
        run_loop = measure_loop(config, steps, rounds, workdir)
      sets.append(bare_set())
      if run_loop["loop_step_s"] is not None:
        loops.append((i, run_loop))
  loop = paired_ratios(sets, loops, steps)
  for n, (r, c) in enumerate(zip(loop["loop_ratios"], loop["cpu_ratios"])):
    print(f"loop run {n + 1}: {loops[n][1]['loop_step_s'] * 1e3:.3f} ms a step, {r:.3f} of the "
          f"bare rounds around it; CPU {c:.3f}", flush=True)
  loader = {"per_core": None}
  if with_loop and loader_s > 0:  # the loader reads the row's data from disk (``on_disk``)
    loader = loader_rate(config, task.items_per_example, loader_s, cached=False)
    cached = loader_rate(config, task.items_per_example, loader_s)
    print(f"loader alone, data.cache_mb=0: {loader['per_core']:,.0f} {task.unit}/s per host "
          f"core ({loader['wall']:,.0f}/s wall clock); with its decoded cache (the default): "
          f"{cached['per_core']:,.0f}/s per core", flush=True)
  seconds = [s for bare in sets for s, _ in bare]
  cpu_seconds = [c for bare in sets for _, c in bare]
  step_s = statistics.median(seconds) / steps
  step_cpu_s = statistics.median(cpu_seconds) / steps
  # The device's peak is the process's: exact for this row only when the row ran alone (--isolate).
  stats = jax.local_devices()[0].memory_stats() or {}
  m = compiled.memory_analysis()
  estimate = (m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes +
              m.temp_size_in_bytes)
  return {"steps": steps, "step_s": step_s, "step_cpu_s": step_cpu_s, "rate": items / step_s, "unit": task.unit,
          "flops": flops, **loop, "loader_per_core": loader["per_core"],
          "flops_src": flops_src, "peak_bytes": stats.get("peak_bytes_in_use"),
          "estimate_bytes": estimate, "dtype": tasks.compute_dtype(config).name}


def device_peak(dtype: str, override_tflops=None) -> tuple:
  """(peak FLOP/s of all local devices for ``dtype``, description)."""
  from genai_jax.aot import topologies
  dev, n = jax.devices()[0], jax.device_count()
  if override_tflops:
    return override_tflops * 1e12 * n, f"--peak_tflops x {n}"
  if dev.platform == "cpu":
    from benchmarks.lm_throughput import cpu_peak_tflops
    tflops, how = cpu_peak_tflops()
    return tflops * 1e12, how
  chip = topologies.DEVICE_KINDS.get(dev.device_kind)
  if chip is None:
    return None, f"unknown peak for {dev.device_kind!r}: pass --peak_tflops"
  c = topologies.CHIPS[chip]
  return c.peak(dtype) * n, f"{n} x {c.name} {c.peak(dtype) / 1e12:.0f} TFLOP/s {dtype}"


def _row(index: int, sizes: str, steps: int, rounds: int, peak_tflops, with_loop=True,
         min_round_s: float = 0.0, loop_repeats: int = 3, loader_s: float = 2.0) -> dict:
  label, config = configs(sizes)[index]
  print(f"--- {label}, batch {config.batch_size}, {config.model.get('dtype', 'float32')}",
        flush=True)
  r = measure(on_disk(config) if with_loop else config, steps, rounds, with_loop, min_round_s,
              loop_repeats, loader_s)
  peak, how = device_peak(r["dtype"], peak_tflops)
  achieved = r["flops"] / r["step_s"] if r["flops"] else None
  r.update(label=label, batch=config.batch_size, achieved=achieved, peak=peak, peak_src=how,
           mfu=achieved / peak if achieved and peak else None)
  return r


def _isolated_row(index: int, argv: list) -> dict:
  """Runs row ``index`` in a child process, so the device's peak memory is that row's alone."""
  import json
  import subprocess
  import sys
  proc = subprocess.run([sys.executable, "-m", "benchmarks.accelerator", *argv, f"--row={index}"],
                        stdout=subprocess.PIPE, text=True)
  result = None
  for line in proc.stdout.splitlines():
    if line.startswith(_RESULT):
      result = json.loads(line[len(_RESULT):])
    else:
      print(line, flush=True)
  if proc.returncode or result is None:  # the other rows still run and print
    print(f"row {index} failed (exit {proc.returncode}); rerun it alone with --row={index}", flush=True)
  return result


_RESULT = "RESULT "


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--sizes", choices=["cpu", "accelerator"], default=None,
                 help="default: cpu on a CPU, accelerator otherwise")
  p.add_argument("--steps", type=int, default=None, help="steps per timed round")
  # 5 rounds of >= 2 s: the loop column times the middle rounds * steps steps, and at 3 rounds of
  # >= 1 s the 4 ms VAE step's timed stretch (~750 steps) held either no checkpoint save or one
  # (a save every 1,000 steps), so its ratio jumped between runs; now ~2,500 steps, 2-3 saves.
  p.add_argument("--rounds", type=int, default=5)
  p.add_argument("--min_round_s", type=float, default=2.0,
                 help="a row whose --steps take less runs more steps a round (tiny steps time "
                      "badly on a shared machine); 0: exactly --steps")
  p.add_argument("--loop_repeats", type=int, default=3,
                 help="loop runs per row, each between two sets of bare rounds and compared "
                      "with those; the loop columns are the medians")
  p.add_argument("--loader_seconds", type=float, default=2.0,
                 help="warm-up and timed seconds of each loader pass for input/core (0: skip)")
  p.add_argument("--peak_tflops", type=float, default=None, help="per device, overrides the table")
  p.add_argument("--only", default="", help="run only the rows whose label contains this")
  p.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None,
                 help="each row in its own process, so peak memory is the row's (default on an "
                      "accelerator, where the device tracks its peak)")
  p.add_argument("--loop", action=argparse.BooleanOptionalAction, default=True,
                 help="also run each row through train_and_evaluate on the family's embedded "
                      "data from disk (the loop column and loop/step)")
  p.add_argument("--row", type=int, default=None, help=argparse.SUPPRESS)  # a child of --isolate
  a = p.parse_args()
  dev = jax.devices()[0]
  sizes = a.sizes or ("cpu" if dev.platform == "cpu" else "accelerator")
  steps = a.steps or (10 if sizes == "cpu" else 20)  # 10: a loop interval long enough to time
  if a.row is not None:
    import json
    print(_RESULT + json.dumps(_row(a.row, sizes, steps, a.rounds, a.peak_tflops, a.loop,
                                    a.min_round_s, a.loop_repeats, a.loader_seconds)), flush=True)
    return
  isolate = dev.platform != "cpu" if a.isolate is None else a.isolate
  print(f"jax {jax.__version__} on {dev.platform} ({dev.device_kind}) x{jax.device_count()}, "
        f"sizes={sizes}, {a.rounds} rounds of {steps} steps; load average "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
  argv = [f"--sizes={sizes}", f"--steps={steps}", f"--rounds={a.rounds}",
          f"--min_round_s={a.min_round_s}", f"--loop_repeats={a.loop_repeats}",
          f"--loader_seconds={a.loader_seconds}",
          "--loop" if a.loop else "--no-loop"]
  argv += [f"--peak_tflops={a.peak_tflops}"] if a.peak_tflops else []
  results = []
  def line(r):
    peak_mem = f"{r['peak_bytes'] / 2**20:,.0f} MiB" if r["peak_bytes"] and isolate else "n/a"
    mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] else "n/a"
    loop_s, ratio, cpu_ratio = r.get("loop_step_s"), r.get("loop_ratio"), r.get("cpu_ratio")
    loop = (f"{r['rate'] * r['step_s'] / loop_s:>11,.0f} {ratio:>5.2f}" if loop_s and ratio
            else f"{'n/a':>11} {'n/a':>5}")
    loop += f" {cpu_ratio:>5.2f}" if cpu_ratio else f" {'n/a':>5}"
    per_core = r.get("loader_per_core")
    loop += f" {per_core:>11,.0f}" if per_core else f" {'n/a':>11}"
    return (f"{r['label']:<30} {r['batch']:>5} {r['dtype']:<8} {r['step_s'] * 1e3:8.1f} "
            f"{r['rate']:>11,.0f} {r['unit'] + '/s':<8} {loop} {(r['achieved'] or 0) / 1e12:8.3g} "
            f"{mfu:>6} {peak_mem:>10} {r['estimate_bytes'] / 2**20:>6,.0f} MiB")

  for i, (label, _) in enumerate(configs(sizes)):
    if a.only in label:
      r = (_isolated_row(i, argv) if isolate
           else _row(i, sizes, steps, a.rounds, a.peak_tflops, a.loop, a.min_round_s,
                     a.loop_repeats, a.loader_seconds))
      if r:
        results.append(r)
        print("= " + line(r), flush=True)  # each row as it lands: a cut-off run keeps its rows
  print(f"\n{'step':<30} {'batch':>5} {'dtype':<8} {'ms/step':>8} {'throughput':>20} "
        f"{'loop':>11} {'l/s':>5} {'cpu':>5} {'input/core':>11} {'TFLOP/s':>8} {'MFU':>6} {'peak mem':>10} {'XLA est':>10}")
  for r in results:
    print(line(r))
  peaks = sorted({r["dtype"] + ": " + r["peak_src"] for r in results})
  print("peaks: " + "; ".join(peaks))
  print("FLOPs per step: " + ", ".join(sorted({r["flops_src"] for r in results})) +
        "; MFU = FLOPs per step / step time / peak; peak mem: the device's own peak for the row "
        "(n/a unless rows run --isolate on a device that tracks it); XLA est: arguments + outputs "
        "- aliases + temporaries of the compiled step; loop: the same config through "
        "train_and_evaluate (embedded data from disk, metrics fetched at log steps, checkpoints at "
        "the preset's interval, no evaluation), l/s its rate over the bare step's and cpu the "
        "bare step's CPU seconds a step over the loop's (all threads; robust to other jobs on a "
        "shared machine), each the median over the loop runs of the run against the bare rounds "
        "just before and after it; input/core: the loader alone on the row's data with no decoded "
        "cache (data.cache_mb=0: images decoded every time; text windows are slices either way), "
        "items a second of host CPU time (all its threads), to size a machine's input side")
  load = os.getloadavg()
  print(f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min) on "
        f"{os.cpu_count()} cores at the end")


if __name__ == "__main__":
  main()
