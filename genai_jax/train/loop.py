"""``train_and_evaluate``: the one training loop every model family runs through.

Host work never stalls the device: step N is dispatched before the host waits for step N-1, and
metrics stay on the device between log steps (see ``train_and_evaluate``).
Generator metrics (``config.eval_gen``) come in as a hook the entry point builds
(``genai_jax.eval.runner.eval_gen_hook``): the loop imports nothing from evaluation.
"""

import time
from typing import Any, Callable, Optional

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from genai_jax import multihost
from genai_jax import samples
from genai_jax import tasks
from genai_jax.data import pipelines
from genai_jax.errors import ConfigError, NonFiniteLossError
from genai_jax.train import checkpoint as ckpt_lib
from genai_jax.train import prefetch
from genai_jax.train import sharding
from genai_jax.train import state as state_lib
from genai_jax.train import workdir as workdir_lib
from genai_jax.train import writers


def _check_finite(metrics: dict, names, step: int, split: str = "train") -> None:
  for k in names:
    if k in metrics and not np.isfinite(metrics[k]):
      raise NonFiniteLossError(
          f"{split} {k} became {metrics[k]} at step {step} (not saved); lower "
          f"optimizer.learning_rate, or resume from the last good checkpoint with a "
          f"different seed", keys=("optimizer.learning_rate", "seed"))


class _PendingMetrics:
  """The device metrics of the steps dispatched since the last fetch, in step order."""

  def __init__(self, finite_metrics, on_cpu: bool = False):
    self.finite = tuple(finite_metrics)
    # On a CPU a metric's host value is a view of its buffer: np.asarray takes ~1 us a metric,
    # jax.device_get ~9 us (it starts a copy per leaf, which pays only on an accelerator).
    self.to_host = (lambda tree: jax.tree.map(np.asarray, tree)) if on_cpu else jax.device_get
    self.steps = []  # [(step, {name: jax.Array})]
    self.last = {}  # the host metrics of the newest fetched step

  def add(self, step: int, metrics: dict) -> None:
    self.steps.append((step, metrics))

  def wait(self, step: int) -> None:
    """Blocks until ``step`` (if pending) has run: the host never runs more than one step ahead
    of the device (each dispatched step holds a batch on the device). No transfer."""
    for s, metrics in reversed(self.steps):
      if s == step:
        leaves = jax.tree.leaves(metrics)
        if leaves:  # one execution's outputs are ready together: one leaf suffices
          leaves[0].block_until_ready()
        return
      if s < step:
        return

  def fetch(self, upto: int, logged: Callable[[int], bool] = lambda step: True) -> list:
    """[(step, {name: float})] of the pending steps up to ``upto``, read together and removed;
    raises ``NonFiniteLossError`` at the first step with a non-finite finite_metric. Of a step
    neither ``logged`` nor the newest, only the finite_metrics are read (each metric is a
    transfer of its own: a visible share of a millisecond step)."""
    n = 0
    while n < len(self.steps) and self.steps[n][0] <= upto:
      n += 1
    if not n:
      return []
    ready, self.steps = self.steps[:n], self.steps[n:]
    newest = ready[-1][0]
    wanted = [m if step == newest or logged(step) else
              {k: m[k] for k in self.finite if k in m} for step, m in ready]
    out = []
    for (step, _), values in zip(ready, self.to_host(wanted)):
      host = {k: float(v) for k, v in values.items()}
      _check_finite(host, self.finite, step)
      out.append((step, host))
      self.last = host
    return out


def evaluate_batches(state, eval_step, eval_iter, mesh, num_batches: int) -> dict:
  """{metric: float}: ``eval_step(state, batch)``'s means averaged over the next ``num_batches``
  host batches of ``eval_iter`` (each made a global batch on ``mesh``); read back once."""
  totals = None
  for _ in range(num_batches):
    m = eval_step(state, sharding.global_batch(next(eval_iter), mesh))
    totals = m if totals is None else jax.tree.map(jnp.add, totals, m)
  return {k: float(v) / num_batches for k, v in jax.device_get(totals).items()}


def _eval_gen_due(config, step: int, is_last: bool) -> bool:
  """Whether to evaluate the generator (``config.eval_gen``) at ``step``: every ``every`` steps
  (0: never) and at the last step when ``every > 0`` or ``at_end``."""
  g = config.get("eval_gen")
  if not g:
    return False
  every = int(g.get("every", 0))  # >= 0, checked by tasks.validate
  return (every > 0 and (step % every == 0 or is_last)) or (is_last and bool(g.get("at_end", False)))


def _eval_gen_enabled(config) -> bool:
  """Whether the run evaluates its generator at all (a last step is due iff every > 0 or at_end)."""
  return _eval_gen_due(config, 1, True)


# (config, mesh, task) -> ((state, step) -> {metric: float}): builds the evaluator of
# ``config.eval_gen`` (before training, so that a missing network fails at once) and returns the
# function the loop calls at each step the block makes due.
EvalGenHook = Callable[[ml_collections.ConfigDict, Any, Any], Callable[[Any, int], dict]]


