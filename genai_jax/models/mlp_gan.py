"""Small GANs for 28x28 digits (the seeds' MNIST GAN): an MLP pair and a small conv pair.

Generators map z [B, z_dim] -> images [B, S, S, C] in [-1, 1]; discriminators map images to
logits [B]. All outputs are float32.
"""

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genai_jax.models.dcgan import DCGAN_INIT, _batch_norm
from genai_jax.models.layers import DownConv4x4, UpConv4x4


class MLPGenerator(nn.Module):
  hidden: Sequence[int] = (256, 512, 1024)
  image_size: int = 28
  channels: int = 1

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    x = z
    for h in self.hidden:
      x = nn.leaky_relu(nn.Dense(h)(x), 0.2)
    x = nn.Dense(self.image_size * self.image_size * self.channels)(x)
    return jnp.tanh(x).reshape(z.shape[0], self.image_size, self.image_size, self.channels)


class MLPDiscriminator(nn.Module):
  hidden: Sequence[int] = (512, 256)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    x = x.reshape(x.shape[0], -1)
    for h in self.hidden:
      x = nn.leaky_relu(nn.Dense(h)(x), 0.2)
    return nn.Dense(1)(x)[:, 0]


class ConvGenerator(nn.Module):
  """z -> Dense to (S/4)x(S/4)x2w -> up to S/2 (w) -> up to S (channels); S divisible by 4."""
  width: int = 64
  image_size: int = 28
  channels: int = 1

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    if self.image_size % 4:
      raise ValueError(f"conv GAN image_size must be divisible by 4, got {self.image_size}")
    s = self.image_size // 4
    x = nn.Dense(s * s * 2 * self.width, kernel_init=DCGAN_INIT, use_bias=False)(z)
    x = nn.relu(_batch_norm(train, None)(x.reshape(-1, s, s, 2 * self.width)))
    x = nn.relu(_batch_norm(train, None)(UpConv4x4(self.width, kernel_init=DCGAN_INIT)(x)))
    return jnp.tanh(UpConv4x4(self.channels, kernel_init=DCGAN_INIT)(x))


class ConvDiscriminator(nn.Module):
  width: int = 64

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    x = nn.leaky_relu(DownConv4x4(self.width, kernel_init=DCGAN_INIT)(x), 0.2)
    x = DownConv4x4(2 * self.width, kernel_init=DCGAN_INIT)(x)
    x = nn.leaky_relu(_batch_norm(train, None)(x), 0.2)
    return nn.Dense(1, kernel_init=DCGAN_INIT)(x.reshape(x.shape[0], -1))[:, 0]
