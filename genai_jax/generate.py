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
            temperature: float = 1.0, top_k: int = 0) -> jax.Array:
  """Fills the ``mask_id`` positions of tokens int32 [B, T] in ``num_iters`` rounds.

  ``logits_fn(tokens) -> [B, T, V]``. Each round samples every masked position, then re-masks
  the ``n * cos(pi/2 * (i+1)/num_iters)`` least confident of them (n = initially masked), so
  the most confident predictions are committed first and the last round fills the rest.
  """
  total = jnp.sum(tokens == mask_id, axis=-1)  # [B]

  def body(tokens, i):
    unknown = tokens == mask_id
    logits = logits_fn(tokens).at[..., mask_id].set(-jnp.inf)  # never predict [MASK]
    logits = filter_logits(logits, temperature, top_k)
    sampled = jax.random.categorical(jax.random.fold_in(rng, i), logits).astype(jnp.int32)
    logp = jnp.take_along_axis(jax.nn.log_softmax(logits), sampled[..., None], -1)[..., 0]
    sampled = jnp.where(unknown, sampled, tokens)
    confidence = jnp.where(unknown, logp, jnp.inf)  # committed tokens are never re-masked
    ratio = jnp.cos(0.5 * math.pi * (i + 1) / num_iters)
    num_mask = jnp.floor(total * ratio).astype(jnp.int32)
    num_mask = jnp.clip(num_mask, 0, jnp.maximum(jnp.sum(unknown, -1) - 1, 0))  # always progress
    cutoff = jnp.take_along_axis(jnp.sort(confidence, -1), num_mask[:, None], -1)
    return jnp.where(confidence < cutoff, mask_id, sampled), None

  tokens, _ = jax.lax.scan(body, tokens.astype(jnp.int32), jnp.arange(num_iters))
  return tokens


def continue_prompt(config, workdir: str, prompt: str, num_tokens: int, *, num_samples: int = 1,
                    temperature: float = 0.8, top_k: int = 0, top_p: float = 0.95,
                    iterations: int = 16, seed: int = 0, step=None) -> list[str]:
  """Restores ``workdir``'s checkpoint of the language-model run ``config`` and returns
  ``num_samples`` continuations (each the prompt followed by ``num_tokens`` generated
  characters/bytes). Bad arguments raise a one-line ``ConfigError`` before anything loads."""
  import numpy as np
  from genai_jax import tasks
  from genai_jax.errors import ConfigError
  from genai_jax.tasks import lm as lm_task
  from genai_jax.train import sharding
  from genai_jax.train import state as state_lib

  for name, value in (("num_tokens", num_tokens), ("num_samples", num_samples),
                      ("iterations", iterations)):
    if value <= 0:
      raise ConfigError(f"--{name}={value} must be positive")
  if temperature < 0 or not 0 < top_p <= 1 or top_k < 0:
    raise ConfigError(f"need --temperature >= 0, 0 < --top_p <= 1 and --top_k >= 0 (got "
                      f"{temperature}, {top_p}, {top_k})")
  if config.task not in ("causal_lm", "masked_lm", "gru_lm"):
    raise ConfigError(f"{workdir} is a {config.task!r} run; sampling prompts needs a language "
                      f"model run")
  state_lib.check_has_checkpoints(workdir, step)
  lm = lm_task.build(config)
  ids = lm.vocab.encode(prompt or "\n")
  if lm.kind != "gru_lm" and len(ids) + num_tokens > lm.seq_len:
    raise ConfigError(f"prompt ({len(ids)} tokens) + --num_tokens={num_tokens} exceeds the model's "
                      f"context of {lm.seq_len}; lower --num_tokens or shorten --prompt")
  mesh = sharding.make_mesh(config.mesh.data, config.mesh.fsdp)
  _, state = state_lib.restore(config, workdir, step, mesh, task=tasks.get_task(config))
  sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p, iterations=iterations)
  fn = jax.jit(lambda params, prompt, rng: lm.continue_fn(params, prompt, num_tokens, rng,
                                                          **sampling))
  prompts = jnp.asarray(np.tile(ids[None], (num_samples, 1)))
  out = np.asarray(fn(state.params, prompts, jax.random.PRNGKey(seed)))
  return [lm.vocab.decode(row) for row in out]
