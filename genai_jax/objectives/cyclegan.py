"""CycleGAN's losses (Zhu et al. 2017) with the official code's scaling (pure functions, float32
scalars averaged over every element).

For G: A -> B, F: B -> A and discriminators D_A (on domain A) and D_B (on domain B):

  L_G = adv(D_B(G(a))) + adv(D_A(F(b)))
        + lambda_cycle * (|F(G(a)) - a|_1 + |G(F(b)) - b|_1)
        + lambda_identity * lambda_cycle * (|G(b) - b|_1 + |F(a) - a|_1)
  L_D = 0.5 * (d(D(real), 1) + d(D(pooled fake), 0)), per discriminator

with adv = d(., 1). ``least_squares`` (the paper's choice, LSGAN) makes d the mean squared error
to the target, ``non_saturating`` the binary cross-entropy on logits (the code's 'vanilla').
Unlike ``objectives.gan.least_squares`` (Mao et al.'s halved G loss) the G term is not halved.
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from genai_jax.errors import ConfigError


class AdversarialLoss(NamedTuple):
  """d_loss(real_logits, fake_logits) and g_loss(fake_logits), logits of any shape (patches)."""
  d_loss: Callable[[jax.Array, jax.Array], jax.Array]
  g_loss: Callable[[jax.Array], jax.Array]


def _mse(logits, target):
  return jnp.mean((logits.astype(jnp.float32) - target) ** 2)


def _bce(logits, target):
  logits = logits.astype(jnp.float32)
  return optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, target)).mean()


def _adversarial(distance) -> AdversarialLoss:
  return AdversarialLoss(
      d_loss=lambda real, fake: 0.5 * (distance(real, 1.0) + distance(fake, 0.0)),
      g_loss=lambda fake: distance(fake, 1.0))


LOSSES = {"least_squares": lambda: _adversarial(_mse), "non_saturating": lambda: _adversarial(_bce)}


def adversarial(name: str) -> AdversarialLoss:
  if name not in LOSSES:
    raise ConfigError(f"unknown CycleGAN loss {name!r}; set objective.loss to one of "
                      f"{sorted(LOSSES)}", keys=("objective.loss",))
  return LOSSES[name]()


def l1(x: jax.Array, y: jax.Array) -> jax.Array:
  """Mean absolute difference (the cycle and identity losses), float32 scalar."""
  return jnp.mean(jnp.abs(x.astype(jnp.float32) - y.astype(jnp.float32)))


def psnr(x: jax.Array, y: jax.Array) -> jax.Array:
  """Per-image PSNR in dB of images in [-1, 1] (peak-to-peak 2, so the same figure as on 8-bit
  images): x, y [B, H, W, C] -> float32 [B]."""
  mse = jnp.mean((x.astype(jnp.float32) - y.astype(jnp.float32)) ** 2, axis=(1, 2, 3))
  return 10.0 * jnp.log10(4.0 / jnp.maximum(mse, 1e-10))
