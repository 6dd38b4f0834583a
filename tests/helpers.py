"""Test helpers importable without side effects (conftest configures devices; workers must not)."""


def tiny_gan_config(**overrides):
  """The demo preset shrunk so a train step compiles and runs in about a second."""
  from experiments.configs import dcgan_celeba
  c = dcgan_celeba.get_config("demo")
  c.model.update(width=8, image_size=16)
  c.data.update(image_size=16)
  c.update(batch_size=16, num_steps=6, log_every=1, eval_every=3, checkpoint_every=3,
           num_samples=16, eval_batches=1)
  c.eval_gen.update(at_end=False)  # Inception on CPU is too slow for tests; they opt in
  return override(c, overrides)


# The CLI flags that give tiny_gan_config's shapes, for tests that run the experiment as a user would.
TINY_FLAGS = ["--config=experiments/configs/dcgan_celeba.py:demo", "--config.model.width=8",
              "--config.model.image_size=16", "--config.data.image_size=16",
              "--config.batch_size=16", "--config.log_every=1", "--config.eval_every=100000",
              "--config.num_samples=16"]


def train_rows(workdir) -> dict:
  """{step: (d_loss, g_loss)} of a GAN run's metrics.jsonl train rows (a step logged twice: last)."""
  import json
  import os
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  return {r["step"]: (r["d_loss"], r["g_loss"]) for r in rows if r["split"] == "train"}


def override(config, overrides: dict):
  """Sets dotted keys ({"data.name": ...}) on ``config``, as --config.KEY=VALUE would; returns it."""
  for k, v in overrides.items():
    node = config
    *path, last = k.split(".")
    for p in path:
      node = node[p]
    node[last] = v
  return config


def run_steps(config, devices, steps: int, batch: dict):
  """``steps`` compiled train steps of ``config``'s task on a mesh over ``devices``, all on the same
  host ``batch``; returns (task, state, [per-step metrics on the host])."""
  import jax
  from genai_jax import tasks
  from genai_jax.train import sharding
  from genai_jax.train import state as state_lib
  mesh = sharding.make_mesh(devices=devices)
  task = tasks.get_task(config)
  spec = state_lib.sharded_init(task, mesh)
  state = spec.init(jax.random.PRNGKey(config.seed))
  step_fn = state_lib.compile_train_step(task, mesh, spec.shardings)
  history = []
  for _ in range(steps):
    state, metrics = step_fn(state, sharding.global_batch(batch, mesh))
    history.append(jax.device_get(metrics))
  return task, state, history