def _write_samples(state, sample_fn, batch, writer, workdir: str, step: int) -> None:
  """Writes each named set of ``sample_fn(state, batch)`` by its kind (``samples.write``)."""
  sets = jax.device_get(sample_fn(state, batch))
  if jax.process_index() != 0:
    return
  for name, sample in sets.items():
    logging.info("Wrote %s", samples.write(name, sample, workdir, step, writer))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       eval_gen_hook: Optional[EvalGenHook] = None) -> dict:
  """Trains ``config.task`` to ``config.num_steps``, resuming from ``workdir`` if it has checkpoints.

  Writes ``workdir/metrics.jsonl``, TensorBoard events, ``workdir/samples/*.png`` and
  ``workdir/checkpoints/<step>``. Returns the last logged train metrics (floats), plus the last
  eval metrics under ``eval/`` keys. ``eval_gen_hook`` (``EvalGenHook``): the generator metrics
  of a ``config.eval_gen`` block, logged as split ``eval_gen``; a run whose block asks for them
  needs one (``genai_jax.eval.runner.eval_gen_hook``, which ``experiments/main.py`` passes).
  """
  tasks.validate(config)
  # Cheap checks first: each mistake ends in one line before data, compilation or checkpoints.
  if _eval_gen_enabled(config) and eval_gen_hook is None:
    every, at_end = config.eval_gen.get("every", 0), config.eval_gen.get("at_end", False)
    raise ConfigError(f"eval_gen.every={every} and eval_gen.at_end={at_end} ask for generator "
                      f"metrics, but train_and_evaluate got no eval_gen_hook; pass "
                      f"eval_gen_hook=genai_jax.eval.runner.eval_gen_hook (as experiments/main.py "
                      f"does), or set eval_gen.every=0 and eval_gen.at_end=False",
                      keys=("eval_gen.every", "eval_gen.at_end"))
  workdir_lib.check_writable(workdir)
  workdir_lib.check_resume(config, workdir)
  mesh = sharding.make_mesh(config.mesh.data, config.mesh.fsdp)
  sharding.check_global_batch(config.batch_size, mesh)
  is_main = jax.process_index() == 0
  pipelines.check_dataset(config.data)  # a missing or damaged dataset fails here, before any
  # compilation and before anything is written to the workdir

  task = tasks.get_task(config)
  spec = state_lib.sharded_init(task, mesh)
  checkpoints = ckpt_lib.Checkpoints(workdir, keep=config.keep_checkpoints)
  try:
    state, start_step = checkpoints.restore_or_init(
        spec.abstract, lambda: state_lib.initial_state(config, spec, mesh, get_task=tasks.get_task))
    evaluate_generator = None
    if _eval_gen_enabled(config) and start_step < config.num_steps:
      # Built before training: missing Inception weights or a bad metric fail now, not at the end.
      evaluate_generator = eval_gen_hook(config, mesh, task)
  except BaseException:
    checkpoints.close()
    raise
  workdir_lib.save_config(config, workdir)
  if is_main and start_step:
    print(f"resumed from {checkpoints.directory}/{start_step}" +
          (f"; it already reaches num_steps={config.num_steps}, nothing to train "
           f"(raise --config.num_steps to continue)" if start_step >= config.num_steps else ""),
          flush=True)

  # The next batch is read, decoded and (on accelerators) copied to the devices while the
  # current step runs.
  train_iter = prefetch.device_batches(
      pipelines.batches(config.data, config.data.train_split, config.batch_size, train=True,
                        seed=config.seed, start_step=start_step), mesh)
  train_step = state_lib.compile_train_step(task, mesh, spec.shardings)
  # Replicated outputs: every process can read metrics and samples (multi-host safe).
  eval_step = (jax.jit(task.eval_step, out_shardings=sharding.replicated(mesh))
               if task.eval_step and config.eval_batches > 0 else None)
  sample_fn = jax.jit(task.sample, out_shardings=sharding.replicated(mesh)) if task.sample else None
  writer = writers.MetricWriter(workdir, enabled=is_main)
  if is_main and task.baselines is not None and start_step < config.num_steps:
    reference = task.baselines()  # host-side, whole splits: only the process that logs reads them
    if reference:
      writer.scalars(start_step, reference, "baseline")
      print("baseline | " + " | ".join(f"{k} {v:.4f}" for k, v in reference.items()), flush=True)
  items = config.batch_size * task.items_per_example
  progress = writers.Progress(config.num_steps, start_step, items, task.unit)
  last_eval = {}
  sample_batch = None
  t_start = time.perf_counter()

  # Plain ints: a ConfigDict read costs microseconds, and these are read every step.
  num_steps, log_every = int(config.num_steps), int(config.log_every)
  eval_every, checkpoint_every = int(config.eval_every), int(config.checkpoint_every)
  eval_gen = _eval_gen_enabled(config)

  def is_log_step(step: int) -> bool:
    return step % log_every == 0 or step == start_step + 1

  # Metrics stay on the device until a step that needs them: a log step (fetched one step late,
  # while the next step runs), an evaluation, a checkpoint, the end. Each fetch reads every step
  # since the last at once and checks them all in order, so a NaN is still caught at the step it
  # appeared, at most one log interval later, and never saved in a checkpoint.
  pending = _PendingMetrics(task.finite_metrics,
                            on_cpu=all(d.platform == "cpu" for d in mesh.devices.flat))

  def log(step: int, host: dict) -> None:
    rate = progress.rate(step)  # the loop's own rate since the last log: data, step, saves
    writer.scalars(step, host, "train")
    if rate:
      writer.scalars(step, {"steps_per_s": rate, f"{task.unit}_per_s": rate * items}, "perf")
    if is_main:
      progress.line(step, host, rate)

  def fetch(upto: int, always: bool = False) -> None:
    """Fetches the metrics of the steps up to ``upto`` (stopping at the first non-finite one)
    and logs those of log steps, and of ``upto`` itself if ``always``."""
    logged = lambda step: is_log_step(step) or (always and step == upto)  # noqa: E731
    for step, host in pending.fetch(upto, logged):
      if logged(step):
        log(step, host)

  preempted = False
  first_batch = None
  try:
    if start_step < config.num_steps:
      # Compiled here, not at the first call: start-up (and its stop guard) ends with compiling.
      first_batch = next(train_iter)
      multihost.phase("compile")
      train_step = train_step.lower(state, first_batch).compile()
      train_iter.for_step(train_step)
    multihost.startup_done()  # stops are the loop's from here: a step boundary to save at
    for step in range(start_step + 1, num_steps + 1):
      if checkpoints.reached_preemption(step - 1):
        preempted = True
        process = (f" (process {jax.process_index()} of {jax.process_count()})"
                   if jax.process_count() > 1 else "")
        if step - 1 == start_step:  # nothing trained in this run: the newest checkpoint stands
          print(f"preempted before the first step: nothing to save; rerun the same command"
                f"{process}", flush=True)
          break
        fetch(step - 1)
        if checkpoints.latest_step() != step - 1:
          checkpoints.save(step - 1, state, force=True)
        checkpoints.wait()  # on disk before we say so
        print(f"preempted: checkpoint {step - 1} saved{process}; rerun the same command to "
              f"resume", flush=True)
        break
      checkpoints.check()  # a failed async save stops the run now, not one checkpoint later
      if first_batch is not None:
        batch, first_batch = first_batch, None
      else:
        batch = next(train_iter)
      state, metrics = train_step(state, batch)  # dispatched asynchronously
      pending.add(step, metrics)
      if step - 1 > start_step and is_log_step(step - 1):
        fetch(step - 1)  # the previous step's, while this one runs
      else:
        pending.wait(step - 1)  # at most this step ahead of the device, as a fetch would be

      is_last = step == num_steps
      if step % eval_every == 0 or is_last:
        fetch(step, always=True)
        if eval_step is not None:
          eval_iter = pipelines.batches(config.data, config.data.eval_split, config.batch_size,
                                        train=False, seed=config.seed)
          last_eval = evaluate_batches(state, eval_step, eval_iter, mesh, config.eval_batches)
          writer.scalars(step, last_eval, "eval")
          _check_finite(last_eval, last_eval, step, "eval")  # logged, then stop: the model diverged
          if is_main:
            print(f"eval step {step} | " + " | ".join(f"{k} {v:.4f}" for k, v in last_eval.items()),
                  flush=True)
        if sample_fn is not None:
          if sample_batch is None:  # the first eval batch, the same at every eval and on resume
            sample_batch = sharding.global_batch(next(pipelines.batches(
                config.data, config.data.eval_split, config.batch_size, train=False)), mesh)
          _write_samples(state, sample_fn, sample_batch, writer, workdir, step)
        writer.flush()
      if eval_gen and _eval_gen_due(config, step, is_last):
        fetch(step)  # a diverged model stops here, before minutes of sampling
        gen_metrics = evaluate_generator(state, step)
        writer.scalars(step, gen_metrics, "eval_gen")
        bad = [k for k, v in gen_metrics.items() if not np.isfinite(v)]
        if bad and is_main:  # a warning, not a stop: a degenerate sample set (e.g. FID's matrix
          # square root on collapsed samples) is a finding about the model, not a broken run
          print(f"warning: eval_gen {', '.join(bad)} not finite at step {step}", flush=True)
        if is_main:
          print(f"eval_gen step {step} | " + " | ".join(f"{k} {v:.4f}" for k, v in gen_metrics.items()),
                flush=True)
      if step % checkpoint_every == 0 or is_last:
        fetch(step)  # never save a state whose step went non-finite
        checkpoints.save(step, state, force=is_last)
    fetch(num_steps)
  finally:
    train_iter.close()
    checkpoints.close()
    writer.close()
  if is_main and config.num_steps > start_step and not preempted:
    print(f"done: {config.num_steps - start_step} steps in {time.perf_counter() - t_start:.1f}s; "
          f"outputs in {workdir}", flush=True)
  return {**pending.last, **{f"eval/{k}": v for k, v in last_eval.items()}}
