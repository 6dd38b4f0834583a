"""What every throughput benchmark shares: timing, the optional PyTorch reference, rounds that
alternate ours and the reference so machine noise hits both, summarised as a median ratio, and a
guard against a busy machine.

Why the guard: with other processes on the cores, PyTorch's OpenMP threads (which spin and wait
for each other) slow down far more than XLA's, so a loaded machine flatters us (1.23x and 3.14x
measured under load against 0.77x and 0.79x idle). Every benchmark prints the machine's load
before timing and refuses to report a ratio when other processes use the CPU, before or during
the timed rounds; ``--allow-busy`` reports it anyway, marked as taken on a busy machine.
"""

import os
import statistics
import sys
import time

from genai_jax import host_memory

# Like every training entry point (genai_jax/cli.py): on the CPU, XLA's step temporaries reuse
# freed pages instead of faulting in fresh ones every step. The PyTorch reference runs in the
# same process, so it gets the same allocator (it gains too: ~5% on the DCGAN step).
host_memory.configure_for_cpu()

# Other processes may use at most this share of one core (before, and during the timed rounds).
BUSY_CORE_SHARE = 0.15


def add_machine_args(parser) -> None:
  parser.add_argument("--allow-busy", action="store_true",
                      help="report the ratio even when other processes use the CPU (flattering)")


def _cpu_ticks_by_process() -> dict:
  """{(pid, start time): (name, user+system clock ticks)} of every process but this one."""
  out, me = {}, os.getpid()
  for pid in os.listdir("/proc"):
    if not pid.isdigit() or int(pid) == me:
      continue
    try:
      with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    except OSError:
      continue  # ended meanwhile
    name = stat[stat.index("(") + 1:stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): utime/stime are fields 14/15, starttime is field 22.
    out[(int(pid), fields[19])] = (name, int(fields[11]) + int(fields[12]))
  return out


class OtherProcesses:
  """CPU used by every other process on the machine between ``start()`` and ``busiest()``."""

  def __init__(self):
    self._hz = os.sysconf("SC_CLK_TCK")
    self.start()

  def start(self) -> None:
    self._t0, self._ticks = time.time(), _cpu_ticks_by_process()

  def busiest(self) -> tuple[float, list]:
    """(total cores used by others, [(cores, name, pid), ...] busiest first) since ``start``."""
    now, seconds = _cpu_ticks_by_process(), max(time.time() - self._t0, 1e-3)
    used = []
    for key, (name, ticks) in now.items():
      before = self._ticks.get(key, (name, 0))[1]
      cores = (ticks - before) / self._hz / seconds
      if cores > 0.01:
        used.append((cores, name, key[0]))
    used.sort(reverse=True)
    return sum(c for c, _, _ in used), used


def _describe(used) -> str:
  return ", ".join(f"{name} (pid {pid}) {100 * c:.0f}%" for c, name, pid in used[:4]) or "none"


def check_machine(allow_busy: bool, sample_seconds: float = 2.0) -> OtherProcesses:
  """Prints the load average and what other processes use over ``sample_seconds``; exits 3 with
  one line when the machine is busy (unless ``allow_busy``). Returns a tracker already started,
  for checking the timed rounds."""
  load, cores = os.getloadavg(), os.cpu_count()
  others = OtherProcesses()
  time.sleep(sample_seconds)
  total, used = others.busiest()
  print(f"machine: {cores} cores, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} "
        f"(1/5/15 min); other processes over {sample_seconds:.0f}s: {100 * total:.0f}% of a core "
        f"({_describe(used)})", flush=True)
  if total > BUSY_CORE_SHARE and not allow_busy:
    print(f"refused: other processes use {100 * total:.0f}% of a core ({_describe(used)}); a busy "
          f"machine flatters genai_jax against PyTorch. Stop them and rerun, or pass --allow-busy",
          file=sys.stderr, flush=True)
    sys.exit(3)
  others.start()
  return others


def timed(run, steps: int) -> float:
  """Seconds for ``run(steps)`` (``run`` blocks until its last step is done)."""
  t0 = time.perf_counter()
  run(steps)
  return time.perf_counter() - t0


