"""Small GANs for 28x28 digits (the seeds' MNIST GANs): an MLP pair, a small conv pair, and the
seeds' Keras conv pair.

Generators map z [B, z_dim] -> images [B, S, S, C] in [-1, 1] (the data pipeline's range);
discriminators map images in [-1, 1] to logits [B]. All outputs are float32; ``dtype`` is the
compute dtype (None: float32), parameters stay float32.

``output='sigmoid'`` (a seed whose generator ends in a sigmoid and whose data are pixels / 255 in
[0, 1]) is computed exactly: G returns ``2 * sigmoid(x) - 1`` and D first maps its input back with
``(x + 1) / 2``, so both networks compute the seed's functions on the seed's [0, 1] pixels while
the task, the samples and the evaluation keep the one [-1, 1] image convention.

None is class-conditional: ``y`` (the GAN signature's labels) must be None.
"""

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genai_jax.errors import ConfigError
from genai_jax.models.dcgan import DCGAN_INIT, _batch_norm, unconditional
from genai_jax.models.layers import (DownConv4x4, SubpixelConv, SubpixelConvTranspose, UpConv4x4,
                                     activation)

OUTPUTS = ("tanh", "sigmoid")
CONV_IMPLS = ("subpixel", "xla")  # keras_conv's transposed convolutions (layers.conv_transpose)


def _check_output(output: str) -> None:
  if output not in OUTPUTS:
    raise ConfigError(f"unknown model.output {output!r}; set model.output to one of "
                      f"{list(OUTPUTS)}", keys=("model.output",))


def _to_image(x: jax.Array, output: str) -> jax.Array:
  """Pre-activations -> images in [-1, 1] through the generator's output nonlinearity."""
  x = x.astype(jnp.float32)
  return jnp.tanh(x) if output == "tanh" else 2.0 * jax.nn.sigmoid(x) - 1.0


def _from_image(x: jax.Array, output: str, dtype) -> jax.Array:
  """Images in [-1, 1] -> the range the generator's nonlinearity emits ([0, 1] for sigmoid)."""
  x = x if output == "tanh" else (x + 1.0) * 0.5
  return x if dtype is None else x.astype(dtype)


class MLPGenerator(nn.Module):
  """z -> Dense(h) + activation for each h in ``hidden`` -> Dense(S*S*C) -> output nonlinearity."""
  hidden: Sequence[int] = (256, 512, 1024)
  image_size: int = 28
  channels: int = 1
  activation: str = "leaky_relu:0.2"
  output: str = "tanh"
  dtype: Any = None

  @nn.compact
  def __call__(self, z: jax.Array, y: Optional[jax.Array] = None, *, train: bool = True
               ) -> jax.Array:
    unconditional(y)
    act = activation(self.activation)
    x = z if self.dtype is None else z.astype(self.dtype)
    for h in self.hidden:
      x = act(nn.Dense(h, dtype=self.dtype)(x))
    x = nn.Dense(self.image_size * self.image_size * self.channels, dtype=self.dtype)(x)
    return _to_image(x, self.output).reshape(z.shape[0], self.image_size, self.image_size,
                                             self.channels)


class MLPDiscriminator(nn.Module):
  """images -> flatten -> Dense(h) + activation for each h in ``hidden`` -> Dense(1) logits."""
  hidden: Sequence[int] = (512, 256)
  activation: str = "leaky_relu:0.2"
  output: str = "tanh"  # the generator's output nonlinearity: the range D's input is mapped to
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, y: Optional[jax.Array] = None, *, train: bool = True
               ) -> jax.Array:
    unconditional(y)
    act = activation(self.activation)
    x = _from_image(x, self.output, self.dtype).reshape(x.shape[0], -1)
    for h in self.hidden:
      x = act(nn.Dense(h, dtype=self.dtype)(x))
    return nn.Dense(1, dtype=self.dtype)(x)[:, 0].astype(jnp.float32)


class ConvGenerator(nn.Module):
  """z -> Dense to (S/4)x(S/4)x2w -> up to S/2 (w) -> up to S (channels); S divisible by 4."""
  width: int = 64
  image_size: int = 28
  channels: int = 1
  bn_momentum: float = 0.9
  dtype: Any = None

  @nn.compact
  def __call__(self, z: jax.Array, y: Optional[jax.Array] = None, *, train: bool = True
               ) -> jax.Array:
    unconditional(y)
    if self.image_size % 4:
      raise ConfigError(f"the conv GAN needs model.image_size divisible by 4, got "
                        f"{self.image_size}; set model.image_size and data.image_size",
                        keys=("model.image_size",))
    s, bn = self.image_size // 4, lambda: _batch_norm(train, self.dtype, self.bn_momentum)
    z = z if self.dtype is None else z.astype(self.dtype)
    x = nn.Dense(s * s * 2 * self.width, kernel_init=DCGAN_INIT, use_bias=False, dtype=self.dtype)(z)
    x = nn.relu(bn()(x.reshape(-1, s, s, 2 * self.width)))
    x = nn.relu(bn()(UpConv4x4(self.width, kernel_init=DCGAN_INIT, dtype=self.dtype)(x)))
    x = UpConv4x4(self.channels, kernel_init=DCGAN_INIT, dtype=self.dtype)(x)
    return jnp.tanh(x.astype(jnp.float32))


