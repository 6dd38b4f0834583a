"""Fine-tuning (--config.init_from): weights come from another run, the optimiser starts fresh,
mismatched shapes are one line, and a pre-trained model fine-tunes to a lower loss than one
trained from scratch for the same number of steps."""

import jax
import numpy as np
import pytest

from genai_jax import tasks
from genai_jax.errors import ConfigError
from genai_jax.train import sharding
from genai_jax.train import state as state_lib
from genai_jax.train.loop import train_and_evaluate
from tests.helpers import override

pytestmark = pytest.mark.slow  # pre-training and fine-tuning runs


def tiny_text_config(preset, **overrides):
  from experiments.configs import gpt_shakespeare
  c = gpt_shakespeare.get_config(preset)
  c.model.update(num_layers=2, num_heads=2, d_model=32)
  c.data.update(seq_len=32)
  c.sample.update(prompt_len=4, length=8)
  c.optimizer.update(learning_rate=1e-2, min_learning_rate=1e-3, warmup_steps=2)
  c.update(batch_size=16, log_every=10, eval_every=1000, checkpoint_every=1000, eval_batches=4,
           num_samples=2)
  c.eval_gen.update(every=0, at_end=False)  # no generator metrics: what is tested is the weights
  return override(c, overrides)


@pytest.fixture(scope="module")
def pretrained(tfds_dir, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("code"))
  train_and_evaluate(tiny_text_config("code_demo", num_steps=300), workdir)
  return workdir


def test_init_from_copies_the_weights_and_starts_a_fresh_optimiser(pretrained):
  config = tiny_text_config("docs_demo", init_from=pretrained)
  mesh = sharding.make_mesh()
  task = tasks.get_task(config)
  state = state_lib.initial_state(config, state_lib.sharded_init(task, mesh), mesh,
                                  get_task=tasks.get_task)
  _, source = state_lib.restore(config, pretrained, 300, mesh, task=task)
  for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(source.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  fresh = state_lib.sharded_init(task, mesh).init(jax.random.PRNGKey(config.seed))
  for a, b in zip(jax.tree.leaves(state.opt_state), jax.tree.leaves(fresh.opt_state)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert int(state.step) == 0
  kept = state_lib.initial_state(override(config, {"init_from_keep_optimizer": True}),
                                 state_lib.sharded_init(task, mesh), mesh, get_task=tasks.get_task)
  for a, b in zip(jax.tree.leaves(kept.opt_state), jax.tree.leaves(source.opt_state)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_init_from_a_different_model_is_one_line(pretrained):
  config = tiny_text_config("docs_demo", init_from=f"{pretrained}:300", **{"model.d_model": 64})
  mesh = sharding.make_mesh()
  task = tasks.get_task(config)
  with pytest.raises(ConfigError, match=r"init_from: params\S+ is \(\d+, 32\) in the source run "
                                        r"but \(\d+, 64\) here"):
    state_lib.initial_state(config, state_lib.sharded_init(task, mesh), mesh,
                            get_task=tasks.get_task)


def test_pretrained_model_fine_tunes_below_training_from_scratch(pretrained, tmp_path):
  scratch = train_and_evaluate(tiny_text_config("docs_demo", num_steps=30), str(tmp_path / "s"))
  tuned = train_and_evaluate(tiny_text_config("docs_demo", num_steps=30, init_from=pretrained),
                             str(tmp_path / "t"))
  assert tuned["eval/loss"] < scratch["eval/loss"] - 0.1, (tuned, scratch)
