"""VAE objectives as pure functions: the ELBO with a closed-form KL, and the importance-weighted
bound (IWAE, Burda et al. 2015) on log p(x).

All quantities are log-densities in nats, summed over pixels and latents, one value per example
(never per pixel). Shapes: images x float32 [B, H, W, C]; latents float32 [..., B, D].
"""

import math
from typing import Callable

import jax
import jax.numpy as jnp
import optax

_LOG_2PI = math.log(2 * math.pi)


def _sum_event(x: jax.Array, event_dims: int) -> jax.Array:
  return x.sum(axis=tuple(range(x.ndim - event_dims, x.ndim))) if event_dims else x


def gaussian_kl(mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """KL(N(mean, diag(exp(logvar))) || N(0, I)) in closed form: [..., D] -> [...] (nats)."""
  return 0.5 * jnp.sum(jnp.exp(logvar) + jnp.square(mean) - 1.0 - logvar, axis=-1)


def gaussian_log_density(z: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """log N(z; mean, diag(exp(logvar))): [..., D] (broadcasting) -> [...] (nats)."""
  return -0.5 * jnp.sum(_LOG_2PI + logvar + jnp.square(z - mean) * jnp.exp(-logvar), axis=-1)


def standard_normal_log_density(z: jax.Array) -> jax.Array:
  """log N(z; 0, I): [..., D] -> [...] (nats)."""
  return -0.5 * jnp.sum(_LOG_2PI + jnp.square(z), axis=-1)


def bernoulli_log_likelihood(logits: jax.Array, x: jax.Array, event_dims: int = 3) -> jax.Array:
  """log Bernoulli(x; sigmoid(logits)) summed over the last ``event_dims`` axes (nats).

  Computed from logits (log-sigmoid), so saturated pixels cost no NaN or inf. ``x`` must be
  0/1 for this to be a likelihood; it broadcasts against ``logits`` (e.g. [B,H,W,C] vs
  [K,B,H,W,C]).
  """
  x = jnp.broadcast_to(x, logits.shape)
  return _sum_event(-optax.sigmoid_binary_cross_entropy(logits, x), event_dims)


def gaussian_log_likelihood(mean: jax.Array, logvar: jax.Array, x: jax.Array,
                            event_dims: int = 3) -> jax.Array:
  """log N(x; mean, exp(logvar)) per pixel, summed over the last ``event_dims`` axes (nats).

  A density: on continuous data in [0, 1] it is not comparable to a discrete likelihood.
  """
  ll = -0.5 * (_LOG_2PI + logvar + jnp.square(x - mean) * jnp.exp(-logvar))
  return _sum_event(ll, event_dims)


def squared_error(mean: jax.Array, x: jax.Array, event_dims: int = 3) -> jax.Array:
  """sum (x - mean)^2 over the last ``event_dims`` axes: the seeds' MSE reconstruction loss,
  summed over pixels (per example, like the other terms). ``x`` broadcasts against ``mean``.

  Equal to -log N(x; mean, 1/2) minus a constant, so it is an unnormalised Gaussian term.
  """
  return _sum_event(jnp.square(x - mean), event_dims)


def reparameterize(key: jax.Array, mean: jax.Array, logvar: jax.Array,
                   num_samples: int | None = None) -> jax.Array:
  """z = mean + sigma * eps, eps ~ N(0, I): [B, D] -> [B, D], or [num_samples, B, D]."""
  shape = mean.shape if num_samples is None else (num_samples, *mean.shape)
  eps = jax.random.normal(key, shape, mean.dtype)
  return mean + jnp.exp(0.5 * logvar) * eps


def elbo(log_likelihood: jax.Array, mean: jax.Array, logvar: jax.Array) -> dict:
  """Per-example ELBO terms from a (Monte Carlo) log p(x|z) [B] and q's parameters [B, D].

  Returns {'elbo', 'recon' (= -log p(x|z)), 'kl'}: each float32 [B], nats per example.
  """
  kl = gaussian_kl(mean, logvar)
  return {"elbo": log_likelihood - kl, "recon": -log_likelihood, "kl": kl}


def log_mean_exp(log_weights: jax.Array, axis: int = 0) -> jax.Array:
  """log(mean(exp(w))) along ``axis``, stably (logsumexp - log k)."""
  return jax.nn.logsumexp(log_weights, axis=axis) - math.log(log_weights.shape[axis])


def importance_log_weights(key: jax.Array, x: jax.Array, mean: jax.Array, logvar: jax.Array,
                           log_likelihood_fn: Callable[[jax.Array, jax.Array], jax.Array],
                           num_samples: int, chunk: int = 100) -> tuple[jax.Array, jax.Array]:
  """Importance weights of k samples z_k ~ q(z|x) for the IWAE bound.

  Args:
    key: PRNG key for the samples.
    x: the data [B, ...] as ``log_likelihood_fn`` wants it.
    mean, logvar: q(z|x)'s parameters, float32 [B, D].
    log_likelihood_fn: (z [B, D], x) -> log p(x|z) [B].
    num_samples: k.
    chunk: samples decoded at once (``lax.map`` vmaps this many); memory grows with
      chunk * B * pixels, not with k, so k = 5000 fits.

  Returns:
    (log_weights, log_likelihoods), each float32 [k, B]: log w_k = log p(x|z_k) + log p(z_k)
    - log q(z_k|x), and log p(x|z_k) (whose mean over k, minus the KL, is the ELBO).
  """
  chunk = max(1, min(chunk, num_samples))
  keys = jax.random.split(key, num_samples)

  def one(k):  # one sample for the whole batch
    z = reparameterize(k, mean, logvar)
    log_px = log_likelihood_fn(z, x)
    return log_px + standard_normal_log_density(z) - gaussian_log_density(z, mean, logvar), log_px

  return jax.lax.map(one, keys, batch_size=chunk)


def iwae_bound(log_weights: jax.Array) -> jax.Array:
  """The k-sample importance-weighted lower bound on log p(x): [k, B] -> [B] (nats).

  k = 1 is an unbiased estimate of the ELBO; the bound tightens (in expectation) as k grows.
  """
  return log_mean_exp(log_weights, axis=0)
