"""Sampling from language models, compiled end to end (``jax.lax.scan``, no Python per token).

* ``generate``: incremental decoding for any model exposed as ``step_fn(carry, tokens [B, T]) ->
  (logits [B, T, V], carry)`` (a transformer's KV cache, a GRU's hidden state): the prompt is
  processed once, then one position per new token.
* ``maskgit``: iterative unmasking for masked LMs: predict every masked position, keep the most
  confident, re-mask the rest on a cosine schedule (Chang et al. 2022).
"""

import math
from typing import Callable

import jax
import jax.numpy as jnp


def filter_logits(logits: jax.Array, temperature: float = 1.0, top_k: int = 0,
                  top_p: float = 1.0) -> jax.Array:
  """logits float [..., V] -> temperature-scaled logits with -inf outside top-k / top-p (nucleus)."""
  logits = logits.astype(jnp.float32) / max(temperature, 1e-6)
  neg = jnp.finfo(jnp.float32).min
  if top_k and top_k < logits.shape[-1]:
    kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
    logits = jnp.where(logits < kth, neg, logits)
  if top_p < 1.0:
    sorted_logits = jnp.sort(logits, axis=-1)[..., ::-1]
    probs = jax.nn.softmax(sorted_logits, axis=-1)
    # keep the smallest prefix whose mass reaches top_p (the first token is always kept)
    keep = (jnp.cumsum(probs, axis=-1) - probs) < top_p
    threshold = jnp.min(jnp.where(keep, sorted_logits, jnp.inf), axis=-1, keepdims=True)
    logits = jnp.where(logits < threshold, neg, logits)
  return logits


def sample_token(rng, logits: jax.Array, temperature: float = 1.0, top_k: int = 0,
                 top_p: float = 1.0) -> jax.Array:
  """logits [B, V] -> int32 [B]; temperature 0 is greedy."""
  if temperature == 0:
    return jnp.argmax(logits, -1).astype(jnp.int32)
  return jax.random.categorical(rng, filter_logits(logits, temperature, top_k, top_p)).astype(jnp.int32)


def generate(step_fn: Callable, carry, prompt: jax.Array, num_new: int, rng, *,
             temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> jax.Array:
  """prompt int32 [B, P] -> int32 [B, P + num_new], continuing each row ``num_new`` tokens."""
  logits, carry = step_fn(carry, prompt)

  def body(state, i):
    carry, last = state
    token = sample_token(jax.random.fold_in(rng, i), last, temperature, top_k, top_p)
    logits, carry = step_fn(carry, token[:, None])
    return (carry, logits[:, -1]), token

  _, new = jax.lax.scan(body, (carry, logits[:, -1]), jnp.arange(num_new))
  return jnp.concatenate([prompt.astype(jnp.int32), new.T], axis=1)


def maskgit(logits_fn: Callable, tokens: jax.Array, mask_id: int, num_iters: int, rng, *,
            temperature: float = 1.0, top_k: int = 0, choice_temperature: float = 0.0) -> jax.Array:
  """Fills the ``mask_id`` positions of tokens int32 [B, T] in ``num_iters`` rounds.

  ``logits_fn(tokens) -> [B, T, V]``. Each round samples every masked position, then re-masks
  the ``n * cos(pi/2 * (i+1)/num_iters)`` least confident of them (n = initially masked), so
  the most confident predictions are committed first and the last round fills the rest.
  ``choice_temperature`` > 0 adds Gumbel noise, annealed to 0 over the rounds, to the
  confidences (MaskGIT's own sampler): the order of commitment becomes partly random, which
  keeps highly predictable tokens (e.g. a held note) from being committed everywhere first.
  """
  total = jnp.sum(tokens == mask_id, axis=-1)  # [B]

  def body(tokens, i):
    unknown = tokens == mask_id
    logits = logits_fn(tokens).at[..., mask_id].set(-jnp.inf)  # never predict [MASK]
    logits = filter_logits(logits, temperature, top_k)
    sampled = jax.random.categorical(jax.random.fold_in(rng, i), logits).astype(jnp.int32)
    logp = jnp.take_along_axis(jax.nn.log_softmax(logits), sampled[..., None], -1)[..., 0]
    sampled = jnp.where(unknown, sampled, tokens)
    ratio = jnp.cos(0.5 * math.pi * (i + 1) / num_iters)
    if choice_temperature > 0:
      gumbel = jax.random.gumbel(jax.random.fold_in(jax.random.fold_in(rng, i), 1), logp.shape)
      logp = logp + choice_temperature * (1.0 - (i + 1) / num_iters) * gumbel
    confidence = jnp.where(unknown, logp, jnp.inf)  # committed tokens are never re-masked
    num_mask = jnp.floor(total * ratio).astype(jnp.int32)
    num_mask = jnp.clip(num_mask, 0, jnp.maximum(jnp.sum(unknown, -1) - 1, 0))  # always progress
    cutoff = jnp.take_along_axis(jnp.sort(confidence, -1), num_mask[:, None], -1)
    return jnp.where(confidence < cutoff, mask_id, sampled), None

  tokens, _ = jax.lax.scan(body, tokens.astype(jnp.int32), jnp.arange(num_iters))
  return tokens

