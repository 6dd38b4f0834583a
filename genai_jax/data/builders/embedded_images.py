"""Image datasets read from installed packages: real data, no network, same tfds pipeline.

* ``skimage_lfw_faces``: the 100 face crops of scikit-image's ``lfw_subset`` (Labeled Faces in
  the Wild), 25x25 grayscale. Splits: train = first 90, test = last 10.
* ``skimage_lfw_faces_edges``: an unpaired two-domain set in tfds ``cycle_gan`` layout (splits
  trainA, trainB, testA, testB) from the same 100 faces at 32x32: domain A is face photos, domain
  B is Sobel edge maps (dark edges on white) of *other* faces. Faces 0-83 train, 84-99 test; even
  faces go to A, odd faces to B, so no image is in both domains (42/42 train, 8/8 test) and the
  two domains are truly unpaired (the same person may still appear in both).
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


def _lfw_faces() -> np.ndarray:
  """The 100 LFW face crops of scikit-image, float64 [100, 25, 25] in [0, 1]."""
  import skimage.data
  faces = np.asarray(skimage.data.lfw_subset()[:100], np.float64)  # the first 100 are faces
  return faces / 255.0 if faces.max() > 1.0 else faces  # newer scikit-image: float in [0, 1]


def sobel_sketch(face: np.ndarray) -> np.ndarray:
  """float [H, W] in [0, 1] -> its Sobel gradient magnitude as a sketch: uint8 [H, W], dark edges
  on white (magnitude scaled by the image's 99th percentile, clipped, inverted)."""
  import skimage.filters
  magnitude = skimage.filters.sobel(face)
  sketch = 1.0 - np.clip(magnitude / max(np.percentile(magnitude, 99), 1e-6), 0.0, 1.0)
  return np.rint(sketch * 255).astype(np.uint8)


class SkimageLfwFacesEdges(tfds.core.GeneratorBasedBuilder):
  """Unpaired faces (A) and edge maps of other faces (B), 32x32 gray, cycle_gan split layout."""
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "lfw_subset faces at 32x32; Sobel sketches of disjoint faces."}
  SIZE = 32
  NUM_TRAIN = 84  # faces 0-83 train, 84-99 test

  def _info(self):
    return self.dataset_info_from_configs(
        description="Unpaired domains from scikit-image's lfw_subset faces (32x32 gray): A = face "
                    "photos (even faces), B = Sobel edge maps of the odd faces.",
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(self.SIZE, self.SIZE, 1))}),
        homepage="https://vis-www.cs.umass.edu/lfw/",
        citation="Huang et al., Labeled Faces in the Wild, UMass TR 07-49, 2007.")

  def _split_generators(self, dl_manager):
    import skimage.transform
    faces = [skimage.transform.resize(f, (self.SIZE, self.SIZE), order=3, anti_aliasing=False)
             for f in _lfw_faces()]
    photo = lambda f: np.rint(np.clip(f, 0.0, 1.0) * 255).astype(np.uint8)  # noqa: E731
    n = self.NUM_TRAIN
    return {
        "trainA": self._generate_examples(range(0, n, 2), faces, photo),
        "trainB": self._generate_examples(range(1, n, 2), faces, sobel_sketch),
        "testA": self._generate_examples(range(n, 100, 2), faces, photo),
        "testB": self._generate_examples(range(n + 1, 100, 2), faces, sobel_sketch),
    }

  def _generate_examples(self, indices, faces, render):
    for i in indices:  # key: the face's index in lfw_subset
      yield i, {"image": render(faces[i])[..., None]}


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
