"""VAE encoders and decoders: an MLP pair (the flax example's 784-500-20) and a small conv pair.

Encoders map images [B, S, S, C] (float32 in [0, 1]) to the parameters of a diagonal Gaussian
q(z|x): ``(mean, logvar)``, each float32 [B, latent_size]. Decoders map z [..., latent_size] to
the parameters of p(x|z) per pixel, float32 [..., S, S, C * out_params]: Bernoulli logits
(``out_params=1``) or a Gaussian's mean and raw log-variance stacked on the channel axis
(``out_params=2``). Decoders accept extra leading axes (importance samples).
"""

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genai_jax.errors import ConfigError
from genai_jax.models.layers import activation, down_conv_4x4, up_conv_4x4

LOGVAR_BOUND = 10.0


def bound_logvar(raw: jax.Array, bound: float = LOGVAR_BOUND) -> jax.Array:
  """Soft-clips a log-variance to (-bound, bound): ``bound * tanh(raw / bound)``, same shape.

  An unbounded log-variance lets exp() overflow (KL -> inf, then NaN) when the encoder's output
  drifts early in training or at a high learning rate; a hard clip would also zero its gradient.
  Near 0 this is the identity, and sigma stays within [e^-5, e^5] for bound 10.
  """
  return bound * jnp.tanh(raw / bound)


class MLPEncoder(nn.Module):
  """x -> Dense(h) + activation for each h in ``hidden`` -> two heads Dense(latent): mean and
  logvar (the same linear map as one Dense(2 * latent) split in two)."""
  hidden: Sequence[int] = (500,)
  latent_size: int = 20
  activation: str = "relu"

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    h = x.reshape(x.shape[0], -1)
    act = activation(self.activation)
    for i, width in enumerate(self.hidden):
      h = act(nn.Dense(width, name=f"hidden{i}")(h))
    mean = nn.Dense(self.latent_size, name="mean")(h)
    logvar = bound_logvar(nn.Dense(self.latent_size, name="logvar")(h))
    return mean, logvar


class MLPDecoder(nn.Module):
  """z -> Dense(h) + activation for each h in ``hidden`` (in this order) -> Dense(S*S*C*out_params)."""
  hidden: Sequence[int] = (500,)
  image_size: int = 28
  channels: int = 1
  out_params: int = 1
  activation: str = "relu"

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    h = z
    act = activation(self.activation)
    for i, width in enumerate(self.hidden):
      h = act(nn.Dense(width, name=f"hidden{i}")(h))
    s, c = self.image_size, self.channels * self.out_params
    return nn.Dense(s * s * c, name="out")(h).reshape(*z.shape[:-1], s, s, c)


class _Conv4x4(nn.Module):
  """4x4 stride-2 convolution (down) or transposed convolution (up, PyTorch k=4 s=2 p=1), with a
  bias; computed by ``layers`` in the exact matmul form that XLA's CPU backend runs fast."""
  features: int
  up: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    w = self.param("kernel", nn.initializers.he_normal(), (4, 4, x.shape[-1], self.features))
    b = self.param("bias", nn.initializers.zeros, (self.features,))
    return (up_conv_4x4 if self.up else down_conv_4x4)(x, w) + b


class ConvEncoder(nn.Module):
  """[B, S, S, C] -> down to S/2 (width) -> S/4 (2 width) -> Dense(dense) -> (mean, logvar)."""
  width: int = 32
  dense: int = 256
  latent_size: int = 20

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    h = nn.relu(_Conv4x4(self.width, name="down1")(x))
    h = nn.relu(_Conv4x4(2 * self.width, name="down2")(h))
    h = nn.relu(nn.Dense(self.dense, name="dense")(h.reshape(x.shape[0], -1)))
    mean = nn.Dense(self.latent_size, name="mean")(h)
    logvar = bound_logvar(nn.Dense(self.latent_size, name="logvar")(h))
    return mean, logvar


class ConvDecoder(nn.Module):
  """z -> Dense(dense) -> Dense to (S/4)^2 x 2 width -> up to S/2 (width) -> up to S (C x out_params)."""
  width: int = 32
  dense: int = 256
  image_size: int = 28
  channels: int = 1
  out_params: int = 1

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    lead, s = z.shape[:-1], self.image_size // 4
    h = z.reshape(-1, z.shape[-1])  # fold importance samples into the batch for the convs
    h = nn.relu(nn.Dense(self.dense, name="dense")(h))
    h = nn.relu(nn.Dense(s * s * 2 * self.width, name="project")(h)).reshape(-1, s, s, 2 * self.width)
    h = nn.relu(_Conv4x4(self.width, up=True, name="up1")(h))
    h = _Conv4x4(self.channels * self.out_params, up=True, name="up2")(h)
    return h.reshape(*lead, *h.shape[1:])


class VAE(nn.Module):
  """An encoder/decoder pair; ``__call__`` only exists to create both sets of parameters.

  Use ``apply(..., method='encode' | 'decode')`` for the two halves.
  """
  encoder: nn.Module
  decoder: nn.Module

  def __call__(self, x: jax.Array) -> jax.Array:
    mean, _ = self.encoder(x)
    return self.decoder(mean)

  def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    return self.encoder(x)

  def decode(self, z: jax.Array) -> jax.Array:
    return self.decoder(z)


def make_vae(name: str, *, image_size: int, channels: int, latent_size: int,
             hidden: Sequence[int] = (500,), decoder_hidden: Optional[Sequence[int]] = None,
             activation: str = "relu", width: int = 32, dense: int = 256,
             out_params: int = 1) -> VAE:
  """The VAE ``name`` ('mlp' | 'conv'). The MLP decoder's hidden widths are ``decoder_hidden``,
  or ``hidden`` reversed (a mirror of the encoder) when it is None. Raises ConfigError for other
  names or sizes that do not fit."""
  if name == "mlp":
    dec = tuple(reversed(tuple(hidden))) if decoder_hidden is None else tuple(decoder_hidden)
    return VAE(MLPEncoder(tuple(hidden), latent_size, activation),
               MLPDecoder(dec, image_size, channels, out_params, activation))
  if name == "conv":
    if image_size % 4:
      raise ConfigError(f"the conv VAE needs model.image_size divisible by 4, got {image_size}; "
                        f"set model.image_size and data.image_size",
                        keys=("model.image_size", "data.image_size"))
    return VAE(ConvEncoder(width, dense, latent_size),
               ConvDecoder(width, dense, image_size, channels, out_params))
  raise ConfigError(f"unknown VAE model {name!r}; set model.name to 'mlp' or 'conv'",
                    keys=("model.name",))
