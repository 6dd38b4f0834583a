"""Seed 004's word-level news LM: the word vocabulary, ag_news_subset under mock data (GRU and
transformer on the same tokens), and the embedded word-level corpus (pydoc_topics)."""

from unittest import mock

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments.configs import gpt_shakespeare
from genai_jax import tasks
from genai_jax.data import pipelines, text
from genai_jax.errors import ConfigError
from tests.helpers import override


def test_word_vocab_lowercases_counts_train_words_and_maps_the_rest_to_unk():
  vocab = text.WordVocab.from_text("The cat sat.\nthe CAT ran, the end", size=6)
  # <unk>, separator, then by frequency: the (3), cat (2), then first seen among the 1-counts.
  assert vocab.words == (text.UNK, text.SEPARATOR, "the", "cat", "sat", ".")
  np.testing.assert_array_equal(vocab.encode("The dog sat.\nCat"), [2, 0, 4, 5, 1, 3])
  assert vocab.decode(vocab.encode("the cat sat\nthe")) == "the cat sat\nthe"
  cased = text.WordVocab.from_text("The the THE", size=5, lowercase=False)
  assert cased.words[2:] == ("The", "the", "THE") and cased.encode("the The").tolist() == [3, 2]
  with pytest.raises(ConfigError, match="vocab_size=2 is too small"):
    text.WordVocab.from_text("a b", size=2)


def _news_config(preset, **overrides):
  c = gpt_shakespeare.get_config(preset)
  c.data.update(seq_len=16, vocab_size=50)
  c.sample.update(prompt_len=4, length=8)
  c.update(batch_size=8, eval_batches=1, num_samples=2)
  return override(c, overrides)


@pytest.mark.parametrize("preset", ["news_gru", "news_gpt"])
def test_ag_news_word_lm_under_mock_data(tfds_dir, preset):
  config = _news_config(preset)
  assert config.data.name == "ag_news_subset" and config.data.vocab == "word"
  with tfds.testing.mock_data(num_examples=40), \
       mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", return_value=True):
    vocab = text.vocabulary(config.data)
    train = text.split_tokens(config.data, "train")
    batch = next(text.text_batches(config.data, "test", 8, train=False))
    task = tasks.get_task(config)
    baseline = task.baselines()["unigram_loss"]
  assert vocab.size == 50 and vocab.words[0] == text.UNK
  assert train.max() < 50 and (train == 0).any()  # mock text has more than 48 distinct words
  assert batch["tokens"].shape == (8, 17) and batch["tokens"].dtype == np.int32
  assert 0 < baseline < np.log(50) + 1
  state = jax.eval_shape(task.init, jax.random.PRNGKey(0))
  _, metrics = jax.eval_shape(task.train_step, state, {"tokens": batch["tokens"]})
  assert metrics["loss"].shape == ()


def test_pydoc_topics_is_a_real_word_corpus(tfds_dir):
  config = gpt_shakespeare.get_config("news_gru_demo")
  assert config.data.name == "pydoc_topics"
  vocab = text.vocabulary(config.data)
  train = text.split_tokens(config.data, "train")
  val = text.split_tokens(config.data, "validation")
  assert vocab.size == config.data.vocab_size
  assert len(train) > 50_000 and len(val) > 5_000  # tens of thousands of words of English prose
  assert {"the", "function", "object", "class"} <= set(vocab.words)
  assert (val == 0).mean() < 0.1  # held-out topics are mostly in-vocabulary
  assert pipelines.get_builder(config.data).info.splits["validation"].num_examples >= 5
