"""SNGAN ResNet generator and discriminator (Miyato et al., 2018; Miyato & Koyama, 2018), laid out
as Mimicry's ``SNGANGenerator{32,64,128}`` / ``SNGANDiscriminator{32,64,128}``.

Generator: z -> linear to 4x4xW -> up-ResBlocks -> BN-ReLU-conv3x3-tanh. An up-ResBlock is
BN-ReLU-up2x(nearest)-conv3x3-BN-ReLU-conv3x3 plus a shortcut up2x-conv1x1 (the shortcut conv
only where the block upsamples or changes width, i.e. always here).
Discriminator: an optimised first block (conv3x3-ReLU-conv3x3-avgpool2 plus avgpool2-conv1x1),
then DBlocks ReLU-conv3x3-ReLU-conv3x3[-avgpool2] plus conv1x1[-avgpool2] where the block
downsamples or changes width, then ReLU, global sum pooling and a linear logit; every conv and
the linear layer are spectrally normalised by default.

Channels (``width`` = G's 4x4 channels, ``d_width`` = D's widest channels; defaults are the
published nets):

    32px  (CIFAR-10, W=256, Wd=128): G 4->8->16->32 all W;        D 3->Wd(16)->Wd(8)->Wd->Wd
    64px  (W=Wd=1024):  G W, W/2, W/4, W/8, W/16 (4->64);         D Wd/16(32) .. Wd(2)
    128px (W=Wd=1024):  G W, W, W/2, W/4, W/8, W/16 (4->128);     D Wd/16(64) .. Wd(4), Wd(4)

Class-conditional (``num_classes > 0``): G's ResBlock BatchNorms take per-class gains and biases
(conditional BN; the final BN stays unconditional as in the authors' code) and D adds the
projection term <embed(y), h> to the logit, h being the pooled features. ``shared_embedding``
> 0 replaces G's per-class tables by BigGAN's shared class embedding and linear gains/biases
(``layers_gan.ConditionalBatchNorm``), which conditions within a short run.

``attention_res`` > 0 puts a SAGAN self-attention block after the G block and after the first D
block whose output is attention_res x attention_res.
"""

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from genai_jax.errors import ConfigError
from genai_jax.models import layers_gan as L

Array = jax.Array

# image size -> G: divisors of width per block output, after the 4x4 input (each block doubles
# the resolution); D: (divisor of d_width, downsample) per block, the first one optimised.
G_PLAN = {32: (1, 1, 1), 64: (2, 4, 8, 16), 128: (1, 2, 4, 8, 16)}
D_PLAN = {32: ((1, True), (1, True), (1, False), (1, False)),
          64: ((16, True), (8, True), (4, True), (2, True), (1, True)),
          128: ((16, True), (8, True), (4, True), (2, True), (1, True), (1, False))}
# Mimicry's / the SNGAN authors' widths per image size: (G width, D width).
DEFAULT_WIDTHS = {32: (256, 128), 64: (1024, 1024), 128: (1024, 1024)}


def widths(image_size: int, width: Optional[int], d_width: Optional[int]) -> tuple[int, int]:
  """(G width, D width) for ``image_size``, None meaning the published default; a size or width
  the nets cannot be built with is a ConfigError."""
  if image_size not in G_PLAN:
    raise ConfigError(f"sngan_resnet supports model.image_size 32, 64 or 128, got {image_size}; "
                      f"set model.image_size (and data.image_size) to one of them",
                      keys=("model.image_size",))
  g, d = DEFAULT_WIDTHS[image_size]
  g, d = (g if width is None else width), (d if d_width is None else d_width)
  for name, w, div in (("width", g, max(G_PLAN[image_size])),
                       ("d_width", d, max(x for x, _ in D_PLAN[image_size]))):
    if w < div or w % div:
      raise ConfigError(f"sngan_resnet at {image_size}px divides model.{name} by {div}, got {w}; "
                        f"set model.{name} to a multiple of {div}", keys=(f"model.{name}",))
  return g, d


