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
  from genai_jax import config_utils
  return config_utils.override(config, overrides)


def run_steps(config, devices, steps: int, batch: dict, fsdp: int = 1):
  """``steps`` compiled train steps of ``config``'s task on a mesh over ``devices`` (``fsdp`` of
  them on the 'fsdp' axis), all on the same host ``batch``; returns (task, state, [per-step
  metrics on the host])."""
  import jax
  from genai_jax import tasks
  from genai_jax.train import sharding
  from genai_jax.train import state as state_lib
  mesh = sharding.make_mesh(fsdp=fsdp, devices=devices)
  task = tasks.get_task(config)
  spec = state_lib.sharded_init(task, mesh)
  state = spec.init(jax.random.PRNGKey(config.seed))
  step_fn = state_lib.compile_train_step(task, mesh, spec.shardings)
  history = []
  for _ in range(steps):
    state, metrics = step_fn(state, sharding.global_batch(batch, mesh))
    history.append(jax.device_get(metrics))
  return task, state, history


def tone(digit):
  """The pitch in Hz that stands for ``digit`` in ``make_speech_commands``' clips."""
  return 300 + 120 * digit


def make_speech_commands(root, per_word: int = 6, tar: bool = False, seed: int = 0,
                         version: str = "v0.02") -> dict:
  """A miniature Speech Commands archive under ``root`` (a manual dir): ``per_word`` 16-bit
  16 kHz WAVs per digit word, each a tone whose pitch says the digit (``tone``: 300 + 120 * d Hz,
  jittered, random gain, onset and end, some clips shorter than 1 s), plus non-digit words and
  ``_background_noise_`` that SC09 must leave out, and the two list files (the last two speakers
  of each word in validation, the two before in test). Extracted as ``speech_commands_<version>/``
  or, with ``tar``, packed as ``speech_commands_<version>.tar.gz`` (members named './word/...',
  as in the real archive). Returns {'train' | 'validation' | 'test': {relative path: (label,
  int16 wave)}} of the digit clips."""
  import io
  import os
  import tarfile
  import numpy as np
  import scipy.io.wavfile
  digits = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
  rng = np.random.default_rng(seed)
  files, clips = {}, {"train": {}, "validation": {}, "test": {}}
  val, test = [], []

  def wav(x):
    buf = io.BytesIO()
    scipy.io.wavfile.write(buf, 16_000, x)
    return buf.getvalue()

  for word in digits + ("yes", "marvin"):
    for i in range(per_word):
      n = 16_000 if i % 3 else 12_000  # some recordings are shorter than 1 s
      t = np.arange(n) / 16_000
      d = digits.index(word) if word in digits else 10 + len(word)
      freq = tone(d) * rng.uniform(0.98, 1.02)
      env = (t > rng.uniform(0.02, 0.1)) & (t < rng.uniform(0.85, 0.95))  # sounds in any 0.25 s crop
      x = rng.uniform(0.2, 0.6) * np.sin(2 * np.pi * freq * t) * env + rng.normal(0, 0.01, n)
      x = np.rint(np.clip(x, -1, 1) * 32767).astype(np.int16)
      path = f"{word}/{i:04x}beef_nohash_{i % 2}.wav"
      files[path] = wav(x)
      split = "validation" if i >= per_word - 2 else "test" if i >= per_word - 4 else "train"
      (val if split == "validation" else test if split == "test" else []).append(path)
      if word in digits:
        clips[split][path] = (digits.index(word), x)
  files["_background_noise_/white_noise.wav"] = wav(
      (rng.normal(0, 0.1, 24_000) * 32767).astype(np.int16))
  files["validation_list.txt"] = ("\n".join(val) + "\n").encode()
  files["testing_list.txt"] = ("\n".join(test) + "\n").encode()
  files["README.md"] = b"miniature Speech Commands for tests\n"
  os.makedirs(root, exist_ok=True)
  if tar:
    with tarfile.open(os.path.join(root, f"speech_commands_{version}.tar.gz"), "w:gz") as t:
      for path, data in files.items():
        info = tarfile.TarInfo("./" + path)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
  else:
    for path, data in files.items():
      full = os.path.join(root, f"speech_commands_{version}", path)
      os.makedirs(os.path.dirname(full), exist_ok=True)
      with open(full, "wb") as f:
        f.write(data)
  return clips
