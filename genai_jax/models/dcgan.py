"""DCGAN generator and discriminator (Radford et al., 2015), as in the PyTorch DCGAN example.

At ``width=64, image_size=64`` the generator maps z[100] -> 512@4x4 -> 256@8x8 -> 128@16x16 ->
64@32x32 -> 3@64x64 (3.58M parameters) and the discriminator mirrors it (2.77M). Other image
sizes (any power of two >= 8) add or drop a stage; the narrowest stage always has ``width``
channels.

``spectral_norm=True`` on the discriminator is Miyato et al.'s SN-DCGAN discriminator: every
convolution spectrally normalised and no BatchNorm (BN after a normalised layer would undo the
Lipschitz bound SN imposes); the power-iteration vectors live in ``batch_stats``.

Neither network is class-conditional: ``y`` must be None (see ``genai_jax.models.sngan``).
"""

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from genai_jax.models.layers import DownConv4x4, UpConv4x4
from genai_jax.models.layers_gan import apply_spectral_norm
from genai_jax.errors import ConfigError

DCGAN_INIT = nn.initializers.normal(0.02)


def _num_stages(image_size: int) -> int:
  n = image_size.bit_length() - 1
  if image_size < 8 or image_size != 2**n:
    raise ConfigError(f"DCGAN image_size must be a power of two >= 8, got {image_size}; "
                     "set model.image_size to e.g. 32 or 64", keys=("model.image_size",))
  return n - 2  # number of 2x up/down-sampling stages from 4x4


def unconditional(y: Optional[jax.Array]) -> None:
  """Refuses labels for a model that has no class input."""
  if y is not None:
    raise ConfigError("this GAN model is unconditional; set model.name=sngan_resnet "
                      "for class-conditional generation, or model.num_classes=0",
                      keys=("model.name", "model.num_classes"))


def _batch_norm(train: bool, dtype, momentum: float = 0.9, epsilon: float = 1e-5) -> nn.BatchNorm:
  # ``momentum`` is the decay of the running averages (flax and Keras semantics: running =
  # momentum * running + (1 - momentum) * batch); PyTorch's momentum is 1 minus it, so PyTorch's
  # default 0.1 is 0.9 here. eps 1e-5 as PyTorch; gamma ~ N(1, 0.02) as in the paper code.
  return nn.BatchNorm(use_running_average=not train, momentum=momentum, epsilon=epsilon, dtype=dtype,
                      scale_init=lambda k, s, d=jnp.float32: 1.0 + 0.02 * jax.random.normal(k, s, d))


class Generator(nn.Module):
  """z [B, z_dim] -> images [B, image_size, image_size, channels] in [-1, 1] (float32)."""
  width: int = 64
  image_size: int = 64
  channels: int = 3
  conv_impl: str = "subpixel"
  dtype: Any = None  # compute dtype (e.g. jnp.bfloat16); params and BN statistics stay float32
  bn_momentum: float = 0.9  # decay of BN running averages (flax semantics; PyTorch 0.1)

  @nn.compact
  def __call__(self, z: jax.Array, y: Optional[jax.Array] = None, *, train: bool = True
               ) -> jax.Array:
    unconditional(y)
    stages = _num_stages(self.image_size)
    feats = self.width * 2**(stages - 1)
    # First layer: ConvTranspose(k=4, s=1, p=0) on a 1x1 input is a dense map to 4x4xfeats.
    kernel = self.param("project", DCGAN_INIT, (4, 4, z.shape[-1], feats))
    z = z if self.dtype is None else z.astype(self.dtype)
    x = jnp.einsum("bz,hwzf->bhwf", z, kernel.astype(z.dtype))
    x = nn.relu(_batch_norm(train, self.dtype, self.bn_momentum)(x))
    for i in range(stages - 1):
      feats //= 2
      x = UpConv4x4(feats, self.conv_impl, DCGAN_INIT, self.dtype, name=f"up{i}")(x)
      x = nn.relu(_batch_norm(train, self.dtype, self.bn_momentum)(x))
    x = UpConv4x4(self.channels, self.conv_impl, DCGAN_INIT, self.dtype, name="to_image")(x)
    return jnp.tanh(x).astype(jnp.float32)


class Discriminator(nn.Module):
  """images [B, S, S, C] in [-1, 1] -> logits [B] (float32)."""
  width: int = 64
  conv_impl: str = "subpixel"
  dtype: Any = None
  bn_momentum: float = 0.9
  spectral_norm: bool = False  # SN-DCGAN: SN on every layer, no BatchNorm

  @nn.compact
  def __call__(self, x: jax.Array, y: Optional[jax.Array] = None, *, train: bool = True
               ) -> jax.Array:
    unconditional(y)
    stages = _num_stages(x.shape[1])
    x = x if self.dtype is None else x.astype(self.dtype)
    feats = self.width
    for i in range(stages):
      conv = DownConv4x4(feats, self.conv_impl, DCGAN_INIT, self.dtype, name=f"down{i}")
      x = apply_spectral_norm(conv, x, train, f"sn_down{i}") if self.spectral_norm else conv(x)
      if i > 0 and not self.spectral_norm:  # no BatchNorm on the first layer (Radford et al.)
        x = _batch_norm(train, self.dtype, self.bn_momentum)(x)
      x = nn.leaky_relu(x, 0.2)
      feats *= 2
    # Last layer: Conv(k=4, s=1, p=0) on a 4x4 map is a dense map to one logit.
    if self.spectral_norm:
      return apply_spectral_norm(_Logit4x4(self.dtype, name="logit"), x, train, "sn_logit")
    kernel = self.param("logit", DCGAN_INIT, (4, 4, x.shape[-1], 1))
    return jnp.einsum("bhwc,hwco->bo", x, kernel.astype(x.dtype))[:, 0].astype(jnp.float32)


class _Logit4x4(nn.Module):
  """The discriminator's last layer as a module, so SpectralNorm can wrap it: [B, 4, 4, C] -> [B]."""
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", DCGAN_INIT, (4, 4, x.shape[-1], 1))
    return jnp.einsum("bhwc,hwco->bo", x, kernel.astype(x.dtype))[:, 0].astype(jnp.float32)
