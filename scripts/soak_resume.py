"""Soak test of preemption safety: N random kill / resume cycles, then compare to a clean run.

  .venv/bin/python scripts/soak_resume.py --cycles=10 --seed=0
  .venv/bin/python scripts/soak_resume.py --cycles=10 --seed=0 --processes=2

With ``--processes=2`` every run is a two-process job on localhost (CPU collectives), and each
cycle stops it one of four ways, at random: SIGTERM to both processes or to one (both must save
the same step, print ``preempted: checkpoint N saved`` and exit 0), or SIGKILL to both or to one
(the survivor of a one-sided kill is killed after ``--survivor-timeout`` seconds if the job has
not ended by itself, as a cluster scheduler would). The reference is a two-process run too.

Each cycle starts the (shrunk) DCGAN demo as a subprocess in one workdir and kills it with
SIGKILL at a random moment after it starts stepping: half the cycles at a random step, half
as soon as an Orbax checkpoint write is in flight (its ``*.orbax-checkpoint-tmp*`` directory
exists). The next cycle resumes. After the cycles the run is finished without kills, the
same config runs uninterrupted in a fresh workdir, and the two are compared: final step,
every train/eval metric per step (rows logged more than once for a step, as happens when a
kill lands between the metrics line and the next checkpoint, must all agree), and the sample
grids. Exits non-zero on any mismatch or on an unreadable latest checkpoint. Kept on failure:
the scratch root with every run's log (logs/cycle_NN.log, final.log, reference.log).

Not part of ``make test`` (about 10 minutes on 2 CPU cores); it runs on CPU.
"""

import argparse
import collections
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TMP = ".orbax-checkpoint-tmp"


def parse_args():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--cycles", type=int, default=10, help="kill -9 / resume cycles")
  p.add_argument("--seed", type=int, default=0, help="seed of the kill schedule")
  p.add_argument("--workdir", default=os.path.join(REPO, "workdirs", "soak"),
                 help="scratch root (wiped first): killed/, reference/, tfds/, logs/")
  p.add_argument("--num-steps", type=int, default=120)
  p.add_argument("--checkpoint-every", type=int, default=5)
  p.add_argument("--eval-every", type=int, default=40)
  p.add_argument("--keep", type=int, default=3, help="checkpoints kept (config.keep_checkpoints)")
  p.add_argument("--width", type=int, default=8, help="config.model.width")
  p.add_argument("--image-size", type=int, default=16)
  p.add_argument("--batch-size", type=int, default=16)
  p.add_argument("--devices", type=int, default=2,
                 help="fake CPU devices per process (the layout; both runs use the same)")
  p.add_argument("--timeout", type=float, default=300, help="seconds a single run may take")
  p.add_argument("--keep-workdir", action="store_true", help="leave the scratch root behind")
  p.add_argument("--processes", type=int, default=1, choices=(1, 2),
                 help="processes per run (2: a multi-process job on localhost)")
  p.add_argument("--survivor-timeout", type=float, default=60,
                 help="seconds the other process of a one-sided SIGKILL may take to exit")
  a = p.parse_args()
  if a.cycles < 1 or a.num_steps < 2 or a.checkpoint_every < 1 or a.devices < 1:
    p.error("--cycles, --checkpoint-every and --devices must be >= 1 and --num-steps >= 2")
  if a.batch_size % 8 or a.batch_size % a.devices:
    p.error(f"--batch-size={a.batch_size} must be a multiple of 8 (data.shards) and of --devices")
  return a


def run_flags(a, workdir):
  return [f"--workdir={workdir}", "--config=experiments/configs/dcgan_celeba.py:demo",
          f"--config.model.width={a.width}", f"--config.model.image_size={a.image_size}",
          f"--config.data.image_size={a.image_size}", f"--config.batch_size={a.batch_size}",
          f"--config.num_steps={a.num_steps}", f"--config.checkpoint_every={a.checkpoint_every}",
          f"--config.eval_every={a.eval_every}", f"--config.keep_checkpoints={a.keep}",
          "--config.log_every=1"]


def free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


