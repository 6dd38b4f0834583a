"""The tfds pipelines: CelebA preprocessing (mocked), embedded data, resumable streams, errors."""

import time
from unittest import mock

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from genai_jax.data import pipelines
from genai_jax.errors import DatasetMissingError
from experiments.configs import dcgan_celeba


def test_celeb_a_pipeline_under_mock_data(tfds_dir):
  cfg = dcgan_celeba.get_config().data
  # mock_data fakes the records but not the "prepared" marker files, so say they are there.
  with tfds.testing.mock_data(num_examples=20), \
       mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", return_value=True):
    it = pipelines.image_batches(cfg, "train", 8, train=True, seed=0)
    batch = next(it)
    assert batch["image"].shape == (8, 64, 64, 3) and batch["image"].dtype == np.float32
    assert batch["image"].min() >= -1.0 and batch["image"].max() <= 1.0
    assert batch["image"].std() > 0.05  # real pixels, not a constant
    ev = next(pipelines.image_batches(cfg, "validation", 8, train=False))
    assert ev["image"].shape == (8, 64, 64, 3)


def test_center_crop_and_resize_keep_the_middle():
  cfg = dcgan_celeba.get_config().data
  image = np.zeros((218, 178, 3), np.uint8)
  image[20:198, :, :] = 255  # the centred 178x178 square is white, the rest black
  out = pipelines._preprocess_image(image, cfg)
  assert out.shape == (64, 64, 3)
  np.testing.assert_allclose(out, 1.0, atol=1e-5)


def test_embedded_faces_are_real_images(tfds_dir):
  cfg = dcgan_celeba.get_config("demo").data
  batch = next(pipelines.image_batches(cfg, "train", 16, train=True, seed=0))["image"]
  assert batch.shape == (16, 32, 32, 1)
  # Faces: a bright centre (skin) and real pixel structure; distinct images.
  assert batch.std() > 0.2 and len({float(x.mean()) for x in batch}) == 16
  assert pipelines.get_builder(cfg).info.splits["train"].num_examples == 90


def test_stream_resumes_exactly_at_any_step(tfds_dir):
  cfg = dcgan_celeba.get_config("demo").data
  # 90 examples, batch 16: batches cross epoch boundaries (new shuffle per epoch).
  it = pipelines.image_batches(cfg, "train", 16, train=True, seed=3)
  batches = [next(it)["image"] for _ in range(9)]
  for start in (1, 5, 7):
    resumed = pipelines.image_batches(cfg, "train", 16, train=True, seed=3, start_step=start)
    for k in range(start, 9):
      np.testing.assert_array_equal(next(resumed)["image"], batches[k])
  other = next(pipelines.image_batches(cfg, "train", 16, train=True, seed=4))["image"]
  assert not np.array_equal(other, batches[0])


@pytest.mark.parametrize("preset,labels", [("demo", False), ("digits_demo", True)])
def test_batches_gathered_from_the_decoded_cache_equal_decoding_every_time(tfds_dir, preset,
                                                                          labels):
  cfg = dcgan_celeba.get_config(preset).data
  with cfg.unlocked():
    cfg.update(random_flip=True, labels=labels, cache_mb=1024)
  from genai_jax.data import loader
  batch = 64
  epoch = pipelines.get_builder(cfg).info.splits["train"].num_examples // batch + 1
  gathers = []
  gather = loader.DecodedCache.gather
  with mock.patch.object(loader.DecodedCache, "gather", autospec=True,
                         side_effect=lambda *a: gathers.append(1) or gather(*a)):
    cached = pipelines.image_batches(cfg, "train", batch, train=True, seed=2, start_step=1)
    cfg.cache_mb = 0  # every example decoded from its record, every epoch
    decoded = pipelines.image_batches(cfg, "train", batch, train=True, seed=2, start_step=1)
    for _ in range(2 * epoch + 12):  # later epochs gathered from memory (decoding runs ahead)
      want, got = next(decoded), next(cached)
      assert want.keys() == got.keys()
      for k in want:
        np.testing.assert_array_equal(got[k], want[k])
        assert got[k].dtype == want[k].dtype
  assert gathers  # the cached path ran


def test_epochs_are_reshuffled_permutations(tfds_dir):
  cfg = dcgan_celeba.get_config("demo").data
  cfg.random_flip = False
  cfg.shards = 1  # one shard of 90: nine batches of 10 are exactly one epoch
  it = pipelines.image_batches(cfg, "train", 10, train=True, seed=0)
  epoch = lambda: np.concatenate([next(it)["image"] for _ in range(9)])
  e0, e1 = epoch(), epoch()
  key = lambda a: sorted(float(x.sum()) for x in a)
  np.testing.assert_allclose(key(e0), key(e1), rtol=1e-6)  # the same 90 images...
  assert not np.array_equal(e0, e1)  # ...in a new order


