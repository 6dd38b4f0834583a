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


def wgan_gp() -> GANLoss:
  """WGAN (Gulrajani et al.'s WGAN-GP without its penalty, which ``gradient_penalty`` adds):
  L_D = E[D(G(z))] - E[D(x)], L_G = -E[D(G(z))]."""
  return GANLoss(d_loss=lambda real, fake: fake.mean() - real.mean(),
                 g_loss=lambda fake: -fake.mean())


LOSSES = {"non_saturating": non_saturating, "hinge": hinge, "least_squares": least_squares,
          "wgan_gp": wgan_gp}


def _input_grads(critic: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
  """d critic(x)_i / d x_i for every example: float32 [B, ...] (the sum's gradient is per-example
  when the critic treats examples independently, i.e. has no batch-statistics BatchNorm)."""
  return jax.grad(lambda v: critic(v).astype(jnp.float32).sum())(x).astype(jnp.float32)


def gradient_penalty(critic: Callable[[jax.Array], jax.Array], real: jax.Array, fake: jax.Array,
                     rng: jax.Array, weight: float) -> jax.Array:
  """WGAN-GP (Gulrajani et al. 2017, eq. 3): weight * E[(||grad D(x_hat)||_2 - 1)^2] on
  x_hat = eps * real + (1 - eps) * fake, eps ~ U[0, 1] per example.

  critic: images [B, H, W, C] -> logits [B] (or [B, 1]); real, fake: [B, H, W, C]; returns a
  float32 scalar, differentiable in the critic's parameters (closed over by ``critic``).
  """
  eps = jax.random.uniform(rng, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
  x_hat = eps * real + (1 - eps) * jax.lax.stop_gradient(fake)
  g = _input_grads(critic, x_hat).reshape(real.shape[0], -1)
  return weight * ((jnp.sqrt(jnp.sum(g**2, axis=1) + 1e-12) - 1.0)**2).mean()


def r1_penalty(critic: Callable[[jax.Array], jax.Array], real: jax.Array, weight: float) -> jax.Array:
  """R1 (Mescheder et al. 2018): weight / 2 * E[||grad D(x)||_2^2] on real images x, the
  gamma / 2 convention of StyleGAN2. critic: [B, H, W, C] -> logits [B]; float32 scalar."""
  g = _input_grads(critic, real).reshape(real.shape[0], -1)
  return 0.5 * weight * jnp.sum(g**2, axis=1).mean()


def get(name: str) -> GANLoss:
  if name not in LOSSES:
    raise ConfigError(f"unknown GAN loss {name!r}; set objective.loss to one of {sorted(LOSSES)}",
                      keys=("objective.loss",))
  return LOSSES[name]()
