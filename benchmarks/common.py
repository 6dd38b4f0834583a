"""What every throughput benchmark shares: timing, the optional PyTorch reference, and rounds that
alternate ours and the reference so machine noise hits both, summarised as a median ratio."""

import statistics
import time


def timed(run, steps: int) -> float:
  """Seconds for ``run(steps)`` (``run`` blocks until its last step is done)."""
  t0 = time.perf_counter()
  run(steps)
  return time.perf_counter() - t0


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


def alternate_rounds(ours, ref, steps: int, rounds: int, describe) -> list:
  """Times ``ours`` then ``ref`` (if any) for ``steps`` steps, ``rounds`` times, printing one line
  a round (``describe(seconds)`` formats one side's rate) and the median ratio ours/reference.
  Returns the per-round seconds of ours."""
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
  if ratios:
    print(f"median ratio genai_jax / PyTorch: {statistics.median(ratios):.2f}x "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f})", flush=True)
  return ours_seconds
