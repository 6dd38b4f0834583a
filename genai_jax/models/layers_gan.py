"""Building blocks of today's GANs: spectral normalisation, SAGAN self-attention, conditional
BatchNorm and the projection discriminator's class term.

Spectral normalisation (Miyato et al., 2018) is ``flax.linen.SpectralNorm``: it divides every
kernel of the wrapped layer (reshaped to [fan_in, fan_out]) by a power-iteration estimate of its
largest singular value. The power-iteration vector ``u`` and the estimate ``sigma`` live in the
``batch_stats`` collection; they advance one iteration per forward pass in training
(``train=True``, ``mutable=['batch_stats']``) and are read unchanged otherwise, so they travel
with the BatchNorm statistics through the train state and its checkpoints, exactly as PyTorch's
``spectral_norm`` buffers ``weight_u`` do.

All modules take NHWC activations; ``dtype`` is the compute dtype (None: float32) and parameters
stay float32.
"""

from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from genai_jax.errors import ConfigError

Array = jax.Array

# Xavier-uniform with gain sqrt(2) (residual convs) and gain 1 (shortcuts, linear layers), the
# initialisation of Mimicry's and the SNGAN authors' ResNets.
XAVIER_RELU = nn.initializers.variance_scaling(2.0, "fan_avg", "uniform")
XAVIER = nn.initializers.xavier_uniform()


class SNConv(nn.Module):
  """'SAME' stride-1 k x k convolution, spectrally normalised when ``spectral_norm``.

  x [B, H, W, Cin] -> [B, H, W, features] in ``dtype``. The kernel is always at
  ``<name>/conv/kernel`` so the parameter tree does not depend on the switch.
  """
  features: int
  kernel_size: int = 3
  spectral_norm: bool = False
  use_bias: bool = True
  kernel_init: Callable = XAVIER_RELU
  dtype: Any = None

  @nn.compact
  def __call__(self, x: Array, *, train: bool) -> Array:
    k = self.kernel_size
    layer = nn.Conv(self.features, (k, k), padding="SAME", use_bias=self.use_bias,
                    kernel_init=self.kernel_init, dtype=self.dtype, name="conv")
    return _maybe_sn(layer, x, self.spectral_norm, train)


class SNDense(nn.Module):
  """Dense layer x [..., Din] -> [..., features], spectrally normalised when ``spectral_norm``."""
  features: int
  spectral_norm: bool = False
  use_bias: bool = True
  kernel_init: Callable = XAVIER
  dtype: Any = None

  @nn.compact
  def __call__(self, x: Array, *, train: bool) -> Array:
    layer = nn.Dense(self.features, use_bias=self.use_bias, kernel_init=self.kernel_init,
                     dtype=self.dtype, name="dense")
    return _maybe_sn(layer, x, self.spectral_norm, train)


class SNEmbed(nn.Module):
  """Class embedding int [B] -> [B, features]; its [num_classes, features] table is spectrally
  normalised when ``spectral_norm`` (the projection discriminator's embedding in Miyato & Koyama)."""
  num_classes: int
  features: int
  spectral_norm: bool = False
  embedding_init: Callable = XAVIER
  dtype: Any = None

  @nn.compact
  def __call__(self, y: Array, *, train: bool) -> Array:
    layer = nn.Embed(self.num_classes, self.features, embedding_init=self.embedding_init,
                     dtype=self.dtype, name="embed")
    return _maybe_sn(layer, y, self.spectral_norm, train)


def _maybe_sn(layer: nn.Module, x: Array, spectral_norm: bool, train: bool) -> Array:
  return apply_spectral_norm(layer, x, train) if spectral_norm else layer(x)


def apply_spectral_norm(layer: nn.Module, x: Array, train: bool, name: str = "sn") -> Array:
  """``layer(x)`` with every kernel of ``layer`` divided by its spectral norm, through
  ``nn.SpectralNorm`` (named ``name``; ``u`` and ``sigma`` in ``batch_stats``). Call it inside a
  compact module; ``layer``'s parameters stay where ``layer`` is named."""
  # One power iteration per training forward pass (SNGAN, PyTorch's default); the vectors
  # advance only in training so evaluation is deterministic.
  sn = nn.SpectralNorm(layer, n_steps=1, name=name)
  if not sn.is_initializing():
    return sn(x, update_stats=train)
  # flax's init stores the *normalised* kernels as the parameters (the drawn ones divided by a
  # one-step sigma estimate), which changes their scale and so the optimiser's relative step;
  # PyTorch's spectral_norm keeps the drawn weights (weight_orig). Keep them as drawn.
  layer(x)
  drawn = dict(layer.variables["params"])  # a copy: SpectralNorm rewrites the dict in place
  y = sn(x, update_stats=train)
  for name, value in drawn.items():
    layer.put_variable("params", name, value)
  return y


