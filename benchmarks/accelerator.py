"""Train-step throughput, MFU and peak memory of each family's flagship step on whatever JAX sees.

  python -m benchmarks.accelerator                   # make bench-accel
  python -m benchmarks.accelerator --sizes=accelerator --steps=20 --rounds=3

Runs the training step ``train_and_evaluate`` runs (``state.sharded_init`` and
``state.compile_train_step`` on a mesh over all local devices) on a fixed random batch shaped by
``pipelines.batch_spec``, for: DCGAN (batch 64 and 512, float32 and bfloat16), the MLP VAE and
the baby GPT (bfloat16). ``--sizes`` picks the geometry: ``accelerator`` is the flagship (DCGAN
64x64 width 64 on CelebA's shape, VAE 784-500-20 batch 128, baby GPT 6x384 context 256 batch 64);
``cpu`` (default on a CPU) shrinks the DCGAN to 32x32 width 32 at batch 16/64 and the GPT to the
demo's 4x128 context 128, so the whole table takes a few minutes on 2 cores.

Per row: images/s or tokens/s (median of ``--rounds`` rounds of ``--steps`` steps, each step's
metrics read one step late as the loop does), achieved TFLOP/s and MFU against the device's peak
for the row's compute dtype (the chip table of ``genai_jax.aot.topologies``; on a CPU the
vector-ISA estimate of ``benchmarks.lm_throughput``), and peak device memory
(``memory_stats()['peak_bytes_in_use']`` where the backend tracks it, otherwise XLA's compiled
estimate, marked ``~``). FLOPs per step come from XLA's cost analysis of the compiled step; where
the backend reports none (XLA:GPU), from the same step compiled for the host CPU.
"""

import argparse
import statistics

import jax
import numpy as np

from benchmarks import common


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
      rows.append((f"DCGAN {c.model.image_size}x{c.model.image_size} w{c.model.width}", c))
  rows.append(("VAE MLP 784-500-20", vae_mnist.get_config()))
  g = gpt_shakespeare.get_config("demo" if small else "baby_gpt")
  g.model.update(dtype="bfloat16", dropout=0.0)
  g.data.update(name="tiny_shakespeare", vocab_size=65)  # no dataset needed: 65 chars, as nanoGPT
  rows.append((f"GPT {g.model.num_layers}x{g.model.d_model} ctx {g.data.seq_len}", g))
  return rows


def _batch(config, mesh):
  """A fixed random global batch of the shapes the pipeline yields (values do not change cost)."""
  from genai_jax.data import pipelines
  from genai_jax.train import sharding
  rng = np.random.default_rng(0)
  host = {}
  for k, s in pipelines.batch_spec(config.data, config.batch_size).items():
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
  if cost and cost.get("flops"):
    return cost["flops"] * n, "XLA"
  # XLA:GPU has no cost analysis: the same step on one host CPU device counts the whole batch.
  from genai_jax.train import sharding
  cpu = sharding.make_mesh(devices=jax.devices("cpu")[:1])
  rep = jax.sharding.NamedSharding(cpu, jax.sharding.PartitionSpec())
  on_cpu = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=rep),
                        (abstract_state, batch))
  cost = jax.jit(step).lower(*on_cpu).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) and cost else cost
  return (cost or {}).get("flops"), "XLA (host CPU compile)"


def measure(config, steps: int, rounds: int) -> dict:
  """Times ``config``'s train step on all local devices; returns the row's figures."""
  from genai_jax import tasks
  from genai_jax.aot import report as aot_report
  from genai_jax.train import sharding
  from genai_jax.train import state as state_lib
  mesh = sharding.make_mesh()
  task = tasks.get_task(config)
  spec = state_lib.sharded_init(task, mesh)
  batch = _batch(config, mesh)
  step = state_lib.compile_train_step(task, mesh, spec.shardings)
  compiled = step.lower(spec.abstract, batch).compile()
  flops, flops_src = _flops(compiled, task.train_step, spec.abstract, batch)
  box = [spec.init(jax.random.PRNGKey(0)), None]

  def run(n):
    for _ in range(n):
      box[0], metrics = compiled(box[0], batch)
      if box[1] is not None:
        jax.device_get(box[1])  # the loop reads each step's metrics one step late
      box[1] = metrics
    jax.block_until_ready(box[1])

  run(2)  # warm up
  items = config.batch_size * task.items_per_example
  seconds = common.alternate_rounds(
      run, None, steps, rounds, lambda s: f"{items * steps / s:,.0f} {task.unit}/s")
  step_s = statistics.median(seconds) / steps
  stats = jax.local_devices()[0].memory_stats() or {}
  if "peak_bytes_in_use" in stats:
    peak, exact = stats["peak_bytes_in_use"], True
  else:
    m = compiled.memory_analysis()
    peak = (m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes +
            m.temp_size_in_bytes)
    exact = False
  return {"step_s": step_s, "rate": items / step_s, "unit": task.unit, "flops": flops,
          "flops_src": flops_src, "peak_bytes": peak, "peak_exact": exact,
          "dtype": aot_report.compute_dtype(config)}


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


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--sizes", choices=["cpu", "accelerator"], default=None,
                 help="default: cpu on a CPU, accelerator otherwise")
  p.add_argument("--steps", type=int, default=None, help="steps per timed round")
  p.add_argument("--rounds", type=int, default=3)
  p.add_argument("--peak_tflops", type=float, default=None, help="per device, overrides the table")
  a = p.parse_args()
  dev = jax.devices()[0]
  sizes = a.sizes or ("cpu" if dev.platform == "cpu" else "accelerator")
  steps = a.steps or (3 if sizes == "cpu" else 20)
  print(f"jax {jax.__version__} on {dev.platform} ({dev.device_kind}) x{jax.device_count()}, "
        f"sizes={sizes}, {a.rounds} rounds of {steps} steps", flush=True)
  results = []
  for label, config in configs(sizes):
    print(f"--- {label}, batch {config.batch_size}, {config.model.get('dtype', 'float32')}",
          flush=True)
    r = measure(config, steps, a.rounds)
    peak, how = device_peak(r["dtype"], a.peak_tflops)
    achieved = r["flops"] / r["step_s"] if r["flops"] else None
    r.update(label=label, batch=config.batch_size, achieved=achieved, peak=peak, peak_src=how,
             mfu=achieved / peak if achieved and peak else None)
    results.append(r)
  print(f"\n{'step':<26} {'batch':>5} {'dtype':<8} {'ms/step':>8} {'throughput':>20} "
        f"{'TFLOP/s':>8} {'MFU':>6} {'peak mem':>10}")
  for r in results:
    mem = ("" if r["peak_exact"] else "~") + f"{r['peak_bytes'] / 2**20:,.0f} MiB"
    mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] else "n/a"
    print(f"{r['label']:<26} {r['batch']:>5} {r['dtype']:<8} {r['step_s'] * 1e3:8.1f} "
          f"{r['rate']:>11,.0f} {r['unit'] + '/s':<8} {(r['achieved'] or 0) / 1e12:8.3g} {mfu:>6} "
          f"{mem:>10}")
  peaks = sorted({r["dtype"] + ": " + r["peak_src"] for r in results})
  print("peaks: " + "; ".join(peaks))
  print("FLOPs per step: " + ", ".join(sorted({r["flops_src"] for r in results})) +
        "; MFU = FLOPs per step / step time / peak; peak mem: device peak where tracked, "
        "~ = XLA's compiled estimate")


if __name__ == "__main__":
  main()