class ConvDiscriminator(nn.Module):
  width: int = 64
  bn_momentum: float = 0.9
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, y: Optional[jax.Array] = None, *, train: bool = True
               ) -> jax.Array:
    unconditional(y)
    x = x if self.dtype is None else x.astype(self.dtype)
    x = nn.leaky_relu(DownConv4x4(self.width, kernel_init=DCGAN_INIT, dtype=self.dtype)(x), 0.2)
    x = DownConv4x4(2 * self.width, kernel_init=DCGAN_INIT, dtype=self.dtype)(x)
    x = nn.leaky_relu(_batch_norm(train, self.dtype, self.bn_momentum)(x), 0.2)
    logits = nn.Dense(1, kernel_init=DCGAN_INIT, dtype=self.dtype)(x.reshape(x.shape[0], -1))
    return logits[:, 0].astype(jnp.float32)


# Keras' defaults: glorot-uniform kernels, zero biases, BatchNorm epsilon 1e-3.
_KERAS_INIT = nn.initializers.glorot_uniform()


class KerasConvGenerator(nn.Module):
  """The seeds' Keras conv generator, for S x S images (S divisible by 4):

  Dense(S/4 * S/4 * width) -> reshape -> ConvT(width, k x k, stride 2) -> activation ->
  BatchNorm(bn_momentum) -> ConvT(width, k x k, stride 2) -> Conv(channels, out_kernel) -> tanh,
  'same' padding, with biases, as the seed lists them (BN after the activation; no activation
  between the second ConvT and the last Conv).

  The seed's first ConvT has stride 1, so its G emits S/2 x S/2 (14 x 14) images into a D built
  for S x S (28 x 28); here the first ConvT has stride 2, which makes the output S x S with
  exactly the seed's layers and parameter count (a stride does not change a kernel's size).

  ``conv_impl='subpixel'`` computes both ConvTs as sub-pixel convolutions (layers.conv_transpose:
  exact, same parameters as flax's ConvTranspose) and the last Conv by layers.conv_strided;
  'xla' runs flax's ConvTranspose and Conv ops, which XLA's CPU backend runs 15-60x (the ConvTs'
  dilated-convolution gradients) and ~4x (the 128 -> 1 head) slower here.
  """
  width: int = 128
  kernel_size: int = 5
  out_kernel: int = 7
  activation: str = "leaky_relu:0.01"
  bn_momentum: float = 0.8  # Keras BatchNormalization(momentum=0.8); flax semantics are Keras'
  image_size: int = 28
  channels: int = 1
  dtype: Any = None
  conv_impl: str = "subpixel"

  @nn.compact
  def __call__(self, z: jax.Array, y: Optional[jax.Array] = None, *, train: bool = True
               ) -> jax.Array:
    unconditional(y)
    if self.image_size % 4:
      raise ConfigError(f"the keras_conv GAN needs model.image_size divisible by 4, got "
                        f"{self.image_size}; set model.image_size and data.image_size",
                        keys=("model.image_size",))
    if self.conv_impl not in CONV_IMPLS:
      raise ConfigError(f"unknown model.conv_impl {self.conv_impl!r} for keras_conv; set it to "
                        f"one of {list(CONV_IMPLS)}", keys=("model.conv_impl",))
    s, k, dt = self.image_size // 4, (self.kernel_size,) * 2, self.dtype
    z = z if dt is None else z.astype(dt)
    x = nn.Dense(s * s * self.width, kernel_init=_KERAS_INIT, dtype=dt)(z)
    x = x.reshape(-1, s, s, self.width)
    # Named as flax names nn.ConvTranspose, so params and checkpoints are the same either way.
    up = lambda i: SubpixelConvTranspose(self.width, k, (2, 2), "SAME", impl=self.conv_impl,
                                         kernel_init=_KERAS_INIT, dtype=dt,
                                         name=f"ConvTranspose_{i}")
    x = activation(self.activation)(up(0)(x))
    x = _batch_norm(train, dt, self.bn_momentum, epsilon=1e-3)(x)
    x = up(1)(x)
    # nn.Conv's parameters and name; computed as layers.conv_strided (its 128 -> 1 head is a
    # wide matmul and a shifted sum, ~4x faster than XLA's CPU convolution forward + backward).
    x = SubpixelConv(self.channels, (self.out_kernel,) * 2, (1, 1), "SAME", impl=self.conv_impl,
                     kernel_init=_KERAS_INIT, dtype=dt, name="Conv_0")(x)
    return jnp.tanh(x.astype(jnp.float32))


class KerasConvDiscriminator(nn.Module):
  """The seeds' Keras conv discriminator: two Conv(width, k x k, stride 2, 'same') each followed
  by the activation -> flatten -> Dense(1) (the seed's sigmoid is inside the BCE loss).

  ``conv_impl='subpixel'`` computes the convolutions by layers.conv_strided (flax's names and
  parameters; the second one's input gradient as a sub-pixel transposed convolution), 'xla' by
  flax's Conv."""
  width: int = 128
  kernel_size: int = 5
  activation: str = "leaky_relu:0.01"
  dtype: Any = None
  conv_impl: str = "subpixel"

  @nn.compact
  def __call__(self, x: jax.Array, y: Optional[jax.Array] = None, *, train: bool = True
               ) -> jax.Array:
    unconditional(y)
    act, k, dt = activation(self.activation), (self.kernel_size,) * 2, self.dtype
    x = x if dt is None else x.astype(dt)
    for i in range(2):
      x = act(SubpixelConv(self.width, k, (2, 2), "SAME", impl=self.conv_impl,
                           kernel_init=_KERAS_INIT, dtype=dt, name=f"Conv_{i}")(x))
    logits = nn.Dense(1, kernel_init=_KERAS_INIT, dtype=dt)(x.reshape(x.shape[0], -1))
    return logits[:, 0].astype(jnp.float32)
