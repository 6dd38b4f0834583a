"""The GPU training scripts' static parts (scripts/device_bundle.sh, device_train.sh and their Python
stages), without running a training: shell syntax, the wheel list, the bundle's size accounting,
every stage's config overrides, and that the stages' entry points import no TensorFlow."""

import importlib.metadata
import os
import subprocess
import sys

import pytest

from tests import no_tensorflow

REPO = no_tensorflow.REPO
SCRIPTS = os.path.join(REPO, "scripts")
sys.path.insert(0, SCRIPTS)
import device_data  # noqa: E402
import device_train  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("script", ["device_bundle.sh", "device_train.sh", "device_bench.sh"])
def test_shell_syntax(script):
  proc = subprocess.run(["bash", "-n", os.path.join(SCRIPTS, script)], capture_output=True, text=True)
  assert proc.returncode == 0, proc.stderr


def _wheel_specs():
  with open(os.path.join(SCRIPTS, "device_wheels.txt")) as f:
    return [line.split("#")[0].strip() for line in f if line.split("#")[0].strip()]


def test_wheels_pinned_to_the_versions_tested_here():
  """Each carried wheel is pinned, and to the version this venv runs wherever it has it (the GPU
  run must read with the tfds/array_record the tests read with)."""
  specs = _wheel_specs()
  assert {"tensorflow-datasets", "array-record", "ml-collections", "tensorboard"} <= {
      s.split("==")[0] for s in specs}
  for spec in specs:
    name, sep, version = spec.partition("==")
    assert sep and version, f"{spec!r} is not pinned (name==version)"
    try:
      installed = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      continue
    if name in ("tensorflow-datasets", "array-record", "ml-collections", "tensorboard"):
      assert installed == version, f"{name}: the venv has {installed}, the bundle carries {version}"


def test_bundle_sizes_add_up_and_refuse_over_the_limit(tmp_path, monkeypatch):
  for part, kib in (("tfds", 3), ("whl", 2)):
    (tmp_path / part).mkdir()
    (tmp_path / part / "a.bin").write_bytes(b"x" * (kib * 1024 - 100))  # rounded up to whole KiB
  (tmp_path / "not_a_part.txt").write_text("ignored: only folders are parts")
  parts = device_data.sizes(str(tmp_path), REPO)
  assert parts["tfds"] == 3 and parts["whl"] == 2 and parts["checkout"] > 0
  assert parts["total"] == 5 + parts["checkout"]
  monkeypatch.setattr(device_data, "LIMIT_MIB", (parts["total"] - 1) / 1024)
  with pytest.raises(ValueError, match=r"over .* drop something from .*tfds"):
    device_data.sizes(str(tmp_path), REPO)


@pytest.mark.parametrize("scale", sorted(device_train.SCALES))
@pytest.mark.parametrize("model", sorted(device_train.MODELS))
def test_stage_overrides_name_existing_config_keys(model, scale, tmp_path):
  (tmp_path / "datasets.json").write_text('{"mnist": "sklearn_digits", "text": "python_stdlib_text"}')
  s = device_train.SCALES[scale][model]
  assert 0 < s["n1"] < s["n2"]
  for run in (1, 2):
    cfg = device_train.config_of(model, device_train.overrides(model, scale, str(tmp_path), run))
    assert cfg.num_steps == (s["n1"] if run == 1 else s["n2"])
    assert cfg.checkpoint_every and s["n1"] % cfg.checkpoint_every == 0  # run 1 ends on a checkpoint
  assert cfg.data.name == {"gan": "sklearn_digits", "vae": "sklearn_digits",
                           "gpt": "python_stdlib_text"}[model]


@pytest.mark.slow
def test_entry_points_import_without_tensorflow():
  # What the stage process imports itself (the trainings run as `python -m experiments.X`, whose
  # modules tests/test_no_tensorflow.py covers; each defines --workdir, so not all in one process).
  code = ("import sys; sys.path.insert(0, 'scripts'); import device_train, device_data; "
          "import benchmarks.accelerator, experiments.class_accuracy, genai_jax.train.loop; "
          "import genai_jax.data.builders, genai_jax.eval.classifier; "
          "[device_train.config_of(m, {}) for m in device_train.MODELS]; print('ok')")
  result = no_tensorflow.run(["-c", code], timeout=120)
  assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]
  assert not no_tensorflow.attempts(result.stderr)
