"""Training, evaluation and sampling without TensorFlow (the JAX images of TPU and GPU VMs have
none): each check runs in a subprocess where TensorFlow cannot be imported (tests/no_tensorflow.py);
datasets are prepared (which needs TensorFlow) beforehand in this process."""

import json
import os
import time

import numpy as np
import pytest

from tests import no_tensorflow
from tests.helpers import override

pytestmark = pytest.mark.slow  # every test runs Python subprocesses without TensorFlow (CLIs, demos)

# The modules the training (experiments.*), evaluation (genai_jax.eval) and sampling
# (genai_jax.sample_lm, genai_jax.sample) commands import, their lazy imports included.
CLI_MODULES = [
    "experiments.main", "experiments.dcgan_celeba", "experiments.vae_mnist",
    "experiments.gpt_shakespeare", "experiments.bach_chorales", "experiments.wavegan",
    "experiments.cyclegan", "genai_jax.cli", "genai_jax.train.distributed", "genai_jax.train.loop",
    "genai_jax.tasks.gan", "genai_jax.tasks.vae", "genai_jax.tasks.lm", "genai_jax.tasks.cyclegan",
    "genai_jax.eval.__main__", "genai_jax.eval.runner", "genai_jax.eval.sc09_classifier",
    "genai_jax.sample_lm", "genai_jax.sample", "genai_jax.eval.sampling", "genai_jax.outputs",
    "genai_jax.continuation", "genai_jax.samples", "genai_jax.music",
    "genai_jax.train.writers", "genai_jax.train.checkpoint", "genai_jax.train.state",
    "genai_jax.train.workdir", "genai_jax.storage",
]

def _check(result, what: str) -> None:
  """Fails unless ``result`` (a no_tensorflow.run) succeeded without trying TensorFlow."""
  tried = no_tensorflow.attempts(result.stderr)
  assert not tried, f"{what} imports TensorFlow from {sorted(set(tried))}:\n{result.stderr[-3000:]}"
  assert result.returncode == 0, result.stderr[-3000:]


def test_the_harness_hides_tensorflow_as_if_not_installed():
  r = no_tensorflow.run(["-c", (
      "import importlib.util, sys\n"
      "assert importlib.util.find_spec('tensorflow') is None\n"
      "import tensorflow_datasets\n"  # tfds tells an absent TensorFlow from a present one
      "try:\n  import tensorflow.compat.v2\nexcept ModuleNotFoundError: print('hidden')\n"
      "assert 'tensorflow' not in sys.modules\n")], timeout=300)
  assert r.returncode == 0 and r.stdout.strip() == "hidden", r.stderr[-2000:]
  assert len(no_tensorflow.attempts(r.stderr)) == 1  # the try above, reported with its line


def test_training_evaluation_and_sampling_commands_import_no_tensorflow():
  # Each command module's flags are dropped after its import: the commands are separate
  # processes, and some define the same flag (--workdir).
  code = ("import importlib\n"
          "from absl import flags\n"
          "base = set(flags.FLAGS)\n"
          f"for m in {CLI_MODULES!r}:\n"
          "  try:\n    importlib.import_module(m)\n"
          "  except ModuleNotFoundError as e:\n"  # go on: every importer of TensorFlow is reported
          "    if e.name != 'tensorflow': raise\n"
          "  for name in set(flags.FLAGS) - base:\n"
          "    delattr(flags.FLAGS, name)\n")
  _check(no_tensorflow.run(["-c", code], timeout=300), "the commands' modules")


_OUTPUTS = """
import os, sys
import jax, jax.numpy as jnp, numpy as np, ml_collections
from genai_jax import samples
from genai_jax.train import checkpoint, state, workdir as workdir_lib, writers
wd = sys.argv[1]
workdir_lib.check_writable(wd)
workdir_lib.save_config(ml_collections.ConfigDict({"task": "gan", "num_steps": 3}), wd)
assert workdir_lib.load_config(wd).num_steps == 3
w = writers.MetricWriter(wd)
w.scalars(1, {"loss": 0.5}); w.scalars(2, {"loss": 0.25})
rng = np.random.default_rng(0)
samples.write("images", samples.Images(rng.uniform(-1, 1, (4, 8, 8, 3)).astype(np.float32)), wd, 2, w)
samples.write("audio", samples.Audio(rng.uniform(-1, 1, (2, 2048, 1)).astype(np.float32), 8000), wd, 2, w)
samples.write("text", samples.Tokens(np.array([[72, 105], [79, 75]], np.int32),
                                     lambda row: bytes(row.astype(np.uint8)).decode()), wd, 2, w)
roll = np.full((1, 16, 4), -1, np.int32); roll[0, :, 0] = 60
samples.write("music", samples.PianoRoll(roll), wd, 2, w)
w.close()
tree = {"w": jnp.arange(6.0), "step": jnp.int32(2)}
ckpt = checkpoint.Checkpoints(wd)
ckpt.save(2, tree, force=True); ckpt.close()
os.makedirs(os.path.join(wd, "checkpoints", "3.orbax-checkpoint-tmp-99", "default"))
ckpt = checkpoint.Checkpoints(wd)  # removes the interrupted save
abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)
restored, step = ckpt.restore_or_init(abstract, lambda: None)
ckpt.close()
assert step == 2 and np.array_equal(restored["w"], np.arange(6.0)), (step, restored)
state.check_has_checkpoints(wd, 2)
print("ok")
"""


