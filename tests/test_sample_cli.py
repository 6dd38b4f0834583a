"""The sampling CLI (python -m genai_jax.sample): grids from a checkpoint of any image family,
class rows for conditional models, sampler overrides, and one line per bad input.

Each family's workdir is written once per module: a tiny model trained a few steps on a
synthetic batch (no dataset), checkpointed, with its config.json, as a training run leaves it."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from experiments.configs import diffusion as diffusion_configs
from genai_jax import errors, sample
from genai_jax.train import checkpoint as ckpt_lib
from genai_jax.train import workdir as workdir_lib
from tests.helpers import override, run_steps, tiny_gan_config

# Every test samples from checkpoints that short trainings through the loop wrote (and one runs
# the command in a subprocess): the slow tier.
pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 8  # diffusion images
GAN_SIZE = 32  # sngan_resnet's smallest


def _diffusion_config(**overrides):
  """:digits_cond shrunk as tests/test_diffusion.py shrinks it (8x8, one U-Net level, one Euler
  step); a large learning rate, so that five steps (the first at warmup's rate 0) carry the class
  embedding's effect through the zero-initialised output layers into 8-bit pixels."""
  c = diffusion_configs.get_config("digits_cond")
  c.model.update(image_size=SIZE, width=64, channel_mult=(1,), num_res_blocks=0, attention_res=())
  c.data.update(image_size=SIZE, shards=8)
  c.sampler.update(name="euler", steps=1)
  c.optimizer.update(warmup=1, learning_rate=0.05)
  c.update(batch_size=16, num_samples=4)
  return override(c, overrides)


def _gan_config():
  """A class-conditional SNGAN-ResNet (conditional BN in G, projection D), as narrow as it goes."""
  return tiny_gan_config(**{
      "model.name": "sngan_resnet", "model.image_size": GAN_SIZE, "data.image_size": GAN_SIZE,
      "model.width": 16, "model.d_width": 16, "model.z_dim": 16, "model.num_classes": 10,
      "data.labels": True, "batch_size": 16, "objective.loss": "hinge"})


def _batch(config, size):
  rng = np.random.default_rng(0)
  n, c = config.batch_size, config.model.channels
  return {"image": rng.uniform(-1, 1, (n, size, size, c)).astype(np.float32),
          "label": (np.arange(n) % 10).astype(np.int32)}


def _trained_workdir(path, config, size, steps):
  # One device (a shorter compile); the CLI restores it onto the run's mesh of all 8.
  _, state, _ = run_steps(config, jax.devices()[:1], steps, _batch(config, size))
  checkpoints = ckpt_lib.Checkpoints(str(path))
  checkpoints.save(steps, state, force=True)
  checkpoints.wait()
  checkpoints.close()
  workdir_lib.save_config(config, str(path))
  return str(path)


@pytest.fixture(scope="module")
def diffusion_dir(tmp_path_factory):
  return _trained_workdir(tmp_path_factory.mktemp("diffusion"), _diffusion_config(), SIZE, steps=5)


@pytest.fixture(scope="module")
def gan_dir(tmp_path_factory):
  return _trained_workdir(tmp_path_factory.mktemp("gan"), _gan_config(), GAN_SIZE, steps=1)


@pytest.fixture(scope="module")
def dcgan_dir(tmp_path_factory):
  """An unconditional image family (the tiny DCGAN of tests/helpers.py)."""
  config = tiny_gan_config()
  return _trained_workdir(tmp_path_factory.mktemp("dcgan"), config, config.model.image_size,
                          steps=1)


def _png(path) -> np.ndarray:
  return np.asarray(Image.open(path))


def _cells(grid: np.ndarray, size: int) -> np.ndarray:
  """The grid's images uint8 [rows, cols, size, size] (2-px borders, as outputs.image_grid)."""
  rows, cols = (grid.shape[0] - 2) // (size + 2), (grid.shape[1] - 2) // (size + 2)
  return np.array([[grid[2 + r * (size + 2):2 + r * (size + 2) + size,
                         2 + q * (size + 2):2 + q * (size + 2) + size]
                    for q in range(cols)] for r in range(rows)])


def _error(**kwargs) -> str:
  """The one line the CLI prints for ``sample_grid(**kwargs)``'s UserError."""
  with pytest.raises(errors.UserError) as err:
    sample.sample_grid(**kwargs)
  line = errors.render(err.value)
  assert "\n" not in line
  return line


# --- grids -------------------------------------------------------------------------------------

def test_conditional_diffusion_grid_rows_hold_the_asked_classes(diffusion_dir):
  # 20 samples: 5 columns, 4 rows; row r = class r, as the loop's grid.
  path, step, labels = sample.sample_grid(diffusion_dir, num=20)
  assert path == os.path.join(diffusion_dir, "samples", "sample_step5.png") and step == 5
  np.testing.assert_array_equal(labels, np.repeat(np.arange(4), 5))
  grid = _png(path)
  assert grid.shape == (4 * (SIZE + 2) + 2, 5 * (SIZE + 2) + 2)  # gray: one channel
  # --label=3: every cell class 3. A sample depends only on its own noise and label, and the
  # noise of cell i is the same in both grids (same seed and size): row 3 agrees, the rows of
  # other classes do not; the sampler overrides land in the file name.
  path3, _, labels3 = sample.sample_grid(diffusion_dir, num=20, label="3", steps=1, guidance=2.0)
  assert os.path.basename(path3) == "sample_step5_label3_steps1_guidance2.png"
  assert set(labels3.tolist()) == {3}
  cells, cells3 = _cells(grid, SIZE), _cells(_png(path3), SIZE)
  np.testing.assert_array_equal(cells[3], cells3[3])
  for r in range(3):
    assert np.abs(cells[r].astype(int) - cells3[r]).max() > 8, r


def test_diffusion_steps_and_guidance_reach_the_sampler(diffusion_dir, tmp_path):
  out = lambda name: str(tmp_path / f"{name}.png")  # noqa: E731
  base = _png(sample.sample_grid(diffusion_dir, num=4, label="1", out=out("a"))[0])
  assert base.shape == (2 * (SIZE + 2) + 2,) * 2
  # The run's settings (1 Euler step, guidance 2) given explicitly: the same grid.
  same = _png(sample.sample_grid(diffusion_dir, num=4, label="1", steps=1, guidance=2.0,
                                 out=out("b"))[0])
  np.testing.assert_array_equal(base, same)
  for name, kw in (("steps", {"steps": 3}), ("guidance", {"guidance": 0.0})):
    other = _png(sample.sample_grid(diffusion_dir, num=4, label="1", out=out(name), **kw)[0])
    assert np.abs(other.astype(int) - base).max() > 0, name  # same settings: equal (above)


def test_conditional_gan_grid_and_class_balanced_batch_norm(gan_dir):
  from genai_jax import tasks
  from genai_jax.train import state as state_lib
  path, step, labels = sample.sample_grid(gan_dir, num=12, batch_size=8)  # two calls, the last padded
  assert step == 1 and labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
  assert _png(path).shape == (3 * (GAN_SIZE + 2) + 2, 4 * (GAN_SIZE + 2) + 2)
  path7, _, _ = sample.sample_grid(gan_dir, num=3, label="7")
  assert _png(path7).shape == (2 * (GAN_SIZE + 2) + 2,) * 2  # 2 columns, 2 rows, one empty cell
  # G's batch-mode BN sees a class-balanced batch whatever the labels asked: the class-3
  # samples come out the same whether the other asks are class 0 or class 1.
  config = workdir_lib.load_config(gan_dir)
  task = tasks.get_task(config)
  _, state = state_lib.restore(config, gan_dir, task=task)
  draw = jax.jit(task.generate_labelled)
  a = draw(state, jax.random.PRNGKey(0), jnp.array([3, 3, 0, 0])).images
  b = draw(state, jax.random.PRNGKey(0), jnp.array([3, 3, 1, 1])).images
  np.testing.assert_array_equal(a[:2], b[:2])
  assert float(jnp.abs(a[2:] - b[2:]).max()) > 1e-3


def test_unconditional_gan_grid_through_generate(dcgan_dir):
  path, step, labels = sample.sample_grid(dcgan_dir, num=5, seed=3)
  assert labels is None and os.path.basename(path) == "sample_step1_seed3.png"
  size = tiny_gan_config().model.image_size
  grid = _png(path)
  assert grid.shape[:2] == (2 * (size + 2) + 2, 3 * (size + 2) + 2)  # 3 columns, 2 rows
  cells = _cells(grid, size).reshape(-1, size, size)[:5]  # gray: one channel
  assert len({c.tobytes() for c in cells}) == 5  # five different samples
  assert _error(workdir=dcgan_dir, label="0").startswith(
      f"--label=0: {dcgan_dir} holds an unconditional model")


def test_command_line_end_to_end(gan_dir, tmp_path):
  out = tmp_path / "grid.png"
  r = subprocess.run([sys.executable, "-m", "genai_jax.sample", f"--workdir={gan_dir}",
                      "--num=4", "--label=5", f"--out={out}"], cwd=REPO, capture_output=True,
                     text=True, timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert r.returncode == 0, r.stderr[-3000:]
  assert r.stdout.strip() == f"wrote {out} (4 samples of step 1)"
  assert _png(out).shape == (2 * (GAN_SIZE + 2) + 2,) * 2
  r = subprocess.run([sys.executable, "-m", "genai_jax.sample", f"--workdir={gan_dir}",
                      "--steps=10"], cwd=REPO, capture_output=True, text=True, timeout=300,
                     env={**os.environ, "JAX_PLATFORMS": "cpu"})
  lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
  assert r.returncode == 1 and "Traceback" not in r.stderr and lines == [
      f"error: --steps applies to diffusion only (families with a sampler); {gan_dir} is a "
      f"'gan' run: drop --steps"], r.stderr[-3000:]


# --- one line per bad input --------------------------------------------------------------------

def _config_only_workdir(path, config) -> str:
  """A workdir holding only config.json: the checks below fail before any checkpoint is read."""
  workdir_lib.save_config(config, str(path))
  return str(path)


def test_bad_flags_are_one_line_each(diffusion_dir, gan_dir):
  assert "--num=0 must be at least 1" in _error(workdir=diffusion_dir, num=0)
  assert "--steps=0 must be at least 1" in _error(workdir=diffusion_dir, steps=0)
  assert "--label=12 is not a class of this model; pass --label in [0, 10)" in _error(
      workdir=diffusion_dir, label="12")
  assert "--label=-1 is not a class" in _error(workdir=gan_dir, label="-1")
  assert "--label=three is not a class index" in _error(workdir=gan_dir, label="three")
  assert "--guidance applies to diffusion only" in _error(workdir=gan_dir, guidance=1.0)


def test_steps_beyond_a_ddpm_schedule_name_the_flag(tmp_path):
  # The family's own check (sampler.steps <= objective.timesteps), reported against --steps.
  config = _diffusion_config(**{"objective.name": "ddpm_eps", "sampler.name": "ddim",
                                "objective.timesteps": 100})
  workdir = _config_only_workdir(tmp_path / "ddpm", config)
  assert _error(workdir=workdir, steps=500) == (
      "--steps does not fit this run: sampler.steps=500 exceeds objective.timesteps=100; set "
      "sampler.steps <= 100")
  assert _error(workdir=workdir, steps=100).startswith("no checkpoints in")


def test_unconditional_models_refuse_labels_and_guidance(tmp_path):
  config = _diffusion_config(**{"model.num_classes": 0, "data.labels": False,
                                "sampler.guidance": 0.0})
  workdir = _config_only_workdir(tmp_path / "uncond", config)
  assert _error(workdir=workdir, guidance=2.0).startswith(
      "--guidance=2 needs a class-conditional model")
  assert _error(workdir=workdir, label="3").startswith(
      f"--label=3: {workdir} holds an unconditional model")
  assert _error(workdir=workdir, label="all").startswith("--label=all")
  # guidance 0 is no guidance: accepted, and then the missing checkpoint is the error.
  assert _error(workdir=workdir, guidance=0.0).startswith("no checkpoints in")
  assert os.listdir(workdir) == ["config.json"]  # nothing created


def test_workdirs_without_checkpoints_or_images_name_the_fix(tmp_path):
  missing = tmp_path / "missing"
  assert "no such directory" in _error(workdir=str(missing))
  assert not missing.exists()
  workdir = _config_only_workdir(tmp_path / "empty", _diffusion_config())
  assert _error(workdir=workdir, num=4) == f"no checkpoints in {workdir}/checkpoints; pass the " \
                                           f"--workdir of a run that saved one"
  assert _error(workdir=workdir, step=7).startswith("no checkpoints in")
  assert os.listdir(workdir) == ["config.json"]
  from experiments.configs import gpt_shakespeare
  lm = _config_only_workdir(tmp_path / "lm", gpt_shakespeare.get_config("demo"))
  assert "sample it with python -m genai_jax.sample_lm --workdir=" in _error(workdir=lm)
