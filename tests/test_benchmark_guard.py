"""Benchmarks refuse to report a ratio from a busy machine (a loaded CPU flatters us)."""

import subprocess
import sys

import pytest

from benchmarks import common


@pytest.fixture
def spinner():
  """Another process that keeps one core busy."""
  proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
  yield proc
  proc.kill()
  proc.wait()


def test_a_busy_machine_is_refused_before_timing(spinner, capsys):
  with pytest.raises(SystemExit) as e:
    common.check_machine(allow_busy=False, sample_seconds=1.0)
  assert e.value.code == 3
  out = capsys.readouterr()
  assert "(pid " in out.out and "load average" in out.out  # the busiest others, named
  assert out.err.startswith("refused: other processes use") and "--allow-busy" in out.err
  common.check_machine(allow_busy=True, sample_seconds=0.5)  # the override times anyway


@pytest.mark.slow
def test_load_that_appears_while_timing_withholds_the_ratio(capsys):
  others = common.OtherProcesses()
  spin = []

  def ours(steps):  # the competitor starts during the timed rounds
    if not spin:
      spin.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
    import time
    time.sleep(0.5)
  try:
    common.alternate_rounds(ours, lambda steps: None, 1, 2, lambda t: f"{t:.2f}s", others=others)
  finally:
    spin[0].kill()
    spin[0].wait()
  out = capsys.readouterr().out
  assert "ratio not reported: other processes used" in out and "median ratio" not in out


def test_each_loop_run_is_compared_with_the_bare_rounds_around_it():
  # The machine slows by 10% between the first and the last bare set; each loop run costs 5%
  # over the bare step of its own moment. A comparison with all bare rounds would read the first
  # run as 5% slower than it is and the last as faster than the step.
  from benchmarks import accelerator
  steps = 10
  speed = [1.00, 1.05, 1.10]  # the bare step's seconds a step, drifting
  sets = [[(steps * speed[0], 2 * steps * speed[0])] * 3,
          [(steps * (speed[0] + speed[1]) / 2, 2 * steps * (speed[0] + speed[1]) / 2)] * 3,
          [(steps * speed[1], 2 * steps * speed[1])] * 3,
          [(steps * speed[2], 2 * steps * speed[2])] * 3]
  around = [speed[0], (speed[0] + speed[1]) / 2, speed[1], speed[2]]
  loops = [(i, {"loop_step_s": 1.05 * (around[i] + around[i + 1]) / 2,
                "loop_cpu_s": 2.2 * (around[i] + around[i + 1]) / 2}) for i in range(3)]
  out = accelerator.paired_ratios(sets, loops, steps)
  assert out["loop_ratios"] == pytest.approx([1 / 1.05] * 3)
  assert out["cpu_ratios"] == pytest.approx([2 / 2.2] * 3)
  assert out["loop_ratio"] == pytest.approx(1 / 1.05)
  assert out["loop_step_s"] == loops[1][1]["loop_step_s"]
  # A loop run that timed nothing (index 1 missing) leaves its neighbours' pairing unchanged.
  out = accelerator.paired_ratios(sets, [loops[0], loops[2]], steps)
  assert out["loop_ratios"] == pytest.approx([1 / 1.05] * 2)
  empty = accelerator.paired_ratios(sets[:1], [], steps)
  assert empty["loop_ratio"] is None and empty["loop_ratios"] == []


@pytest.mark.slow
def test_the_loader_rate_separates_decoding_from_the_decoded_cache(tfds_dir):
  # input/core of make bench-accel: with data.cache_mb=0 every example is decoded (PNG) every
  # time; from the cache a batch is one gather, orders of magnitude cheaper. If the switch were
  # ignored the two would read alike.
  from benchmarks import accelerator
  from experiments.configs import vae_mnist
  config = accelerator.on_disk(vae_mnist.get_config())
  decoded = accelerator.loader_rate(config, 1, seconds=0.3, cached=False)
  cached = accelerator.loader_rate(config, 1, seconds=1.0)  # the warm-up fills the cache
  assert decoded["per_core"] > 0 and decoded["wall"] > 0
  assert cached["per_core"] > 20 * decoded["per_core"]
