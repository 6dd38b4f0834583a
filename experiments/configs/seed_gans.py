"""The seeds' own GAN networks, layer for layer, on the shared loop.

Each network has a preset on the dataset its seed used (tfds; prepare it in TFDS_DATA_DIR) and an
embedded variant (``_digits``: scikit-learn's 8x8 digits resized to 28x28; ``_faces``: the 90 LFW
crops of scikit-image at 32x32) that runs on a laptop CPU with no download. Every preset trains
with the seed's BCE GAN loss (``non_saturating``: D on real 1 / fake 0, G towards label 1) and
Adam (dcgan_celeba.base()'s 2e-4, betas 0.5/0.999). tests/test_seed_models.py counts each
network's parameters against the seed's layer list. Where a seed's code contradicts itself, the
preset fixes it and a comment in its function says how and why.

One function per preset, each with its command, the result to expect and the wall time measured
(docs/results.md "The seeds' own networks": short runs with --config.num_steps=N, one at a time on 2 CPU
cores shared with other jobs, load ~10, so the times are upper bounds) or "not measured yet";
``get_config(NAME)`` (no name: seed_dcgan32) looks NAME up in ``PRESETS`` and every function
returns a locked ConfigDict. Every model setting the seeds vary is a key
(``--config.model.activation``, ``kernel_size``, ``bn_momentum``, ``output``,
``g_hidden``/``d_hidden``, ``width``); see dcgan_celeba.py.
"""

import ml_collections

from experiments.configs import dcgan_celeba

_MNIST = dict(name="mnist", eval_split="test", image_size=28, channels=1, center_crop=False)


def _seed() -> ml_collections.ConfigDict:
  """The GAN defaults (dcgan_celeba.base()) with the seeds' logging: losses printed every 100
  steps, 64 samples 8 per row."""
  c = dcgan_celeba.base()
  c.log_every = 100
  c.num_samples = 64  # 8 x 8 grid
  return c


