"""The tfds pipelines: CelebA preprocessing (mocked), embedded data, resumable streams, errors."""

import time
from unittest import mock

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
  import tensorflow as tf
  image = np.zeros((218, 178, 3), np.uint8)
  image[20:198, :, :] = 255  # the centred 178x178 square is white, the rest black
  out = pipelines._preprocess_image(tf.constant(image), cfg).numpy()
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
    with mock.patch.object(pipelines.jax, "process_count", return_value=2), \
         mock.patch.object(pipelines.jax, "process_index", return_value=pid):
      parts.append(pipelines.image_batches(cfg, "train", 16, train=True, seed=5, start_step=3))
  for _ in range(3):
    local = [next(p)["image"] for p in parts]
    assert local[0].shape == (8, 32, 32, 1)
    np.testing.assert_array_equal(np.concatenate(local), next(single)["image"])


def test_batch_and_shards_must_fit(tfds_dir):
  cfg = dcgan_celeba.get_config("demo").data
  with pytest.raises(Exception, match="not divisible by data.shards=8"):
    pipelines.image_batches(cfg, "train", 12, train=True)
  with mock.patch.object(pipelines.jax, "process_count", return_value=3):
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
  for ex in tfds.as_numpy(builder.as_dataset(split="train")):
    labels_of.setdefault(ex["image"].tobytes(), set()).add(int(ex["label"]))
  stored = np.rint((batch["image"] + 1) * 127.5).astype(np.uint8)
  assert all(int(y) in labels_of[im.tobytes()] for im, y in zip(stored, batch["label"]))
  assert len(set(batch["label"].tolist())) > 5
  cfg.label_key = "digit"
  with pytest.raises(Exception, match="label_key"):
    next(pipelines.image_batches(cfg, "train", 64, train=True, seed=0))