def test_outputs_and_checkpoints_without_tensorflow_show_in_tensorboard(tmp_path):
  wd = str(tmp_path / "run")
  r = no_tensorflow.run(["-c", _OUTPUTS, wd], timeout=300)
  _check(r, "writing metrics, samples and checkpoints")
  assert r.stdout.strip().endswith("ok") and "3.orbax-checkpoint-tmp-99" in r.stdout
  assert sorted(os.listdir(os.path.join(wd, "checkpoints"))) == ["2"]
  for f in ("images/latest.png", "audio/step_0000002/1.wav", "audio/latest.png",
            "text/latest.txt", "music/latest/0.mid", "music/latest/0.wav", "config.json"):
    assert os.path.getsize(os.path.join(wd, f)) > 0, f
  rows = [json.loads(line) for line in open(os.path.join(wd, "metrics.jsonl"))]
  assert [(r["step"], r["loss"]) for r in rows] == [(1, 0.5), (2, 0.25)]

  from tensorboard.backend.event_processing import event_accumulator as ea
  acc = ea.EventAccumulator(wd, size_guidance={ea.IMAGES: 0, ea.AUDIO: 0, ea.TENSORS: 0})
  acc.Reload()
  assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [(1, 0.5), (2, 0.25)]
  grid = acc.Images("images")[0]  # 4 images of 8x8 in a 2x2 grid with 2-px borders
  assert (grid.step, grid.height, grid.width) == (2, 22, 22)
  from PIL import Image
  import io
  assert np.asarray(Image.open(io.BytesIO(grid.encoded_image_string))).shape == (22, 22, 3)
  assert {"audio/audio/0", "audio/audio/1", "music/audio/0"} <= set(acc.Tags()["audio"])
  assert {"audio_log_mel", "music"} <= set(acc.Tags()["images"])
  text = acc.Tensors("text")[0].tensor_proto.string_val[0].decode()
  assert "=== sample 0 ===\nHi" in text and "=== sample 1 ===\nOK" in text


# One demo preset per family (GAN, VAE, LM, masked LM on music, audio GAN, CycleGAN); the chorale
# ones on the tiny chorale subset, which preparing takes seconds rather than minutes; WaveGAN
# (one D step) and CycleGAN (one residual block) compile in about half the time.
_DEMOS = [("dcgan_celeba", "demo", {}), ("vae_mnist", "demo", {}), ("gpt_shakespeare", "demo", {}),
          ("bach_chorales", "demo", {"data.name": "bach_chorales/tiny"}),
          ("wavegan", "chorales_demo", {"data.name": "bach_chorales_audio/tiny", "n_dis": 1}),
          ("cyclegan", "faces_edges_demo", {"model.res_blocks": 1})]

_TRAIN = """
import importlib, json, sys, time
from genai_jax.train.loop import train_and_evaluate
from tests.helpers import override
for module, preset, overrides, wd in json.loads(sys.argv[1]):
  t = time.perf_counter()
  for steps in (2, 3):  # 2 steps and a checkpoint, then a resume from it to step 3
    c = override(importlib.import_module(f"experiments.configs.{module}").get_config(preset),
                 overrides)
    # No eval step (its own tests cover it); the last step still writes samples of each kind.
    c.update(num_steps=steps, log_every=1, eval_every=10**6, checkpoint_every=2, eval_batches=0)
    if "eval_gen" in c:
      c.eval_gen.at_end = False
    train_and_evaluate(c, wd)
  print(f"trained {module}:{preset} in {time.perf_counter() - t:.0f} s", flush=True)
"""


def test_every_family_demo_trains_and_resumes_without_tensorflow(tfds_dir, tmp_path):
  from genai_jax.data import pipelines
  import importlib
  runs = []
  for module, preset, overrides in _DEMOS:  # building a dataset needs TensorFlow: here, not there
    config = importlib.import_module(f"experiments.configs.{module}").get_config(preset)
    pipelines.get_builder(override(config, overrides).data)
    runs.append((module, preset, overrides, str(tmp_path / f"{module}_{preset}")))
  t = time.perf_counter()
  # The resume compiles the same steps again: JAX's compilation cache serves them (~30% less).
  cache = {"JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax_cache"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
  r = no_tensorflow.run(["-c", _TRAIN, json.dumps(runs)], timeout=900, extra_env=cache)
  _check(r, "training")
  print(f"{len(runs)} demos, 3 steps each with a resume: {time.perf_counter() - t:.0f} s\n" +
        "\n".join(line for line in r.stdout.splitlines() if line.startswith("trained")))
  for module, preset, _, wd in runs:
    assert f"resumed from {wd}/checkpoints/2" in r.stdout, (module, r.stdout[-2000:])
    steps = [json.loads(line)["step"] for line in open(os.path.join(wd, "metrics.jsonl"))
             if json.loads(line)["split"] == "train"]
    assert sorted(set(steps)) == [1, 2, 3], (module, steps)
    assert sorted(os.listdir(os.path.join(wd, "checkpoints"))) == ["2", "3"], module
