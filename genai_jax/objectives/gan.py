"""GAN losses computed from discriminator logits (pure functions, float32 scalars).

Each function takes real and fake logits of shape [B] and returns the mean loss over the batch:
``d_loss(real_logits, fake_logits)`` and ``g_loss(fake_logits)``.
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from genai_jax.errors import ConfigError


class GANLoss(NamedTuple):
  d_loss: Callable[[jax.Array, jax.Array], jax.Array]
  g_loss: Callable[[jax.Array], jax.Array]


def _bce(logits, label):
  return optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, label)).mean()


def non_saturating() -> GANLoss:
  """Goodfellow et al.: L_D = -[log D(x) + log(1 - D(G(z)))], L_G = -log D(G(z))."""
  return GANLoss(d_loss=lambda real, fake: _bce(real, 1.0) + _bce(fake, 0.0),
                 g_loss=lambda fake: _bce(fake, 1.0))


def hinge() -> GANLoss:
  """Hinge loss (Lim & Ye; SAGAN): L_D = E[relu(1 - D(x))] + E[relu(1 + D(G(z)))], L_G = -E[D(G(z))]."""
  return GANLoss(d_loss=lambda real, fake: jax.nn.relu(1 - real).mean() + jax.nn.relu(1 + fake).mean(),
                 g_loss=lambda fake: -fake.mean())


def least_squares() -> GANLoss:
  """LSGAN (Mao et al.) with targets a=0, b=c=1, halved as in the paper."""
  return GANLoss(d_loss=lambda real, fake: 0.5 * ((real - 1)**2).mean() + 0.5 * (fake**2).mean(),
                 g_loss=lambda fake: 0.5 * ((fake - 1)**2).mean())


LOSSES = {"non_saturating": non_saturating, "hinge": hinge, "least_squares": least_squares}


def get(name: str) -> GANLoss:
  if name not in LOSSES:
    raise ConfigError(f"unknown GAN loss {name!r}; set --config.objective.loss to one of {sorted(LOSSES)}")
  return LOSSES[name]()
