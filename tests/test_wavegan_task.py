"""WaveGAN as a preset of the one GAN task: the wavegan_sc09 config at full size (abstractly),
training on audio batches with phase shuffle in training only, Audio samples and fd_logmel."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import wavegan as wavegan_config
from genai_jax import samples, tasks
from genai_jax.errors import ConfigError
from genai_jax.eval import runner, sampling
from tests.helpers import override, run_steps


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_wavegan_sc09_is_the_papers_setup_at_full_size():
  c = wavegan_config.get_config("wavegan_sc09")
  tasks.validate(c)
  assert (c.task, c.model.name, c.data.kind, c.data.name) == ("gan", "wavegan", "audio", "sc09")
  assert (c.objective.loss, c.objective.gp_weight, c.n_dis, c.batch_size) == ("wgan_gp", 10.0, 5, 320)
  assert (c.optimizer.learning_rate, c.optimizer.b1, c.optimizer.b2) == (1e-4, 0.5, 0.9)
  assert (c.model.width, c.model.layers, c.model.phase_shuffle, c.data.length) == (64, 5, 2, 16_384)
  task = tasks.get_task(c)
  state = jax.eval_shape(task.init, jax.random.PRNGKey(0))
  # The paper's Table 2/3 with d = 64: G Dense(100 -> 16 * 1024), then 25-tap transposed convs
  # 1024 -> 512 -> 256 -> 128 -> 64 -> 1; D 25-tap stride-4 convs 1 -> 64 -> ... -> 1024, then
  # Dense(16 * 1024 -> 1). Every layer has a bias.
  g = [1024, 512, 256, 128, 64, 1]
  d = [1, 64, 128, 256, 512, 1024]
  conv = lambda widths: sum(25 * a * b + b for a, b in zip(widths, widths[1:]))
  assert _count(state.g_params) == 100 * 16 * 1024 + 16 * 1024 + conv(g)
  assert _count(state.d_params) == conv(d) + 16 * 1024 + 1
  assert sampling.sample_kind(task) is samples.Audio
  clips = jax.eval_shape(lambda s, k: task.generate(s, k, 3), state, jax.random.PRNGKey(0))
  assert clips.waveforms.shape == (3, 16_384, 1) and clips.sample_rate == 16_000
  assert runner.parse_metrics(c.eval_gen.metrics, samples.Audio) == ("fd_logmel", "is_sc09",
                                                                     "fd_sc09")


def _tiny(**overrides):
  """wavegan_sc09 with the model shrunk (2 layers of width 4: 256 samples) on the tiny chorales."""
  c = wavegan_config.get_config("wavegan_sc09")
  c.model.update(width=4, layers=2)
  c.data.update(name="bach_chorales_audio/tiny", length=256, shards=2, shuffle_buffer=16)
  # n_dis 2, not the preset's 5: the same code path (early D steps, then D and G sharing fakes)
  # compiles in less than half the time. 16 = n_dis 2 x 8 devices.
  c.update(n_dis=2, batch_size=16, num_steps=2, log_every=1, eval_every=2, checkpoint_every=2,
           eval_batches=1, num_samples=4)
  c.eval_gen.update(every=0, at_end=True, num_samples=16, metrics="fd_logmel")  # is_sc09: sc09 only
  return override(c, overrides)


@pytest.mark.slow
def test_wavegan_trains_on_chorale_clips_and_writes_audio(tfds_dir, tmp_path):
  from genai_jax.train.loop import train_and_evaluate
  workdir = str(tmp_path / "wg")
  out = train_and_evaluate(_tiny(), workdir, eval_gen_hook=runner.eval_gen_hook)
  assert np.isfinite(out["d_loss"]) and np.isfinite(out["gp"]) and "eval/d_loss" in out
  step_dir = os.path.join(workdir, "samples", "step_0000002")
  assert sorted(os.listdir(step_dir)) == [f"{i}.wav" for i in range(4)]
  assert os.path.exists(os.path.join(workdir, "samples", "latest.png"))
  import scipy.io.wavfile
  rate, pcm = scipy.io.wavfile.read(os.path.join(step_dir, "0.wav"))
  assert (rate, pcm.shape, pcm.dtype) == (16_000, (256,), np.int16)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    gen = [json.loads(line) for line in f if '"eval_gen"' in line]
  assert gen[-1]["step"] == 2 and np.isfinite(gen[-1]["fd_logmel"]) and gen[-1]["fd_logmel"] > 0


@pytest.mark.slow
def test_phase_shuffle_in_training_only(tfds_dir):
  """One train step differs with phase shuffle on and off (same init); D's held-out outputs are
  deterministic and do not shuffle."""
  rng = np.random.default_rng(0)
  batch = {"audio": rng.uniform(-0.5, 0.5, (8, 256, 1)).astype(np.float32)}
  # One device, one D step and no penalty compile fastest; D's rng path is the same.
  fast = {"n_dis": 1, "batch_size": 8, "objective.loss": "hinge"}
  runs = {n: run_steps(_tiny(**fast, **{"model.phase_shuffle": n}), jax.devices()[:1], 1, batch)
          for n in (0, 2)}
  assert runs[0][2][0]["d_loss"] != runs[2][2][0]["d_loss"]
  task0, state0, _ = runs[0]
  task2, _, _ = runs[2]
  clips = jnp.asarray(batch["audio"][:8])
  a, b = task0.discriminate(state0, clips), task2.discriminate(state0, clips)
  np.testing.assert_array_equal(a, b)  # same weights: no shuffle outside training
  ev = jax.jit(task2.eval_step)
  np.testing.assert_array_equal(jax.device_get(ev(state0, {"audio": clips}))["d_loss"],
                                jax.device_get(ev(state0, {"audio": clips}))["d_loss"])


@pytest.mark.parametrize("overrides, match", [
    ({"data.length": 1_024}, r"makes samples of shape \(256, 1\) but the data"),
    ({"data.sample_rate": 0}, "needs the clips' rate"),
    ({"augment.policy": "translation"}, "DiffAugment works on images"),
])
def test_wavegan_config_errors_name_the_fix(overrides, match):
  with pytest.raises(ConfigError, match=match):
    tasks.get_task(_tiny(**overrides))


def test_sample_rate_is_checked_against_the_dataset(tfds_dir):
  from genai_jax.data import pipelines
  c = _tiny(**{"data.sample_rate": 22_050})
  with pytest.raises(ConfigError, match="recorded at 16000 Hz"):
    next(pipelines.batches(c.data, "train", 8, train=True))
