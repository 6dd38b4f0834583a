"""The family table (genai_jax.tasks.FAMILIES): every family module exposes the same names, each
config.task belongs to one family, families load lazily and alone, and config validation runs
the family-free and the family checks."""

import importlib
import subprocess
import sys

import jax.numpy as jnp
import pytest

from experiments.configs import dcgan_celeba, gpt_shakespeare
from genai_jax import config_utils, tasks
from genai_jax.errors import ConfigError, render
from tests.helpers import override

CONTRACT = ("make_task", "model_settings", "MODELS", "SHARED_KEYS")


@pytest.mark.parametrize("name", sorted(tasks.FAMILIES))
def test_every_family_module_exposes_the_contract(name):
  module = importlib.import_module(tasks.FAMILIES[name].module)
  missing = [n for n in CONTRACT if not hasattr(module, n)]
  assert not missing, f"{tasks.FAMILIES[name].module} lacks {missing}"


def test_each_task_belongs_to_one_family():
  names = tasks.task_names()
  assert len(names) == len(set(names)), names
  for family, f in tasks.FAMILIES.items():
    for task in f.tasks:
      assert tasks.family_name(task) == family


def test_an_unknown_task_names_the_key_and_the_choices():
  with pytest.raises(ConfigError, match=r"task='rnn' is no family's task; set task to one of") as e:
    tasks.get_task(override(dcgan_celeba.get_config("demo"), {"task": "rnn"}))
  assert e.value.keys == ("task",)
  assert "set --config.task to one of ['gan'," in render(e.value)


def test_one_family_never_loads_another():
  code = ("import sys\n"
          "from experiments.configs import vae_mnist\n"
          "from genai_jax import tasks\n"
          "tasks.check_model(vae_mnist.get_config('demo'))\n"
          "loaded = sorted(m for m in sys.modules if m.startswith('genai_jax.tasks.'))\n"
          "print(loaded)\n")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip().splitlines()[-1] == "['genai_jax.tasks.base', 'genai_jax.tasks.vae']"


def test_model_settings_and_compute_dtype_come_from_the_family():
  from genai_jax.tasks import lm
  gpt = override(gpt_shakespeare.get_config("demo"), {"model.dtype": "bfloat16"})
  settings = tasks.model_settings(gpt)
  assert settings["dtype"] == jnp.bfloat16  # converted once, by the registry
  assert set(settings) >= set(lm.MODELS["causal_lm"].keys)  # the model's defaults filled in
  assert tasks.compute_dtype(gpt).name == "bfloat16"
  assert tasks.compute_dtype(dcgan_celeba.get_config("demo")).name == "float32"  # None: float32


def test_validate_runs_the_common_then_the_family_checks():
  with pytest.raises(ConfigError, match=r"^num_steps=0 must be positive$") as e:
    tasks.validate(override(dcgan_celeba.get_config("demo"), {"num_steps": 0}))
  assert render(e.value) == "--config.num_steps=0 must be positive"
  with pytest.raises(ConfigError, match="does not apply to the GAN model"):
    tasks.validate(override(dcgan_celeba.get_config("demo"), {"model.kernel_size": 3}))
  with pytest.raises(ConfigError, match=r"data.channels=1 != model.channels=3"):
    tasks.validate(override(dcgan_celeba.get_config("demo"), {"data.channels": 1,
                                                               "model.channels": 3}))
  # The family-free half knows no family: a bad model passes it.
  config_utils.check_common(override(dcgan_celeba.get_config("demo"), {"model.kernel_size": 3}))