def batch_norm(train: bool, dtype, momentum: float = 0.9, epsilon: float = 1e-5,
               affine: bool = True, name: Optional[str] = None) -> nn.BatchNorm:
  """PyTorch's BatchNorm2d (eps 1e-5, momentum 0.1 = flax 0.9) with gain 1 and bias 0 at init."""
  return nn.BatchNorm(use_running_average=not train, momentum=momentum, epsilon=epsilon,
                      use_scale=affine, use_bias=affine, dtype=dtype, name=name)


class ConditionalBatchNorm(nn.Module):
  """BatchNorm whose gain and bias depend on the class (SNGAN-projection / BigGAN's G).

  x [B, H, W, C] -> [B, H, W, C], with ``y`` either
  - int [B] class labels: per-class gain and bias tables (Miyato & Koyama's conditional BN), or
  - float [B, E] class embeddings (BigGAN's shared embedding): gain = 1 + Dense(y), bias =
    Dense(y), both Dense bias-free and zero at initialisation.
  Either way every class sees the unconditional network at initialisation. With
  ``num_classes == 0`` it is a plain affine BatchNorm and ``y`` must be None.

  Why the second form: Adam moves each parameter by about the learning rate per step, so a
  per-class table entry drifts ~1e-4 per step and short runs never condition (a 600-step digits
  run left the tables' class-to-class spread at 0.02). A gain that sums E embedding coordinates
  moves about E times faster.
  """
  num_classes: int = 0
  momentum: float = 0.9
  epsilon: float = 1e-5
  dtype: Any = None

  @nn.compact
  def __call__(self, x: Array, y: Optional[Array] = None, *, train: bool) -> Array:
    if self.num_classes == 0:
      return batch_norm(train, self.dtype, self.momentum, self.epsilon, name="bn")(x)
    x = batch_norm(train, self.dtype, self.momentum, self.epsilon, affine=False, name="bn")(x)
    c = x.shape[-1]
    if jnp.issubdtype(y.dtype, jnp.floating):
      linear = lambda name: nn.Dense(c, use_bias=False, kernel_init=nn.initializers.zeros,
                                     dtype=self.dtype, name=name)
      gain, bias = 1 + linear("gain")(y), linear("bias")(y)
    else:
      gain = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.ones, name="gain")(y)
      bias = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.zeros, name="bias")(y)
    return (x * gain[:, None, None, :].astype(x.dtype) + bias[:, None, None, :].astype(x.dtype))


class SelfAttention(nn.Module):
  """SAGAN self-attention (Zhang et al., 2019), x [B, H, W, C] -> [B, H, W, C].

  With N = H*W positions: f = W_f x, g = W_g x (C/8 channels each), h = W_h x (C/2 channels),
  s_ij = f(x_i) . g(x_j), beta_j = softmax_i(s_ij), o_j = W_v sum_i beta_ji h(x_i) (1x1 conv
  back to C), and y = gamma * o + x with a learned scalar gamma that starts at 0, so the block is
  the identity at initialisation. All 1x1 convs are bias-free and spectrally normalised when
  ``spectral_norm`` (as in SAGAN). The attention logits are not scaled and the softmax runs in
  float32. C must be a multiple of 8.
  """
  spectral_norm: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: Array, *, train: bool) -> Array:
    b, hgt, wid, c = x.shape
    if c % 8:
      raise ConfigError(f"self-attention needs a multiple of 8 channels, got {c} at "
                        f"{hgt}x{wid}; raise model.width or move model.attention_res",
                        keys=("model.width",))
    conv = lambda feats, name: SNConv(feats, 1, self.spectral_norm, use_bias=False,
                                      kernel_init=XAVIER, dtype=self.dtype, name=name)
    f = conv(c // 8, "f")(x, train=train).reshape(b, hgt * wid, c // 8)
    g = conv(c // 8, "g")(x, train=train).reshape(b, hgt * wid, c // 8)
    h = conv(c // 2, "h")(x, train=train).reshape(b, hgt * wid, c // 2)
    logits = jnp.einsum("bic,bjc->bji", f, g, preferred_element_type=jnp.float32)
    beta = jax.nn.softmax(logits, axis=-1).astype(h.dtype)  # over the attended positions i
    o = jnp.einsum("bji,bic->bjc", beta, h).reshape(b, hgt, wid, c // 2)
    o = conv(c, "v")(o, train=train)
    gamma = self.param("gamma", nn.initializers.zeros, ())
    return x + gamma.astype(o.dtype) * o