def _on_digits(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """An MNIST seed network moved to scikit-learn's 8x8 digits (resized to 28x28 by the pipeline),
  3,000 steps."""
  c.data.name = "sklearn_digits"
  c.num_steps = 3_000
  c.eval_every = c.checkpoint_every = 500
  # 297 test digits: never ask for more eval images than the split holds.
  c.eval_batches = max(1, min(4, 297 // c.batch_size))
  return c


def seed_dcgan32() -> ml_collections.ConfigDict:
  """The PyTorch DCGAN seed's 4-stage 32x32 network on CelebA: batch 64, 5 epochs (15,828 steps).

  Run: python -m experiments.seed_gans --config=experiments/configs/seed_gans.py:seed_dcgan32 --workdir=W  (celeb_a prepared)
  Expect: not measured yet. Time: not measured yet.
  """
  # G: ConvT 100->256 4x4 s1 p0, then ConvT 4x4 s2 p1 to 128, 64, 3, BN + ReLU between, Tanh;
  # D: Conv 4x4 s2 p1 3->64 LeakyReLU(0.2) without BN, ->128, ->256 with BN, Conv 256->1 4x4
  # valid, sigmoid (in the loss); no biases; BN momentum 0.1 in PyTorch terms (0.9 here).
  # Fix: the seed resizes its data to 64x64 while G emits 32x32 (D would see 64x64 reals and
  # 32x32 fakes); here the data are resized to the 32x32 G emits. ``nz`` (undefined in the seed)
  # is 100, the value its first layer is written for.
  c = _seed()
  c.batch_size = 64
  c.num_steps = 15_828  # 5 x 202,599 / 64
  c.model.update(name="dcgan", width=64, image_size=32, channels=3, bn_momentum=0.9)
  c.data.update(image_size=32, channels=3)
  return c


def seed_dcgan32_faces() -> ml_collections.ConfigDict:
  """:seed_dcgan32 on the 90 embedded LFW faces, grayscale (G's last and D's first layer have 1
  channel instead of 3), 1,500 steps.

  Run: python -m experiments.seed_gans --config=experiments/configs/seed_gans.py:seed_dcgan32_faces --workdir=W
  Expect (with --config.num_steps=300): d_loss 0.256, g_loss 2.767, D(x) 0.836, D(G(z)) 0.065;
  held-out d_loss 0.523. Time: that run 498 s of training, 548 s wall; 1,500 steps not measured.
  """
  c = seed_dcgan32()
  c.num_steps = 1_500
  c.model.channels = 1
  c.data.update(name="skimage_lfw_faces", eval_split="test", channels=1, random_flip=True)
  c.eval_every = c.checkpoint_every = 500
  c.eval_batches = 1  # the 10 test faces
  return c


def seed_keras_conv_mnist() -> ml_collections.ConfigDict:
  """The seeds' Keras conv GAN on tfds mnist: batch 128, 10 epochs (4,690 steps).

  Run: python -m experiments.seed_gans --config=experiments/configs/seed_gans.py:seed_keras_conv_mnist --workdir=W
  Expect (on full MNIST, --config.data.name=pypi_mnist): all 10 classes in the samples (shares
  0.05-0.18) and an FCD of 52.2 against the real floor's 7.03 (experiments.class_accuracy); held-
  out D accuracy 0.51 on real, 0.99 on fake at the end (docs/results.md). Time: 2,765 s for the
  last 3,658 steps on the idle 2-core CPU (168-177 images/s; ~58 min for the whole run).
  """
  # G: Dense(7*7*128) -> ConvT 128 5x5 -> LeakyReLU(0.01) -> BatchNorm(momentum 0.8) -> ConvT 128
  # 5x5 s2 -> Conv 1 7x7 tanh; D: Conv 128 5x5 s2 -> LeakyReLU(0.01), twice -> Dense(1) sigmoid.
  # Keras' BN momentum 0.8 is the decay of the running averages, flax's meaning (PyTorch: 0.2).
  # Fixes: the seed's first ConvT has stride 1, so G emits 14x14 images into a D built for 28x28;
  # here it has stride 2 (7 -> 14 -> 28, same layers and parameter count). The seed trains G
  # towards label 0 (so G learns to look fake); here G is trained towards label 1.
  c = _seed()
  c.batch_size = 128
  c.num_steps = 4_690  # 10 epochs of MNIST
  c.model.update(name="keras_conv", image_size=28, channels=1, width=128, kernel_size=5,
                 out_kernel=7, activation="leaky_relu:0.01", bn_momentum=0.8)
  c.data.update(**_MNIST)
  return c


def seed_keras_conv_digits() -> ml_collections.ConfigDict:
  """:seed_keras_conv_mnist on the embedded digits, 3,000 steps. XLA's CPU transposed
  convolutions (model.conv_impl=xla) ran it at about 2 images/s; the default forms
  (layers.conv_transpose / conv_strided) run the step at ~175 images/s on the idle 2-core
  machine, 0.92x PyTorch's (benchmarks/keras_conv_throughput.py, docs/results.md).

  Run: python -m experiments.seed_gans --config=experiments/configs/seed_gans.py:seed_keras_conv_digits --workdir=W
  Expect: at step 10, d_loss 0.922, g_loss 0.875, D(x) 0.748, D(G(z)) 0.464 (docs/results.md).
  Time: 838 s for 12 steps on 2 shared CPU cores (stopped there); the full run not measured.
  """
  return _on_digits(seed_keras_conv_mnist())


def seed_mlp_gan() -> ml_collections.ConfigDict:
  """The seeds' small MLP GAN on tfds mnist: G 100->128->64->784 sigmoid, D 784->128->1, ReLU;
  batch 32, 20 epochs (37,500 steps).

  Run: python -m experiments.seed_gans --config=experiments/configs/seed_gans.py:seed_mlp_gan --workdir=W
  Expect (on full MNIST, --config.data.name=pypi_mnist): collapse; D tells real from fake from
  step 1,000 on and G ends drawing one glyph (1 of 10 classes under the MNIST classifier, FCD
  1,523; docs/results.md). Time: 1,539 s for the 37,500 steps on 2 shared CPU cores.
  """
  c = _seed()
  c.batch_size = 32
  c.num_steps = 37_500  # 20 x 60,000 / 32
  # The sigmoid output: data = pixels / 255 in [0, 1], computed exactly (models/mlp_gan.py).
  c.model.update(name="mlp", image_size=28, channels=1, g_hidden=(128, 64), d_hidden=(128,),
                 activation="relu", output="sigmoid")
  c.data.update(**_MNIST)
  return c


def seed_mlp_gan_digits() -> ml_collections.ConfigDict:
  """:seed_mlp_gan on the embedded digits, 3,000 steps.

  Run: python -m experiments.seed_gans --config=experiments/configs/seed_gans.py:seed_mlp_gan_digits --workdir=W
  Expect (with --config.num_steps=2000): d_loss 0.331, g_loss 2.250, D(x) 0.866, D(G(z)) 0.153;
  held-out d_loss 0.315. Time: that run 40.9 s of training, 83 s wall; 3,000 steps not measured.
  """
  return _on_digits(seed_mlp_gan())


def seed_mlp_gan_relu() -> ml_collections.ConfigDict:
  """The other seeds' MLP GAN (reused for its MusicGAN) on tfds mnist: G 100->128->256->784 tanh,
  D 784->128->256->1, ReLU; batch 64, 30k steps.

  Run: python -m experiments.seed_gans --config=experiments/configs/seed_gans.py:seed_mlp_gan_relu --workdir=W
  Expect (on full MNIST, --config.data.name=pypi_mnist): no collapse, unlike :seed_mlp_gan; at
  step 30,000 held-out D accuracy 0.70 on real and 0.84 on fake digits, all 10 classes in the
  samples (shares 0.02-0.15) and an FCD of 143.0 against the real floor's 7.03
  (experiments.class_accuracy; docs/results.md). Time: 147 s for 28,228 of the steps on the idle
  2-core CPU (16k images/s; the run resumed at 1,772).
  """
  c = _seed()
  c.batch_size = 64
  c.num_steps = 30_000
  c.model.update(name="mlp", image_size=28, channels=1, g_hidden=(128, 256), d_hidden=(128, 256),
                 activation="relu", output="tanh")
  c.data.update(**_MNIST)
  return c


def seed_mlp_gan_relu_digits() -> ml_collections.ConfigDict:
  """:seed_mlp_gan_relu on the embedded digits, 3,000 steps.

  Run: python -m experiments.seed_gans --config=experiments/configs/seed_gans.py:seed_mlp_gan_relu_digits --workdir=W
  Expect (with --config.num_steps=2000): d_loss 0.683, g_loss 2.269, D(x) 0.788, D(G(z)) 0.321;
  held-out d_loss 0.610. Time: that run 25.5 s of training, 42 s wall; 3,000 steps not measured.
  """
  return _on_digits(seed_mlp_gan_relu())


PRESETS = {"seed_dcgan32": seed_dcgan32, "seed_dcgan32_faces": seed_dcgan32_faces,
           "seed_keras_conv_mnist": seed_keras_conv_mnist,
           "seed_keras_conv_digits": seed_keras_conv_digits, "seed_mlp_gan": seed_mlp_gan,
           "seed_mlp_gan_digits": seed_mlp_gan_digits, "seed_mlp_gan_relu": seed_mlp_gan_relu,
           "seed_mlp_gan_relu_digits": seed_mlp_gan_relu_digits}


def get_config(preset: str = "seed_dcgan32") -> ml_collections.ConfigDict:
  """The preset named (``--config=experiments/configs/seed_gans.py:NAME``); no name: seed_dcgan32."""
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; use one of: {', '.join(PRESETS)}")
  return PRESETS[preset]()
