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
