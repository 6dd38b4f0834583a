"""Language-model losses: next-token cross-entropy and BERT masking."""

import math

import jax
import jax.numpy as jnp
import optax

LN2 = math.log(2.0)


def cross_entropy(logits: jax.Array, targets: jax.Array, weights=None) -> jax.Array:
  """Mean cross-entropy in nats/token. logits float [B, T, V]; targets int [B, T]; weights
  float [B, T] (e.g. the masked positions) or None for all positions."""
  losses = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)
  if weights is None:
    return losses.mean()
  return (losses * weights).sum() / jnp.maximum(weights.sum(), 1.0)


def bert_mask(rng, tokens: jax.Array, vocab_size: int, mask_id: int, rate: float = 0.15):
  """BERT's corruption: each position is selected with probability ``rate``; a selected token
  becomes ``mask_id`` (80%), a uniform random token in [0, vocab_size) (10%) or stays (10%).

  tokens int32 [B, T] -> (inputs int32 [B, T], weights float32 [B, T]: 1 where selected).
  """
  k_sel, k_kind, k_rand = jax.random.split(rng, 3)
  selected = jax.random.bernoulli(k_sel, rate, tokens.shape)
  u = jax.random.uniform(k_kind, tokens.shape)
  random_tokens = jax.random.randint(k_rand, tokens.shape, 0, vocab_size, tokens.dtype)
  inputs = jnp.where(selected & (u < 0.8), mask_id, tokens)
  inputs = jnp.where(selected & (u >= 0.8) & (u < 0.9), random_tokens, inputs)
  return inputs, selected.astype(jnp.float32)