def attention_resolutions(image_size: int) -> list[int]:
  """The attention_res values for which both G and D have a feature map of that size."""
  g_res = {4 * 2**(i + 1) for i in range(len(G_PLAN[image_size]))}
  d_res = {image_size // 2**sum(down for _, down in D_PLAN[image_size][:i + 1])
           for i in range(len(D_PLAN[image_size]))}
  return sorted(g_res & d_res)


def _check_attention(image_size: int, attention_res: int) -> None:
  if attention_res and attention_res not in attention_resolutions(image_size):
    raise ConfigError(f"model.attention_res={attention_res} is not a feature-map size of both "
                      f"sngan_resnet nets at {image_size}px; set model.attention_res to "
                      f"0 (none) or one of {attention_resolutions(image_size)}",
                      keys=("model.attention_res",))


def _check_labels(num_classes: int, y: Optional[Array], who: str) -> None:
  if num_classes and y is None:
    raise ConfigError(f"the {who} is class-conditional (model.num_classes={num_classes}) but got "
                      f"no labels; pass y (int32 [B]) or set model.num_classes=0",
                      keys=("model.num_classes",))
  if not num_classes and y is not None:
    raise ConfigError(f"the {who} is unconditional (model.num_classes=0) but got labels; set "
                      f"model.num_classes to the number of classes", keys=("model.num_classes",))


def _up(x: Array) -> Array:
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)  # nearest neighbour, as the authors


def _down(x: Array) -> Array:
  return nn.avg_pool(x, (2, 2), (2, 2))


class GBlock(nn.Module):
  """Up-ResBlock: x [B, H, W, Cin] (y: int [B] labels, float [B, E] class embeddings or None;
  see ``ConditionalBatchNorm``) -> [B, 2H, 2W, features]."""
  features: int
  num_classes: int = 0
  spectral_norm: bool = False
  bn_momentum: float = 0.9
  dtype: Any = None

  @nn.compact
  def __call__(self, x: Array, y: Optional[Array] = None, *, train: bool) -> Array:
    bn = lambda name: L.ConditionalBatchNorm(self.num_classes, self.bn_momentum, dtype=self.dtype,
                                             name=name)
    conv = lambda k, init, name: L.SNConv(self.features, k, self.spectral_norm, kernel_init=init,
                                          dtype=self.dtype, name=name)
    h = _up(nn.relu(bn("b1")(x, y, train=train)))
    h = conv(3, L.XAVIER_RELU, "c1")(h, train=train)
    h = nn.relu(bn("b2")(h, y, train=train))
    h = conv(3, L.XAVIER_RELU, "c2")(h, train=train)
    # conv1x1(up(x)) == up(conv1x1(x)) for nearest upsampling; the latter is 4x cheaper.
    return h + _up(conv(1, L.XAVIER, "c_sc")(x, train=train))


class DBlock(nn.Module):
  """Down-ResBlock: x [B, H, W, Cin] -> [B, H/2 or H, ..., features]. ``optimized``: SNGAN's first
  block, which takes the image (no ReLU before its first conv, pool before its shortcut conv)."""
  features: int
  downsample: bool = True
  optimized: bool = False
  spectral_norm: bool = True
  dtype: Any = None

  @nn.compact
  def __call__(self, x: Array, *, train: bool) -> Array:
    conv = lambda k, init, name: L.SNConv(self.features, k, self.spectral_norm, kernel_init=init,
                                          dtype=self.dtype, name=name)
    pool = _down if self.downsample else (lambda t: t)
    h = x if self.optimized else nn.relu(x)
    h = conv(3, L.XAVIER_RELU, "c1")(h, train=train)
    h = pool(conv(3, L.XAVIER_RELU, "c2")(nn.relu(h), train=train))
    if self.optimized:
      return h + conv(1, L.XAVIER, "c_sc")(_down(x), train=train)
    if self.downsample or x.shape[-1] != self.features:
      return h + pool(conv(1, L.XAVIER, "c_sc")(x, train=train))
    return h + x


