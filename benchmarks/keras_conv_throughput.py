"""The seeds' Keras conv GAN (seed_keras_conv_mnist) train-step throughput (images/s), ours
beside a PyTorch reference of the same step.

  python -m benchmarks.keras_conv_throughput [--batch 128] [--steps 3] [--rounds 5] [--impl subpixel]

The network is models/mlp_gan.py's KerasConvGenerator / KerasConvDiscriminator at the preset's
settings (28x28x1, width 128, 5x5 kernels, stride 2; G's two 5x5 stride-2 transposed
convolutions are what XLA's CPU backend runs badly: ``--impl xla`` times flax's plain
ConvTranspose, ``subpixel`` the exact rewrite in layers.conv_transpose). Both sides run the
step of benchmarks/dcgan_throughput.py (the PyTorch DCGAN example's): G forward once, D on a
real batch and on the detached fakes, Adam(2e-4, 0.5) on D, then G through the updated D, BCE
losses. PyTorch pads its transposed convolutions (padding 2, output_padding 1) and strided ones
(padding 2) symmetrically where 'SAME' pads (2, 1) / (1, 2): the same shapes and FLOPs. Rounds
alternate between the two; the median ratio is reported. PyTorch is optional.
"""

import argparse

import jax
import numpy as np

from benchmarks import common


def jax_runner(batch, impl):
  from experiments.configs import seed_gans
  c = seed_gans.get_config("seed_keras_conv_mnist")
  c.batch_size = batch
  c.model.conv_impl = impl
  size, channels = c.model.image_size, c.model.channels
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (batch, size, size, channels)).astype(np.float32)
  return common.jax_train_runner(c, {"image": images})


def torch_runner(batch, width=128, size=28, k=5, out_kernel=7, z_dim=100):
  import torch
  from torch import nn
  torch.manual_seed(0)
  s = size // 4

  class Generator(nn.Module):
    def __init__(self):
      super().__init__()
      self.fc = nn.Linear(z_dim, s * s * width)
      self.net = nn.Sequential(
          nn.ConvTranspose2d(width, width, k, 2, k // 2, output_padding=1), nn.LeakyReLU(0.01),
          nn.BatchNorm2d(width, eps=1e-3, momentum=0.2),
          nn.ConvTranspose2d(width, width, k, 2, k // 2, output_padding=1),
          nn.Conv2d(width, 1, out_kernel, 1, out_kernel // 2), nn.Tanh())

    def forward(self, z):
      return self.net(self.fc(z).view(-1, width, s, s))

  net_g = Generator()
  net_d = nn.Sequential(nn.Conv2d(1, width, k, 2, k // 2), nn.LeakyReLU(0.01),
                        nn.Conv2d(width, width, k, 2, k // 2), nn.LeakyReLU(0.01),
                        nn.Flatten(), nn.Linear(s * s * width, 1))
  real = torch.rand(batch, 1, size, size) * 2 - 1
  return common.torch_gan_runner(net_g, net_d, real, lambda: torch.randn(batch, z_dim))


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--batch", type=int, default=128, help="the preset's batch size")
  p.add_argument("--steps", type=int, default=3, help="steps per timed round")
  p.add_argument("--rounds", type=int, default=5)
  p.add_argument("--impl", default="subpixel", choices=["subpixel", "xla"],
                 help="model.conv_impl (xla: ~1-2 images/s; use --steps 1 --rounds 1)")
  p.add_argument("--no-torch", action="store_true")
  common.add_machine_args(p)
  a = p.parse_args()
  others = common.check_machine(a.allow_busy)

  print(f"seed_keras_conv_mnist 28x28x1 width 128, batch {a.batch}, {a.steps} steps x {a.rounds} "
        f"rounds; jax {jax.__version__} on {jax.devices()[0].platform} x{jax.device_count()}, "
        f"conv_impl={a.impl}", flush=True)
  ours = jax_runner(a.batch, a.impl)
  ours(1)  # compile + warm up
  ref = None
  if not a.no_torch:
    ref = common.torch_reference(lambda: torch_runner(a.batch), warmup=1)
  common.alternate_rounds(ours, ref, a.steps, a.rounds,
                          lambda t: f"{a.batch * a.steps / t:8.1f} images/s",
                          others=others, allow_busy=a.allow_busy)


if __name__ == "__main__":
  main()
