"""Image datasets read from installed packages: real data, no network, same tfds pipeline.

* ``skimage_lfw_faces``: the 100 face crops of scikit-image's ``lfw_subset`` (Labeled Faces in
  the Wild), 25x25 grayscale. Splits: train = first 90, test = last 10.
* ``sklearn_digits``: scikit-learn's 1,797 handwritten digits (UCI optdigits test set), 8x8
  grayscale with 17 intensity levels, stored as uint8 (value * 255 / 16), with labels.
  Splits: train = first 1,500, test = remaining 297.
"""

import numpy as np
import tensorflow_datasets as tfds


class SkimageLfwFaces(tfds.core.GeneratorBasedBuilder):
  """100 LFW face crops (25x25 grayscale) from scikit-image."""
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Faces of skimage.data.lfw_subset()."}

  def _info(self):
    return self.dataset_info_from_configs(
        description="The 100 face images of scikit-image's lfw_subset (LFW crops, 25x25 gray).",
        features=tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(25, 25, 1))}),
        homepage="https://vis-www.cs.umass.edu/lfw/",
        citation="Huang et al., Labeled Faces in the Wild, UMass TR 07-49, 2007.")

  def _split_generators(self, dl_manager):
    import skimage.data
    faces = np.asarray(skimage.data.lfw_subset()[:100])  # the first 100 are faces
    if faces.dtype != np.uint8:  # older scikit-image returns float in [0, 1]
      faces = np.clip(np.rint(faces * 255), 0, 255).astype(np.uint8)
    return {"train": self._generate_examples(faces[:90]), "test": self._generate_examples(faces[90:], 90)}

  def _generate_examples(self, images, start=0):
    for i, im in enumerate(images):
      yield start + i, {"image": im[..., None]}


class SklearnDigits(tfds.core.GeneratorBasedBuilder):
  """1,797 handwritten digits (8x8 grayscale) from scikit-learn."""
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "sklearn.datasets.load_digits()."}

  def _info(self):
    return self.dataset_info_from_configs(
        description="scikit-learn's handwritten digits (UCI optdigits), 8x8 gray, 17 levels.",
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(8, 8, 1)),
            "label": tfds.features.ClassLabel(num_classes=10)}),
        supervised_keys=("image", "label"),
        homepage="https://archive.ics.uci.edu/dataset/80",
        citation="Alpaydin & Kaynak, Optical Recognition of Handwritten Digits, UCI, 1998.")

  def _split_generators(self, dl_manager):
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    labels = digits.target.astype(np.int64)
    return {"train": self._generate_examples(images[:1500], labels[:1500]),
            "test": self._generate_examples(images[1500:], labels[1500:], 1500)}

  def _generate_examples(self, images, labels, start=0):
    for i, (im, y) in enumerate(zip(images, labels)):
      yield start + i, {"image": im[..., None], "label": int(y)}
