"""The seeds' own GAN networks, layer for layer, on the shared loop.

Run:  python -m experiments.seed_gans --config=experiments/configs/seed_gans.py:NAME --workdir=W

Each network has a preset on the dataset its seed used (tfds; prepare it in TFDS_DATA_DIR) and an
embedded variant (``_digits``: scikit-learn's 8x8 digits resized to 28x28; ``_faces``: the 90 LFW
crops of scikit-image at 32x32) that runs on a laptop CPU with no download. Every preset trains
with the seed's BCE GAN loss (``non_saturating``: D on real 1 / fake 0, G towards label 1) and
Adam. tests/test_seed_models.py counts each network's parameters against the seed's layer list.

  seed_dcgan32 (celeb_a), seed_dcgan32_faces
      The PyTorch DCGAN seed's 4-stage 32x32 network. G: ConvT 100->256 4x4 s1 p0, then ConvT 4x4
      s2 p1 to 128, 64, 3, BN + ReLU between, Tanh; D: Conv 4x4 s2 p1 3->64 LeakyReLU(0.2) without
      BN, ->128, ->256 with BN, Conv 256->1 4x4 valid, sigmoid (in the loss); no biases; BN momentum
      0.1 in PyTorch terms (0.9 here). Adam 2e-4, betas (0.5, 0.999), batch 64, 5 epochs of CelebA
      (5 x 202,599 / 64 = 15,828 steps), losses printed every 100 steps, 64 samples 8 per row.
      Fix: the seed resizes its data to 64x64 while G emits 32x32 (D would see 64x64 reals and 32x32
      fakes); here the data are resized to the 32x32 G emits. ``nz`` (undefined in the seed) is 100,
      the value its first layer is written for. The faces variant is grayscale (the embedded LFW
      crops have one channel), so G's last and D's first layer have 1 channel instead of 3.
  seed_keras_conv_mnist (mnist), seed_keras_conv_digits
      The seeds' Keras conv GAN. G: Dense(7*7*128) -> ConvT 128 5x5 -> LeakyReLU(0.01) ->
      BatchNorm(momentum 0.8) -> ConvT 128 5x5 s2 -> Conv 1 7x7 tanh; D: Conv 128 5x5 s2 ->
      LeakyReLU(0.01), twice -> Dense(1) sigmoid; batch 128. Keras' BN momentum 0.8 is the decay of
      the running averages, the same meaning as flax's momentum (PyTorch would write 0.2).
      Fixes: the seed's first ConvT has stride 1, so G emits 14x14 images into a D built for 28x28;
      here it has stride 2 (7 -> 14 -> 28, same layers and parameter count). The seed trains G
      towards label 0 (so G learns to look fake); here G is trained towards label 1.
      On a CPU this network is slow (XLA's CPU transposed convolutions: about 2 images/s on 2
      shared cores); the digits variant is meant for an accelerator or a smaller batch_size.
  seed_mlp_gan (mnist), seed_mlp_gan_digits
      The seeds' small MLP GAN: G 100->128->64->784 with a sigmoid output (data = pixels / 255 in
      [0, 1]: computed exactly, see genai_jax/models/mlp_gan.py), D 784->128->1; ReLU hidden
      activations; batch 32, 20 epochs of MNIST (20 x 60,000 / 32 = 37,500 steps).
  seed_mlp_gan_relu (mnist), seed_mlp_gan_relu_digits
      The other seeds' MLP GAN (reused for its MusicGAN): G 100->128->256->784 tanh, D
      784->128->256->1, ReLU.

Every model setting the seeds vary is a key (``--config.model.activation``, ``kernel_size``,
``bn_momentum``, ``output``, ``g_hidden``/``d_hidden``, ``width``); see dcgan_celeba.py.
"""

import ml_collections

from experiments.configs import dcgan_celeba

PRESETS = ("seed_dcgan32", "seed_dcgan32_faces", "seed_keras_conv_mnist", "seed_keras_conv_digits",
           "seed_mlp_gan", "seed_mlp_gan_digits", "seed_mlp_gan_relu", "seed_mlp_gan_relu_digits")


def get_config(preset: str = "seed_dcgan32") -> ml_collections.ConfigDict:
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; use one of: {', '.join(PRESETS)}")
  c = dcgan_celeba.get_config()  # the GAN defaults (Adam 2e-4, betas 0.5/0.999, BCE loss)
  c.log_every = 100
  c.num_samples = 64  # 8 x 8 grid
  mnist = dict(name="mnist", eval_split="test", image_size=28, channels=1, center_crop=False)
  digits = dict(mnist, name="sklearn_digits")  # 8x8 digits resized to 28x28 by the pipeline
  embedded = preset.endswith(("_digits", "_faces"))

  if preset.startswith("seed_dcgan32"):
    c.batch_size = 64
    c.num_steps = 15_828
    c.model.update(name="dcgan", width=64, image_size=32, channels=3, bn_momentum=0.9)
    c.data.update(image_size=32, channels=3)
    if preset == "seed_dcgan32_faces":
      c.num_steps = 1_500
      c.model.channels = 1
      c.data.update(name="skimage_lfw_faces", eval_split="test", channels=1, random_flip=True)
  elif preset.startswith("seed_keras_conv"):
    c.batch_size = 128
    c.num_steps = 4_690  # 10 epochs of MNIST
    c.model.update(name="keras_conv", image_size=28, channels=1, width=128, kernel_size=5,
                   out_kernel=7, activation="leaky_relu:0.01", bn_momentum=0.8)
    c.data.update(**(digits if embedded else mnist))
  elif preset.startswith("seed_mlp_gan_relu"):
    c.batch_size = 64
    c.num_steps = 30_000
    c.model.update(name="mlp", image_size=28, channels=1, g_hidden=(128, 256), d_hidden=(128, 256),
                   activation="relu", output="tanh")
    c.data.update(**(digits if embedded else mnist))
  else:  # seed_mlp_gan
    c.batch_size = 32
    c.num_steps = 37_500
    c.model.update(name="mlp", image_size=28, channels=1, g_hidden=(128, 64), d_hidden=(128,),
                   activation="relu", output="sigmoid")
    c.data.update(**(digits if embedded else mnist))

  if embedded and preset != "seed_dcgan32_faces":
    c.num_steps = 3_000
  if embedded:
    c.eval_every = c.checkpoint_every = 500
    # 297 test digits / 10 test faces: never ask for more eval images than the split holds.
    c.eval_batches = max(1, min(4, 297 // c.batch_size)) if preset.endswith("_digits") else 1
  return c