def test_missing_dataset_fails_fast_with_instructions(tmp_path):
  cfg = dcgan_celeba.get_config().data
  cfg.data_dir = str(tmp_path)
  t0 = time.perf_counter()
  with pytest.raises(DatasetMissingError) as e:
    pipelines.get_builder(cfg)
  assert time.perf_counter() - t0 < 30
  msg = str(e.value)
  assert "tfds build celeb_a" in msg and "dcgan_celeba.py:demo" in msg and "\n" not in msg


def test_unknown_dataset_and_split_are_clear(tfds_dir):
  cfg = dcgan_celeba.get_config("demo").data
  with pytest.raises(Exception, match="has no split 'validation'"):
    next(pipelines.image_batches(cfg, "validation", 8, train=False))
  cfg.name = "no_such_dataset_xyz"
  with pytest.raises(DatasetMissingError, match="unknown dataset"):
    pipelines.get_builder(cfg)


def test_global_batches_do_not_depend_on_the_process_count(tfds_dir):
  cfg = dcgan_celeba.get_config("demo").data
  single = pipelines.image_batches(cfg, "train", 16, train=True, seed=5, start_step=3)
  parts = []
  for pid in range(2):  # what each of two processes would read
    with mock.patch.object(jax, "process_count", return_value=2), \
         mock.patch.object(jax, "process_index", return_value=pid):
      parts.append(pipelines.image_batches(cfg, "train", 16, train=True, seed=5, start_step=3))
  for _ in range(3):
    local = [next(p)["image"] for p in parts]
    assert local[0].shape == (8, 32, 32, 1)
    np.testing.assert_array_equal(np.concatenate(local), next(single)["image"])


def test_batch_and_shards_must_fit(tfds_dir):
  cfg = dcgan_celeba.get_config("demo").data
  with pytest.raises(Exception, match="not divisible by data.shards=8"):
    pipelines.image_batches(cfg, "train", 12, train=True)
  with mock.patch.object(jax, "process_count", return_value=3):
    with pytest.raises(Exception, match="data.shards=8 is not divisible by the 3 processes"):
      pipelines.image_batches(cfg, "train", 24, train=True)


def test_labels_travel_with_their_images_and_match_the_batch_spec(tfds_dir):
  from genai_jax.data import specs
  cfg = dcgan_celeba.get_config("digits_demo").data
  cfg.update(image_size=8, labels=True)  # 8x8: the stored pixels, so images can be looked up
  batch = next(pipelines.image_batches(cfg, "train", 64, train=True, seed=0))
  spec = specs.batch_spec(cfg, 64)
  assert {k: (v.shape, v.dtype) for k, v in batch.items()} == {k: (v.shape, v.dtype) for k, v in spec.items()}
  builder = pipelines.get_builder(cfg)
  labels_of = {}
  for ex in builder.as_data_source("train"):
    labels_of.setdefault(ex["image"].tobytes(), set()).add(int(ex["label"]))
  stored = np.rint((batch["image"] + 1) * 127.5).astype(np.uint8)
  assert all(int(y) in labels_of[im.tobytes()] for im, y in zip(stored, batch["label"]))
  assert len(set(batch["label"].tolist())) > 5
  cfg.label_key = "digit"
  with pytest.raises(Exception, match="label_key"):
    next(pipelines.image_batches(cfg, "train", 64, train=True, seed=0))


@pytest.mark.parametrize("shape,size", [((218, 178, 3), 64), ((25, 25, 1), 32), ((28, 28, 1), 8),
                                        ((8, 8, 1), 28), ((40, 40, 3), 17)])
def test_resize_matches_tf_image_resize_antialias(shape, size):
  tf = pytest.importorskip("tensorflow")  # the reference; the pipeline itself never imports it
  from genai_jax.data import preprocess
  image = np.random.default_rng(0).integers(0, 256, shape).astype(np.float32)
  want = tf.image.resize(image, (size, size), method="bilinear", antialias=True).numpy()
  np.testing.assert_allclose(preprocess.resize(image, size), want, atol=2e-3)  # of 255


def test_augmentation_is_a_fixed_function_of_seed_shard_and_position():
  from genai_jax.data import preprocess
  draws = [preprocess.uniform(7, s, p, 0) for s in range(4) for p in range(500)]
  assert draws == [preprocess.uniform(7, s, p, 0) for s in range(4) for p in range(500)]
  assert len(set(draws)) == len(draws) and 0.45 < np.mean(draws) < 0.55
  assert all(0.0 <= u < 1.0 for u in draws)
  assert preprocess.uniform(8, 0, 0, 0) != preprocess.uniform(7, 0, 0, 0)


def _copy_dataset(cfg, tfds_dir, tmp_path):
  import os
  import shutil
  src = pipelines.get_builder(cfg).data_dir
  copy = tmp_path / "tfds" / os.path.relpath(src, tfds_dir)
  shutil.copytree(src, copy)
  cfg.data_dir = str(tmp_path / "tfds")
  return copy