def jax_train_runner(config, batch: dict):
  """``run(n)``: n train steps of ``config``'s task (built, sharded and compiled as the loop does)
  on one fixed batch (``{key: np.ndarray}``, global), blocking on the last step's metrics;
  ``run.step``/``run.args`` expose the compiled step and its arguments (benchmarks.profile_step)."""
  import jax
  from genai_jax import tasks
  from genai_jax.train import sharding
  from genai_jax.train import state as state_lib
  mesh = sharding.make_mesh()
  task = tasks.get_task(config)
  spec = state_lib.sharded_init(task, mesh)
  state = spec.init(jax.random.PRNGKey(0))
  step = state_lib.compile_train_step(task, mesh, spec.shardings)
  data = sharding.global_batch(batch, mesh)
  box = [state]

  def run(n):
    for _ in range(n):
      box[0], metrics = step(box[0], data)
    jax.block_until_ready(metrics)
  run.step, run.args = step, lambda: (box[0], data)
  return run


def torch_gan_runner(net_g, net_d, real, noise):
  """(run, torch version, threads) for the PyTorch DCGAN example's training step: Adam 2e-4
  (0.5, 0.999) on both nets, D on real then detached fake (BCE with logits), then G; ``real`` a
  fixed batch [B, C, H, W], ``noise()`` a fresh batch of G's inputs. ``run(n)`` takes n steps."""
  import torch
  from torch import nn
  opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
  opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
  loss = nn.BCEWithLogitsLoss()
  ones, zeros = torch.ones(real.shape[0]), torch.zeros(real.shape[0])

  def step():
    fake = net_g(noise())
    opt_d.zero_grad()
    err_d = loss(net_d(real).view(-1), ones) + loss(net_d(fake.detach()).view(-1), zeros)
    err_d.backward()
    opt_d.step()
    opt_g.zero_grad()
    err_g = loss(net_d(fake).view(-1), ones)
    err_g.backward()
    opt_g.step()
    return err_d.item(), err_g.item()  # the example reads both losses every step

  def run(n):
    for _ in range(n):
      step()
  return run, torch.__version__, torch.get_num_threads()


def torch_reference(make, warmup: int):
  """``make()`` -> (run, torch version, threads), warmed up; None with a note when torch is
  not importable (it is not a dependency)."""
  try:
    ref, version, threads = make()
  except ImportError:
    print("reference: PyTorch not importable (pip install torch==2.13.0); ours only", flush=True)
    return None
  ref(warmup)
  print(f"reference: PyTorch {version}, {threads} threads", flush=True)
  return ref


def alternate_rounds(ours, ref, steps: int, rounds: int, describe, others=None,
                     allow_busy: bool = False) -> list:
  """Times ``ours`` then ``ref`` (if any) for ``steps`` steps, ``rounds`` times, printing one line
  a round (``describe(seconds)`` formats one side's rate) and the median ratio ours/reference,
  unless other processes (``others``, from ``check_machine``) used the CPU meanwhile. Returns
  the per-round seconds of ours."""
  if others is not None:
    others.start()
  ratios, ours_seconds = [], []
  for r in range(rounds):
    t_ours = timed(ours, steps)
    ours_seconds.append(t_ours)
    line = f"round {r}: genai_jax {describe(t_ours)}"
    if ref is not None:
      t_ref = timed(ref, steps)
      ratios.append(t_ref / t_ours)
      line += f" | PyTorch {describe(t_ref)} | ratio {ratios[-1]:.2f}x"
    print(line, flush=True)
  busy = ""
  if others is not None:
    total, used = others.busiest()
    if total > BUSY_CORE_SHARE:
      busy = f"other processes used {100 * total:.0f}% of a core while timing ({_describe(used)})"
  if ratios and busy and not allow_busy:
    print(f"ratio not reported: {busy}; rerun on an idle machine (or pass --allow-busy)",
          flush=True)
  elif ratios:
    print(f"median ratio genai_jax / PyTorch: {statistics.median(ratios):.2f}x "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f})"
          f"{' [BUSY MACHINE: ' + busy + ']' if busy else ''}", flush=True)
  return ours_seconds