class ResNetGenerator(nn.Module):
  """z [B, z_dim] (y int32 [B] when ``num_classes`` > 0) -> images [B, S, S, C] in [-1, 1],
  float32. ``width`` None: the published width for ``image_size``."""
  width: Optional[int] = None
  image_size: int = 32
  channels: int = 3
  num_classes: int = 0
  attention_res: int = 0
  spectral_norm: bool = False
  bn_momentum: float = 0.9
  dtype: Any = None
  shared_embedding: int = 0  # > 0: BigGAN's shared class embedding of this size feeds every CBN

  @nn.compact
  def __call__(self, z: Array, y: Optional[Array] = None, *, train: bool) -> Array:
    width, _ = widths(self.image_size, self.width, None)
    _check_attention(self.image_size, self.attention_res)
    _check_labels(self.num_classes, y, "generator")
    if self.num_classes and self.shared_embedding:
      # One N(0, 1) embedding per class, shared by every conditional BN (BigGAN, no hierarchical z).
      y = nn.Embed(self.num_classes, self.shared_embedding, embedding_init=nn.initializers.normal(1.0),
                   name="shared")(y)
    z = z if self.dtype is None else z.astype(self.dtype)
    x = L.SNDense(16 * width, self.spectral_norm, dtype=self.dtype, name="l1")(z, train=train)
    x, res = x.reshape(z.shape[0], 4, 4, width), 4
    for i, div in enumerate(G_PLAN[self.image_size]):
      x = GBlock(width // div, self.num_classes, self.spectral_norm, self.bn_momentum, self.dtype,
                 name=f"block{i}")(x, y, train=train)
      res *= 2
      if res == self.attention_res:
        x = L.SelfAttention(self.spectral_norm, self.dtype, name="attention")(x, train=train)
    x = nn.relu(L.batch_norm(train, self.dtype, self.bn_momentum, name="b_out")(x))
    x = L.SNConv(self.channels, 3, self.spectral_norm, kernel_init=L.XAVIER, dtype=self.dtype,
                 name="c_out")(x, train=train)
    return jnp.tanh(x.astype(jnp.float32))


class ResNetDiscriminator(nn.Module):
  """images [B, S, S, C] in [-1, 1] (y int32 [B] when ``num_classes`` > 0) -> logits [B],
  float32. ``d_width`` None: the published width for the input's size."""
  d_width: Optional[int] = None
  num_classes: int = 0
  attention_res: int = 0
  spectral_norm: bool = True
  dtype: Any = None

  @nn.compact
  def __call__(self, x: Array, y: Optional[Array] = None, *, train: bool) -> Array:
    size = x.shape[1]
    _, width = widths(size, None, self.d_width)
    _check_attention(size, self.attention_res)
    _check_labels(self.num_classes, y, "discriminator")
    h, attended = (x if self.dtype is None else x.astype(self.dtype)), False
    for i, (div, down) in enumerate(D_PLAN[size]):
      h = DBlock(width // div, down, i == 0, self.spectral_norm, self.dtype,
                 name=f"block{i}")(h, train=train)
      if h.shape[1] == self.attention_res and not attended:
        h, attended = L.SelfAttention(self.spectral_norm, self.dtype, name="attention")(
            h, train=train), True
    h = jnp.sum(nn.relu(h), axis=(1, 2))  # global sum pooling -> [B, width]
    logits = L.SNDense(1, self.spectral_norm, dtype=self.dtype, name="l_out")(h, train=train)[:, 0]
    if self.num_classes:
      embed = L.SNEmbed(self.num_classes, h.shape[-1], self.spectral_norm, dtype=self.dtype,
                        name="embed")(y, train=train)
      logits = logits + jnp.sum(embed * h, axis=-1)  # the projection term <embed(y), h>
    return logits.astype(jnp.float32)