class Run:
  """One training subprocess; its output is collected by a thread (and copied to a log file)."""

  def __init__(self, a, workdir, env, log_path):
    self.proc = subprocess.Popen([sys.executable, "-m", "experiments.dcgan_celeba",
                                  *run_flags(a, workdir)], cwd=REPO, env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    self.lines, self.last_step = [], None
    self._log = open(log_path, "w")
    self._thread = threading.Thread(target=self._read, daemon=True)
    self._thread.start()

  def _read(self):
    for line in self.proc.stdout:
      self.lines.append(line)
      self._log.write(line)
      m = re.match(r"step (\d+)/", line)
      if m:
        self.last_step = int(m.group(1))

  def finish(self, timeout):
    try:
      self.proc.wait(timeout=timeout)
    finally:
      if self.proc.poll() is None:
        self.proc.kill()
        self.proc.wait()
      self._thread.join(timeout=10)
      self._log.close()
    return "".join(self.lines)


class Job:
  """``a.processes`` Runs of one job (one process: a plain run); process 0 logs the steps."""

  def __init__(self, a, workdir, env, log_path):
    if a.processes == 1:
      self.runs = [Run(a, workdir, env, log_path)]
    else:
      port = free_port()
      self.runs = [Run(a, workdir, {**env, "JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
                                    "JAX_NUM_PROCESSES": str(a.processes),
                                    "JAX_PROCESS_ID": str(i)},
                       log_path.replace(".log", f".p{i}.log")) for i in range(a.processes)]

  @property
  def last_step(self):
    return self.runs[0].last_step

  def running(self):
    return any(r.proc.poll() is None for r in self.runs)

  def finish(self, timeout):
    outs = [r.finish(timeout) for r in self.runs]
    return "".join(outs), [r.proc.returncode for r in self.runs], outs


def tmp_dirs(ckpt_dir):
  try:
    return [d for d in os.listdir(ckpt_dir) if _TMP in d]
  except FileNotFoundError:
    return []


def read_metrics(workdir):
  """({(split, step): [row, ...]}, torn lines) from metrics.jsonl; rows keep log order. The
  'perf' rows (steps/s) are timings, so they are left out of the comparison."""
  rows, torn = collections.defaultdict(list), 0
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return rows, torn
  with open(path) as f:
    for line in f:
      try:
        r = json.loads(line)
      except json.JSONDecodeError:
        torn += 1  # a line cut by kill -9 mid-write
        continue
      if r["split"] == "perf":  # wall-clock rates: not part of the run's numerics
        continue
      rows[(r["split"], r["step"])].append({k: v for k, v in r.items() if k not in ("split", "step")})
  return rows, torn


def png_pixels(path):
  from PIL import Image
  import numpy as np
  with Image.open(path) as im:
    return np.asarray(im).copy()


def main():
  a = parse_args()
  rng = random.Random(a.seed)
  root = os.path.abspath(a.workdir)
  shutil.rmtree(root, ignore_errors=True)
  killed, reference, logs = (os.path.join(root, d) for d in ("killed", "reference", "logs"))
  os.makedirs(logs)
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2",
         "TFDS_DATA_DIR": os.path.join(root, "tfds"), "PYTHONPATH": REPO,
         "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} "
                      f"--xla_force_host_platform_device_count={a.devices}".strip()}
  # Prepare the embedded dataset once, so no kill lands in the middle of preparing it.
  with open(os.path.join(logs, "prepare.log"), "w") as log:
    subprocess.run([sys.executable, "-c", "from genai_jax.data import pipelines; "
                    "from experiments.configs import dcgan_celeba as c; "
                    "pipelines.get_builder(c.get_config('demo').data)"],
                   cwd=REPO, env=env, check=True, stdout=log, stderr=subprocess.STDOUT)

  ckpt_dir = os.path.join(killed, "checkpoints")
  t0 = time.time()
  counts = collections.Counter()
  resumed_from, kill_steps = [], []
  for cycle in range(a.cycles):
    run = Job(a, killed, env, os.path.join(logs, f"cycle_{cycle:02d}.log"))
    # Aim the kill: a random step within this cycle's fair share of what is left, then either
    # a random instant (mode step) or the first checkpoint write in flight after it (mode save,
    # plus up to 0.2 s, so some kills land while Orbax finalises/renames it).
    start = max((int(d) for d in os.listdir(ckpt_dir) if d.isdigit()), default=0) \
        if os.path.isdir(ckpt_dir) else 0
    share = max(2, 2 * (a.num_steps - start) // (a.cycles - cycle + 1))
    mode = rng.choice(["step", "save"])
    # Which signal, to whom: one process always gets SIGKILL; a job gets one of four stops.
    how = ("SIGKILL", "all") if a.processes == 1 else rng.choice(
        [("SIGTERM", "all"), ("SIGTERM", "one"), ("SIGKILL", "all"), ("SIGKILL", "one")])
    victims = run.runs if how[1] == "all" else [rng.choice(run.runs)]
    target = start + rng.randint(1, share)
    jitter = rng.uniform(0, 0.2 if mode == "save" else 0.5)
    deadline, fire_at, in_save = time.time() + a.timeout, None, False
    fired = False
    while run.running() and time.time() < deadline:
      if fire_at is None and run.last_step is not None:  # stepping has started
        if run.last_step >= target and (mode == "step" or tmp_dirs(ckpt_dir)):
          fire_at = time.time() + jitter
      if fire_at is not None and time.time() >= fire_at:
        in_save = bool(tmp_dirs(ckpt_dir))
        for victim in victims:
          victim.proc.send_signal(getattr(signal, how[0]))
        fired = True
        break
      time.sleep(0.005)
    if fired and how == ("SIGKILL", "one"):
      survivor_deadline = time.time() + a.survivor_timeout
      while run.running() and time.time() < survivor_deadline:
        time.sleep(0.1)
      counts["survivors_killed"] += run.running()
      for r in run.runs:
        if r.proc.poll() is None:
          r.proc.send_signal(signal.SIGKILL)
    out, codes, outs = run.finish(a.timeout)
    m = re.search(r"resumed from \S+/(\d+)", out)
    resumed_from.append(int(m.group(1)) if m else 0)
    counts["fallbacks"] += out.count("is unreadable (")
    preempted = [re.search(r"preempted: checkpoint (\d+) saved", o) for o in outs]
    victim_ok = all(c in (0, -signal.SIGKILL) for c in codes)
    if fired and how[0] == "SIGTERM":
      steps_saved = {int(p.group(1)) for p in preempted if p}
      if codes != [0] * len(codes) or len(steps_saved) != 1 or not all(preempted):
        print(f"cycle {cycle}: {how[0]} to {how[1]}: expected every process to save one step and "
              f"exit 0, got exit codes {codes}, saved {sorted(steps_saved)}; see "
              f"{logs}/cycle_{cycle:02d}*.log:\n{out[-3000:]}", file=sys.stderr)
        sys.exit(1)
      counts["sigterm_stops"] += 1
      kill_steps.append(f"{steps_saved.pop()}T")
    elif fired and victim_ok:
      counts["kills"] += 1
      counts["kills_during_save"] += in_save
      kill_steps.append(f"{run.last_step}{'*' if in_save else ''}")
    elif not fired and codes == [0] * len(codes):
      counts["finished_before_kill"] += 1
      kill_steps.append("done")
    elif fired and how == ("SIGKILL", "one"):  # the survivor may exit with an error: expected
      counts["kills"] += 1
      counts["kills_during_save"] += in_save
      kill_steps.append(f"{run.last_step}{'*' if in_save else ''}")
    else:
      print(f"cycle {cycle}: the run failed (exit {codes}); "
            f"see {logs}/cycle_{cycle:02d}*.log:\n{out[-3000:]}", file=sys.stderr)
      sys.exit(1)
    print(f"cycle {cycle + 1}/{a.cycles}: resumed from step {resumed_from[-1]}, mode {mode}, "
          f"{how[0] if fired else 'no signal'}{' to ' + how[1] if fired and a.processes > 1 else ''}, "
          f"stopped at step {kill_steps[-1]}{' (checkpoint write in flight)' if in_save else ''}, "
          f"checkpoints now {sorted(int(d) for d in os.listdir(ckpt_dir) if d.isdigit()) if os.path.isdir(ckpt_dir) else []}",
          flush=True)
  t_cycles = time.time() - t0

  stale_tmp = len(tmp_dirs(ckpt_dir))  # unfinished checkpoint writes the kills left behind
  final = Job(a, killed, env, os.path.join(logs, "final.log"))
  out, codes, _ = final.finish(a.timeout)
  if any(codes):
    sys.exit(f"the final (resumed) run failed; see {logs}/final.log:\n{out[-3000:]}")
  m = re.search(r"resumed from \S+/(\d+)", out)
  resumed_from.append(int(m.group(1)) if m else 0)
  counts["fallbacks"] += out.count("is unreadable (")
  t1 = time.time()
  ref = Job(a, reference, env, os.path.join(logs, "reference.log"))
  out, codes, _ = ref.finish(a.timeout)
  if any(codes):
    sys.exit(f"the reference run failed; see {logs}/reference.log:\n{out[-3000:]}")
  t_ref = time.time() - t1

  # Compare: every step's train metrics (all rows of a step must agree, and with the
  # reference), eval metrics, the final checkpoint step and the sample grids.
  got, torn = read_metrics(killed)
  want, _ = read_metrics(reference)
  repeated = sum(len(v) > 1 for v in got.values())
  inconsistent = [k for k, v in got.items() if any(r != v[-1] for r in v)]
  missing = [k for k in want if k not in got]
  extra = [k for k in got if k not in want]
  mismatched = [k for k in want if k in got and got[k][-1] != want[k][-1]]
  max_diff = max((abs(got[k][-1][n] - want[k][-1][n]) for k in mismatched for n in want[k][-1]),
                 default=0.0)
  train_steps = sorted(s for (split, s) in want if split == "train")
  final_steps = [max((int(d) for d in os.listdir(os.path.join(w, "checkpoints")) if d.isdigit()),
                     default=None) for w in (killed, reference)]
  grids, grids_equal = [], True
  for name in sorted(os.listdir(os.path.join(reference, "samples"))):
    p, q = os.path.join(killed, "samples", name), os.path.join(reference, "samples", name)
    same = os.path.exists(p) and (png_pixels(p) == png_pixels(q)).all()
    grids.append(f"{name}{'' if same else ' DIFFERS'}")
    grids_equal &= bool(same)
  ok = (not (inconsistent or missing or extra or mismatched) and grids_equal
        and final_steps[0] == final_steps[1] == a.num_steps and counts["fallbacks"] == 0)

  print(f"\nsoak_resume: seed {a.seed}, {a.num_steps} steps, checkpoint every {a.checkpoint_every}, "
        f"keep {a.keep}, batch {a.batch_size}, {a.processes} process(es) x {a.devices} CPU devices")
  print(f"cycles:                       {a.cycles}")
  print(f"kills (SIGKILL) during training: {counts['kills']} "
        f"({counts['kills_during_save']} with a checkpoint write in flight); "
        f"runs that finished before the kill: {counts['finished_before_kill']}")
  print(f"SIGTERM stops (every process saved the same step, exit 0): {counts['sigterm_stops']}; "
        f"survivors of a one-sided SIGKILL killed after the timeout: {counts['survivors_killed']}")
  print(f"stopped at steps (*: kill during a checkpoint write, T: SIGTERM checkpoint): "
        f"{' '.join(kill_steps)}")
  print(f"restarts resumed from steps:  {' '.join(map(str, resumed_from[1:]))} "
        f"(cycles 2..{a.cycles}, then the final run)")
  print(f"unreadable-checkpoint fallbacks seen: {counts['fallbacks']}; unfinished checkpoint "
        f"writes left by kills: {stale_tmp} before the final run, {len(tmp_dirs(ckpt_dir))} after")
  print(f"metrics rows: {sum(map(len, got.values()))} ({repeated} steps logged more than once, "
        f"{len(inconsistent)} of them disagreeing; {torn} torn lines)")
  print(f"final step: killed run {final_steps[0]}, uninterrupted {final_steps[1]}")
  print(f"train steps compared: {len(train_steps)} ({train_steps[0]}..{train_steps[-1]}); "
        f"eval steps compared: {sum(split == 'eval' for split, _ in want)}")
  print(f"mismatched steps: {len(mismatched)} (max abs diff {max_diff:g}); missing {len(missing)}, "
        f"extra {len(extra)}{': ' + str(sorted(mismatched + missing + extra)[:10]) if mismatched or missing or extra else ''}")
  print(f"sample grids equal: {'yes' if grids_equal else 'no'} ({', '.join(grids)})")
  print(f"time: {a.cycles} cycles {t_cycles:.0f}s, final resumed run {t1 - t0 - t_cycles:.0f}s, "
        f"uninterrupted run {t_ref:.0f}s, total {time.time() - t0:.0f}s")
  print("RESULT: " + ("PASS" if ok else "FAIL"))
  if not a.keep_workdir and ok:
    shutil.rmtree(root, ignore_errors=True)
  sys.exit(0 if ok else 1)


if __name__ == "__main__":
  main()
