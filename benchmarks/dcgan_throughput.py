"""DCGAN 64x64 train-step throughput (images/s), ours beside a PyTorch reference of the same step.

  python -m benchmarks.dcgan_throughput [--batch 64] [--steps 10] [--rounds 3] [--impl subpixel]

Both sides run the PyTorch DCGAN example's step: G forward once, D on a real batch and on the
detached fakes (separate BatchNorm batches), Adam(2e-4, 0.5) on D, then G through the updated D.
Rounds alternate between the two so machine noise hits both; the ratio is per round, and the
median is reported. PyTorch is optional (``pip install torch==2.13.0``); without it only our
figure prints.
"""

import argparse

import jax
import numpy as np

from benchmarks import common


def jax_runner(batch, width, size, impl, dtype):
  from experiments.configs import dcgan_celeba
  c = dcgan_celeba.get_config()
  c.batch_size = batch
  c.model.update(width=width, image_size=size, conv_impl=impl, dtype=dtype)
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
  return common.jax_train_runner(c, {"image": images})


def torch_runner(batch, width, size):
  import torch
  from torch import nn
  torch.manual_seed(0)
  stages = int(np.log2(size)) - 2

  def bn(c):
    return nn.BatchNorm2d(c)

  g_layers, feats = [nn.ConvTranspose2d(100, width * 2**(stages - 1), 4, 1, 0, bias=False)], width * 2**(stages - 1)
  g_layers += [bn(feats), nn.ReLU(True)]
  for _ in range(stages - 1):
    g_layers += [nn.ConvTranspose2d(feats, feats // 2, 4, 2, 1, bias=False), bn(feats // 2), nn.ReLU(True)]
    feats //= 2
  g_layers += [nn.ConvTranspose2d(feats, 3, 4, 2, 1, bias=False), nn.Tanh()]
  d_layers, feats = [nn.Conv2d(3, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)], width
  for _ in range(stages - 1):
    d_layers += [nn.Conv2d(feats, feats * 2, 4, 2, 1, bias=False), bn(feats * 2), nn.LeakyReLU(0.2, True)]
    feats *= 2
  d_layers += [nn.Conv2d(feats, 1, 4, 1, 0, bias=False)]
  net_g, net_d = nn.Sequential(*g_layers), nn.Sequential(*d_layers)
  for m in list(net_g.modules()) + list(net_d.modules()):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
      nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
      nn.init.normal_(m.weight, 1.0, 0.02)
      nn.init.zeros_(m.bias)
  real = torch.rand(batch, 3, size, size) * 2 - 1
  return common.torch_gan_runner(net_g, net_d, real, lambda: torch.randn(batch, 100, 1, 1))


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--width", type=int, default=64)
  p.add_argument("--size", type=int, default=64)
  p.add_argument("--steps", type=int, default=10, help="steps per timed round")
  p.add_argument("--rounds", type=int, default=5)  # the parity target is a median of >= 5 alternating rounds
  p.add_argument("--impl", default="subpixel", choices=["subpixel", "xla"])
  p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  p.add_argument("--no-torch", action="store_true")
  common.add_machine_args(p)
  a = p.parse_args()
  others = common.check_machine(a.allow_busy)

  print(f"DCGAN {a.size}x{a.size} width {a.width}, batch {a.batch}, {a.steps} steps x {a.rounds} rounds; "
        f"jax {jax.__version__} on {jax.devices()[0].platform} x{jax.device_count()}, "
        f"conv_impl={a.impl}, dtype={a.dtype}", flush=True)
  ours = jax_runner(a.batch, a.width, a.size, a.impl, a.dtype)
  ours(2)  # compile + warm up
  ref = None
  if not a.no_torch:
    ref = common.torch_reference(lambda: torch_runner(a.batch, a.width, a.size), warmup=2)
  common.alternate_rounds(ours, ref, a.steps, a.rounds,
                          lambda t: f"{a.batch * a.steps / t:8.1f} images/s",
                          others=others, allow_busy=a.allow_busy)


if __name__ == "__main__":
  main()
