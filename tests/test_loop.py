"""The shared loop end to end: outputs, exact resume, NaN stop, and user-error messages."""

import json
import os
import subprocess
import sys

import pytest

from genai_jax.errors import ConfigError, NonFiniteLossError
from genai_jax.train.loop import train_and_evaluate
from tests.conftest import REPO
from tests.helpers import tiny_gan_config


def _losses(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  return {r["step"]: (r["d_loss"], r["g_loss"]) for r in rows if r["split"] == "train"}


@pytest.mark.slow
def test_outputs_and_resume_reproduce_an_uninterrupted_run(tfds_dir, tmp_path):
  full, split = str(tmp_path / "full"), str(tmp_path / "split")
  result = train_and_evaluate(tiny_gan_config(num_steps=6), full)
  assert set(result) >= {"d_loss", "g_loss", "eval/d_acc_real", "eval/d_acc_fake"}
  assert sorted(os.listdir(os.path.join(full, "checkpoints"))) == ["3", "6"]
  assert os.path.getsize(os.path.join(full, "samples", "latest.png")) > 100
  assert os.path.exists(os.path.join(full, "samples", "step_0000003.png"))
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(full))

  train_and_evaluate(tiny_gan_config(num_steps=3), split)  # "interrupted" after step 3
  train_and_evaluate(tiny_gan_config(num_steps=6), split)  # resumes from checkpoint 3
  want, got = _losses(full), _losses(split)
  assert sorted(got) == list(range(1, 7))
  for step in range(1, 7):  # same data position, rng and state: the same numbers
    assert got[step] == pytest.approx(want[step], rel=1e-6, abs=1e-7), step


@pytest.mark.slow
def test_metrics_fetched_at_log_steps_equal_those_read_every_step(tfds_dir, tmp_path):
  every = train_and_evaluate(tiny_gan_config(num_steps=7), str(tmp_path / "every"))
  # Logged: step 1, the log steps 4, the evaluations at 3 and 6, the last step 7.
  sparse = train_and_evaluate(tiny_gan_config(num_steps=7, log_every=4), str(tmp_path / "sparse"))
  want, got = _losses(tmp_path / "every"), _losses(tmp_path / "sparse")
  assert sorted(got) == [1, 3, 4, 6, 7]
  assert {s: want[s] for s in got} == got  # the same values, bit for bit
  assert sparse == every


@pytest.mark.slow
def test_nan_is_named_at_its_first_step_and_never_checkpointed(tfds_dir, tmp_path):
  nan = {"optimizer.learning_rate": 1e38, "num_steps": 12, "eval_every": 1000}
  with pytest.raises(NonFiniteLossError) as every:  # each step's metrics fetched: the reference
    train_and_evaluate(tiny_gan_config(**nan, checkpoint_every=1000), str(tmp_path / "every"))
  # Metrics fetched at log steps (every 5) and before each save (every 2): the same first step
  # and loss, and no checkpoint of a state at or after it.
  with pytest.raises(NonFiniteLossError) as sparse:
    train_and_evaluate(tiny_gan_config(**nan, log_every=5, checkpoint_every=2),
                       str(tmp_path / "sparse"))
  assert str(sparse.value) == str(every.value)
  bad = int(str(every.value).split(" at step ")[1].split()[0])
  saved = [int(n) for n in os.listdir(tmp_path / "sparse" / "checkpoints") if n.isdigit()]
  assert all(s < bad for s in saved), (saved, bad)


@pytest.mark.slow
def test_keep_n_checkpoints(tfds_dir, tmp_path):
  train_and_evaluate(tiny_gan_config(num_steps=5, checkpoint_every=1, eval_every=5,
                                     keep_checkpoints=2), str(tmp_path))
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["4", "5"]


@pytest.mark.slow
def test_nan_stops_with_step_and_loss(tfds_dir, tmp_path):
  config = tiny_gan_config(num_steps=20, **{"optimizer.learning_rate": 1e38})
  with pytest.raises(NonFiniteLossError, match=r"(d_loss|g_loss) became (nan|inf) at step \d+"):
    train_and_evaluate(config, str(tmp_path))


def test_batch_not_divisible_by_devices(tfds_dir, tmp_path):
  with pytest.raises(ConfigError, match="batch_size=12 is not divisible by the 8 devices.*multiple of 8"):
    train_and_evaluate(tiny_gan_config(batch_size=12), str(tmp_path))


def test_mismatched_sizes_are_a_config_error(tfds_dir, tmp_path):
  with pytest.raises(ConfigError, match="data.image_size=32 != model.image_size=16"):
    train_and_evaluate(tiny_gan_config(**{"data.image_size": 32}), str(tmp_path))


def test_eval_gen_without_its_hook_is_one_line_naming_the_hook(tmp_path):
  workdir = tmp_path / "run"
  with pytest.raises(ConfigError, match=r"eval_gen.every=3 and eval_gen.at_end=False ask for "
                     r"generator metrics, but train_and_evaluate got no eval_gen_hook; pass "
                     r"eval_gen_hook=genai_jax.eval.runner.eval_gen_hook") as e:
    train_and_evaluate(tiny_gan_config(**{"eval_gen.every": 3}), str(workdir))
  assert "\n" not in str(e.value) and not workdir.exists()  # failed before writing anything


def _cli(*args, env=None):
  return subprocess.run([sys.executable, "-m", "experiments.dcgan_celeba", *args], cwd=REPO,
                        capture_output=True, text=True, timeout=300,
                        env={**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})})


@pytest.mark.slow
def test_cli_bad_config_key_is_one_clear_line(tmp_path):
  r = _cli("--config=experiments/configs/dcgan_celeba.py:demo", "--config.model.widht=3",
           f"--workdir={tmp_path}")
  assert r.returncode != 0
  assert "no config key 'widht' (did you mean 'width'?)" in r.stderr, r.stderr[-2000:]
  assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr[-2000:]


@pytest.mark.slow
def test_cli_without_celeba_explains_how_to_prepare_it(tmp_path):
  r = _cli(f"--workdir={tmp_path / 'w'}", env={"TFDS_DATA_DIR": str(tmp_path / "empty")})
  assert r.returncode == 1
  assert "tfds build celeb_a" in r.stderr and "dcgan_celeba.py:demo" in r.stderr
  assert "Traceback" not in r.stderr, r.stderr[-2000:]