def test_missing_or_truncated_shards_name_the_file(tfds_dir, tmp_path):
  import os
  from genai_jax.errors import DataError
  cfg = dcgan_celeba.get_config("digits_demo").data
  copy = _copy_dataset(cfg, tfds_dir, tmp_path)
  record = sorted(p for p in os.listdir(copy) if "train.array_record" in p)[0]
  data = (copy / record).read_bytes()
  (copy / record).write_bytes(data[:len(data) // 2])  # a copy that stopped half-way
  with pytest.raises(DataError, match=rf"is damaged .* in file \S+{record}; delete \S+ and prepare "
                                      r"it again \(embedded datasets prepare themselves"):
    for _ in zip(range(40), pipelines.batches(cfg, "train", 64, train=True)):
      pass
  (copy / record).unlink()
  with pytest.raises(DataError, match=rf"is missing its file \S+{record}; delete"):
    pipelines.batches(cfg, "train", 64, train=True)


def test_a_missing_or_cut_short_file_stops_a_run_before_it_writes_anything(tfds_dir, tmp_path):
  import os
  from genai_jax.errors import DataError
  from genai_jax.train.loop import train_and_evaluate
  from tests.helpers import tiny_gan_config
  config = tiny_gan_config()
  copy = _copy_dataset(config.data, tfds_dir, tmp_path)
  records = sorted(p for p in os.listdir(copy) if "train.array_record" in p)
  last = copy / records[-1]  # the last file: the first batches need not read it
  last.write_bytes(last.read_bytes()[:-100])
  workdir = tmp_path / "run"
  with pytest.raises(DataError, match=rf"is damaged .* in file \S+{records[-1]}; delete"):
    train_and_evaluate(config, str(workdir))
  last.unlink()
  with pytest.raises(DataError, match=rf"is missing its file \S+{records[-1]}; delete"):
    train_and_evaluate(config, str(workdir))
  assert not os.listdir(workdir)  # no config.json, no checkpoints, no metrics


def test_a_tfrecord_dataset_names_the_conversion(tmp_path):
  from genai_jax.data import builders
  from genai_jax.data import reader
  from genai_jax.errors import DataError
  cfg = dcgan_celeba.get_config("digits_demo").data
  cfg.data_dir = str(tmp_path)
  builders.EMBEDDED[cfg.name](data_dir=str(tmp_path)).download_and_prepare(file_format="tfrecord")
  with pytest.raises(DataError, match=r"is stored as tfrecord, .*delete \S+ and run again"):
    pipelines.get_builder(cfg)
  # An external dataset gets the tfds conversion command instead.
  with mock.patch.dict(builders.EMBEDDED, clear=True), \
       mock.patch.object(reader.tfds, "builder", lambda name, data_dir: builders.SklearnDigits(data_dir=data_dir)):
    with pytest.raises(DataError, match=r"tfds convert_format --dataset_version_dir=\S+ "
                                        r"--out_file_format=array_record"):
      pipelines.get_builder(cfg)


@pytest.mark.slow
def test_reading_imports_no_tensorflow(tfds_dir):
  import subprocess
  import sys
  from tests.conftest import REPO
  from experiments.configs import gpt_shakespeare
  image, digits, text_cfg = (dcgan_celeba.get_config("demo").data,
                             dcgan_celeba.get_config("digits_demo").data,
                             gpt_shakespeare.get_config("demo").data)
  for cfg in (image, digits, text_cfg):
    pipelines.get_builder(cfg)  # prepared here: preparing needs TensorFlow, reading does not
  code = """
import sys
from experiments.configs import dcgan_celeba, gpt_shakespeare
from genai_jax.data import pipelines, text
from genai_jax.eval import image_evaluator
cfg = dcgan_celeba.get_config("digits_demo").data
cfg.labels = True
b = next(pipelines.batches(cfg, "train", 16, train=True, seed=1, start_step=5))
assert b["image"].shape == (16, 28, 28, 1) and b["label"].shape == (16,)
assert image_evaluator.real_images(dcgan_celeba.get_config("demo").data, "train", 20).shape == (
    20, 32, 32, 1)
from genai_jax.eval import classifier
x, y = classifier.labelled_images(cfg, "test")
assert x.shape == (297, 28, 28, 1) and y.shape == (297,)
lm = gpt_shakespeare.get_config("demo").data
assert next(pipelines.batches(lm, "train", 8, train=True))["tokens"].shape == (8, lm.seq_len + 1)
assert "tensorflow" not in sys.modules, sorted(m for m in sys.modules if "tensorflow." in m)[:5]
print("ok")
"""
  r = subprocess.run([sys.executable, "-m", "tests.no_tensorflow", "-c", code], cwd=REPO,
                     capture_output=True, text=True, timeout=300,
                     env={**__import__("os").environ, "JAX_PLATFORMS": "cpu"})
  assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-3000:]
