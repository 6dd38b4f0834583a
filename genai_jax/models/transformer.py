"""One pre-LayerNorm transformer stack for causal LM (GPT) and masked LM (BERT-style).

Attention runs through ``jax.nn.dot_product_attention`` (fused cuDNN kernel on GPUs, plain XLA
on TPU) on [batch, length, heads, head_dim] arrays, so no transposes are needed around it; on
CPU through ``_attention_xla``, the same function with fewer bytes moved by XLA's CPU backend.
Q, K and V come from one fused Dense. Parameters carry logical axis names ('vocab', 'embed',
'heads', 'mlp', 'length'); ``train.sharding`` maps them to the ('data', 'fsdp') mesh. The
residual stream is named ('batch', 'length', 'act_embed'), so under FSDP (a train step traced in
``sharding.use_mesh``) XLA splits every block over the batch rather than over the sharded width.
``remat`` and ``scan_layers`` rematerialise the blocks in the backward pass and/or run them as
one ``nn.scan`` (the AOT report shows their memory and FLOPs: docs/results.md).

Incremental decoding (``decode=True``) keeps a KV cache in the 'cache' collection: each call
appends its tokens' keys and values at the cache index, so a prompt is processed once and each
new token costs one position (see ``init_cache`` and ``genai_jax.generate``).
"""

import dataclasses
import math
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from genai_jax.models import backend


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
  """Hyper-parameters. ``dtype`` is the compute dtype; parameters are always float32."""
  vocab_size: int
  num_layers: int = 6
  num_heads: int = 6
  d_model: int = 384
  mlp_ratio: int = 4
  max_len: int = 256
  dropout: float = 0.0
  positions: str = "learned"  # learned | rope
  tie_embeddings: bool = True
  causal: bool = True
  use_bias: bool = True
  # A dtype, not its name (the family converts the config's string once): jnp.float32 |
  # jnp.bfloat16 | jnp.float16.
  dtype: Any = jnp.float32
  attention_impl: Optional[str] = None  # None (fastest that applies, see attention_kernel) | 'xla' | 'cudnn'
  # Rematerialisation of each block in the backward pass (REMAT_POLICIES): 'none' keeps every
  # activation; 'full' keeps only block inputs and recomputes the rest (about +1/3 FLOPs);
  # 'dots' keeps the matmul outputs and recomputes the cheap elementwise work.
  remat: str = "none"
  # One nn.scan over identical blocks (params 'blocks/...' with a leading [num_layers] axis)
  # instead of num_layers unrolled ones: compile time stops growing with depth. XLA's cost
  # analysis counts a loop body once, so a scanned step's FLOPs read as one layer's.
  scan_layers: bool = False


REMAT_POLICIES = {"none": None, "full": jax.checkpoint_policies.nothing_saveable,
                  "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable}


def attention_kernel(cfg: TransformerConfig, head_dim: int) -> str:
  """The attention kernel a layer uses: ``cfg.attention_impl`` when set, else the fastest that
  applies. That is cuDNN's fused attention on a GPU for bfloat16/float16 heads of at most 128
  (a multiple of 8): on an H100 it made the GPT-2-small step (12x768, context 1024, batch 32)
  2.3x faster than XLA's (54.9 vs 127.5 ms) and cut its peak memory from 41 to 13 GB, since
  it never holds the [T, T] scores. Elsewhere (CPU, TPU, float32) XLA's. Decided at trace time
  from ``backend.target()``; an AOT compile for a GPU from a CPU host counts XLA's (cuDNN's
  kernel cannot be lowered without the GPU's libraries).
  """
  if cfg.attention_impl:
    return cfg.attention_impl
  if (backend.target() == "gpu" and cfg.dtype in (jnp.bfloat16, jnp.float16)
      and head_dim % 8 == 0 and head_dim <= 128):
    return "cudnn"
  return "xla"


def _attention_xla(q: jax.Array, k: jax.Array, v: jax.Array, causal: bool) -> jax.Array:
  """Softmax attention in plain XLA ops, the same function as ``jax.nn.dot_product_attention``'s
  'xla' implementation but laid out for XLA's CPU backend: Q is scaled ([B,T,N,H]) instead of
  the scores ([B,N,T,T]), and the softmax is normalised after the PV matmul, on [B,T,N,H]
  instead of on the probabilities. On the char-GPT benchmark step (4L/256d, T=128, B=16) this
  halves the bytes its copy/layout ops write (141 -> 74 MB a step; jax's version materialises
  the broadcast sums for the division) and cuts the step's total from 710 to 651 MB. CPU only:
  compiled for a TPU v4-8 the same GPT config needs 2.5% more HBM traffic (9.11 vs 8.89 GB a
  step) and 0.09 GiB more temporaries than jax's version, so TPUs keep jax's. The choice is made
  at trace time from ``backend.target()``, which ``genai_jax.aot`` sets to 'tpu' when it
  compiles for a TPU slice from a CPU host.
  q: [B, T, N, H]; k, v: [B, S, N, H] -> [B, T, N, H] in v's dtype; scores and sums in float32.
  """
  t, s = q.shape[1], k.shape[1]
  q = q * jnp.asarray(1.0 / math.sqrt(q.shape[-1]), q.dtype)
  scores = jnp.einsum("btnh,bsnh->bnts", q, k, preferred_element_type=jnp.float32)
  if causal:
    scores = jnp.where(jnp.tril(jnp.ones((t, s), bool)), scores, jnp.finfo(jnp.float32).min)
  p = jnp.exp(scores - jax.lax.stop_gradient(jnp.max(scores, axis=-1, keepdims=True)))
  denom = jnp.transpose(jnp.sum(p, axis=-1), (0, 2, 1))[..., None]  # [B, T, N, 1]
  out = jnp.einsum("bnts,bsnh->btnh", p.astype(v.dtype), v, preferred_element_type=jnp.float32)
  return (out / denom).astype(v.dtype)


@jax.custom_vjp
def _matmul(x: jax.Array, w: jax.Array) -> jax.Array:
  return x @ w


def _matmul_fwd(x, w):
  return x @ w, (x, w)


def _matmul_bwd(res, g):
  x, w = res
  # dW = x^T g contracts both operands on their leading axis, a form XLA:CPU's GEMM runs at
  # 120-180 GFLOP/s against ~210 for a plain product; a materialised x^T (the barrier stops XLA
  # folding the transpose back into the dot) costs a copy of x and gets the fast form.
  return g @ w.T, jax.lax.optimization_barrier(x.T) @ g


_matmul.defvjp(_matmul_fwd, _matmul_bwd)


def _dense_dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
  """nn.Dense's product. A [M, K] x [K, N] float32 one compiled for CPU goes through ``_matmul``
  (the GPT benchmark step: 1.04x, median of 8 alternating rounds, min 0.95, max 1.11); other
  platforms keep XLA's own gradient, so TPU/GPU programs do not change."""
  plain = (((1,), (0,)), ((), ()))
  if (backend.target() == "cpu" and lhs.ndim == 2 and rhs.ndim == 2
      and dimension_numbers == plain and lhs.dtype == rhs.dtype == jnp.float32
      and precision is None and preferred_element_type is None):
    return _matmul(lhs, rhs)
  return jax.lax.dot_general(lhs, rhs, dimension_numbers, precision=precision,
                             preferred_element_type=preferred_element_type)


def _constrain(x):
  """The residual stream [B, T, D] split over the batch (``train.sharding.LOGICAL_RULES``):
  keeps XLA from splitting it over the fsdp-sharded width. A no-op outside a mesh context."""
  return nn.with_logical_constraint(x, ("batch", "length", "act_embed"))


def _init(names, std=0.02):
  return nn.with_logical_partitioning(nn.initializers.normal(std), names)


def _zeros(names):
  return nn.with_logical_partitioning(nn.initializers.zeros_init(), names)


def _ones(names):
  return nn.with_logical_partitioning(nn.initializers.ones_init(), names)


def rope(x: jax.Array, positions: jax.Array, base: float = 10_000.0) -> jax.Array:
  """Rotary position embedding. x: [B, T, N, H] (H even); positions: int [T]."""
  half = x.shape[-1] // 2
  freq = base ** (-jnp.arange(half, dtype=jnp.float32) / half)
  angle = positions.astype(jnp.float32)[:, None] * freq  # [T, H/2]
  cos, sin = jnp.cos(angle)[:, None, :], jnp.sin(angle)[:, None, :]  # broadcast over heads
  x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
  return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1).astype(x.dtype)


class Attention(nn.Module):
  """Multi-head self-attention; optional KV cache (``decode``)."""
  cfg: TransformerConfig

  @nn.compact
  def __call__(self, x, positions, *, train: bool, decode: bool):
    cfg = self.cfg
    b, t, d = x.shape
    n, h = cfg.num_heads, d // cfg.num_heads
    dtype = cfg.dtype
    qkv = nn.Dense(3 * d, use_bias=cfg.use_bias, dtype=dtype, kernel_init=_init(("embed", "heads")),
                   bias_init=_zeros(("heads",)), dot_general=_dense_dot_general,
                   name="qkv")(x.reshape(b * t, d))
    q, k, v = jnp.split(qkv.reshape(b, t, 3, n, h), 3, axis=2)  # reshape is free: no transpose
    q, k, v = q[:, :, 0], k[:, :, 0], v[:, :, 0]
    if cfg.positions == "rope":
      q, k = rope(q, positions), rope(k, positions)
    if decode:
      # The cache length is fixed at init (init_cache); positions[0] is where these tokens go.
      ck = self.variable("cache", "key", jnp.zeros, k.shape, k.dtype)
      cv = self.variable("cache", "value", jnp.zeros, v.shape, v.dtype)
      if not self.is_initializing():
        start = positions[0]
        ck.value = jax.lax.dynamic_update_slice(ck.value, k, (0, start, 0, 0))
        cv.value = jax.lax.dynamic_update_slice(cv.value, v, (0, start, 0, 0))
        k, v = ck.value, cv.value
      mask = jnp.arange(k.shape[1])[None, :] <= positions[:, None]  # [T, cache]: past and self
      out = jax.nn.dot_product_attention(q, k, v, mask=mask[None, None],
                                         implementation=cfg.attention_impl or "xla")
    elif attention_kernel(cfg, h) == "xla" and backend.target() == "cpu":
      out = _attention_xla(q, k, v, cfg.causal)
    else:
      out = jax.nn.dot_product_attention(q, k, v, is_causal=cfg.causal,
                                         implementation=attention_kernel(cfg, h))
    std = 0.02 / math.sqrt(2 * cfg.num_layers)  # GPT-2: scaled residual projections
    out = nn.Dense(d, use_bias=cfg.use_bias, dtype=dtype, kernel_init=_init(("heads", "embed"), std),
                   bias_init=_zeros(("embed",)), dot_general=_dense_dot_general,
                   name="out")(out.reshape(b * t, d))
    return nn.Dropout(cfg.dropout)(out.reshape(b, t, d), deterministic=not train)


class MLP(nn.Module):
  cfg: TransformerConfig

  @nn.compact
  def __call__(self, x, *, train: bool):
    cfg, d = self.cfg, x.shape[-1]
    dtype = cfg.dtype
    # Dense layers see [B*T, D] (here and in Attention): with [B, T, D] XLA's CPU backend fuses
    # the weight gradient's 3-D transpose into the GELU backward, a slow strided loop (26 ms a
    # layer at the benchmark's size; benchmarks/lm_throughput.py went 0.53x -> 0.74x PyTorch).
    shape = x.shape
    x = x.reshape(-1, d)
    y = nn.Dense(cfg.mlp_ratio * d, use_bias=cfg.use_bias, dtype=dtype,
                 kernel_init=_init(("embed", "mlp")), bias_init=_zeros(("mlp",)),
                 dot_general=_dense_dot_general, name="fc")(x)
    y = nn.gelu(y, approximate=True)
    y = nn.Dense(d, use_bias=cfg.use_bias, dtype=dtype,
                 kernel_init=_init(("mlp", "embed"), 0.02 / math.sqrt(2 * cfg.num_layers)),
                 bias_init=_zeros(("embed",)), dot_general=_dense_dot_general, name="proj")(y)
    return nn.Dropout(cfg.dropout)(y.reshape(shape), deterministic=not train)


def _layer_norm(cfg, name):
  return nn.LayerNorm(epsilon=1e-5, use_bias=cfg.use_bias, dtype=cfg.dtype,
                      scale_init=_ones(("embed",)), bias_init=_zeros(("embed",)), name=name)


class Block(nn.Module):
  """x + Attn(LN(x)), then x + MLP(LN(x)); the output split over the batch (``_constrain``)."""
  cfg: TransformerConfig
  train: bool = False
  decode: bool = False

  @nn.compact
  def __call__(self, x, positions):
    x = x + Attention(self.cfg, name="attn")(_layer_norm(self.cfg, "ln1")(x), positions,
                                             train=self.train, decode=self.decode)
    x = x + MLP(self.cfg, name="mlp")(_layer_norm(self.cfg, "ln2")(x), train=self.train)
    return _constrain(x)


class _ScannedBlock(Block):
  """A Block as an ``nn.scan`` body: (carry, positions) -> (carry, None)."""

  def __call__(self, x, positions):
    return super().__call__(x, positions), None


def _blocks(cfg: TransformerConfig, x, positions, train: bool, decode: bool):
  """The stack of ``cfg.num_layers`` blocks, rematerialised and/or scanned as ``cfg`` says."""
  if cfg.remat not in REMAT_POLICIES:
    raise ValueError(f"remat must be one of {sorted(REMAT_POLICIES)}, not {cfg.remat!r}")
  remat = cfg.remat != "none" and not decode
  if cfg.scan_layers:
    body = _ScannedBlock
    if remat:
      body = nn.remat(body, policy=REMAT_POLICIES[cfg.remat], prevent_cse=False)
    stack = nn.scan(body, variable_axes={"params": 0, "cache": 0},
                    split_rngs={"params": True, "dropout": True}, in_axes=nn.broadcast,
                    length=cfg.num_layers, metadata_params={nn.PARTITION_NAME: "layers"})
    return stack(cfg, train, decode, name="blocks")(x, positions)[0]
  block = nn.remat(Block, policy=REMAT_POLICIES[cfg.remat]) if remat else Block
  for i in range(cfg.num_layers):
    x = block(cfg, train, decode, name=f"block_{i}")(x, positions)
  return x


class Embed(nn.Module):
  """Token embedding [vocab, d] with ``attend`` for tied logits. Small vocabularies (chars,
  bytes) look up by a one-hot matmul: its gradient is a matmul too, where a gather's is a
  scatter-add, which XLA's CPU backend runs serially."""
  vocab_size: int
  features: int
  dtype: jnp.dtype = jnp.float32
  onehot_max: int = 512

  def setup(self):
    self.embedding = self.param("embedding", _init(("vocab", "embed")),
                                (self.vocab_size, self.features))

  def __call__(self, tokens):
    table = self.embedding.astype(self.dtype)
    if self.vocab_size <= self.onehot_max:
      return jax.nn.one_hot(tokens, self.vocab_size, dtype=self.dtype) @ table
    return jnp.take(table, tokens, axis=0)

  def attend(self, x):
    return x @ self.embedding.astype(self.dtype).T


class Transformer(nn.Module):
  """tokens int32 [B, T] -> logits float32 [B, T, vocab_size].

  ``decode=True`` (causal only) reads and appends to the 'cache' collection (apply with
  ``mutable=['cache']``); the tokens are placed at the cache's current index.
  """
  cfg: TransformerConfig

  @nn.compact
  def __call__(self, tokens, *, train: bool = False, decode: bool = False):
    cfg = self.cfg
    dtype = cfg.dtype
    t = tokens.shape[1]
    if decode:
      index = self.variable("cache", "index", lambda: jnp.zeros((), jnp.int32))
      start = index.value
      if not self.is_initializing():
        index.value = start + t
      positions = start + jnp.arange(t)
    else:
      positions = jnp.arange(t)
    embed = Embed(cfg.vocab_size, cfg.d_model, dtype=dtype, name="embed")
    x = embed(tokens)
    if cfg.positions == "learned":
      pos = self.param("pos_embed", _init(("length", "embed")), (cfg.max_len, cfg.d_model))
      # A static slice in training (its gradient is a pad, not a scatter).
      pos = jax.lax.dynamic_slice_in_dim(pos, start, t) if decode else pos[:t]
      x = x + pos.astype(dtype)[None]
    elif cfg.positions != "rope":
      raise ValueError(f"positions must be 'learned' or 'rope', not {cfg.positions!r}")
    x = _constrain(nn.Dropout(cfg.dropout)(x, deterministic=not train))
    x = _blocks(cfg, x, positions, train, decode)
    x = _layer_norm(cfg, "ln_f")(x)
    if cfg.tie_embeddings:
      logits = embed.attend(x)
    else:
      logits = nn.Dense(cfg.vocab_size, use_bias=False, dtype=dtype,
                        kernel_init=_init(("embed", "vocab")), name="head")(x)
    return logits.astype(jnp.float32)


def init_cache(model: Transformer, batch: int, length: int):
  """A zero KV cache for ``batch`` sequences of up to ``length`` tokens (no computation)."""
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0),
                                             jnp.zeros((batch, length), jnp.int32), decode=True))
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), nn.unbox(shapes["cache"]))


def num_params(cfg: TransformerConfig, non_embedding: bool = True) -> int:
  """Parameter count (non-embedding: without the position table, as nanoGPT reports)."""
  d, layers = cfg.d_model, cfg.num_layers
  per_layer = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * cfg.mlp_ratio * d * d + cfg.mlp_ratio * d + d
  n = layers * per_layer + 2 * d + cfg.vocab_size * d * (1 if cfg.tie_embeddings else 2)
  return n if non_embedding or cfg.positions != "learned" else n + cfg.max_len * d


def flops_per_token(cfg: TransformerConfig, seq_len: int) -> float:
  """Training FLOPs per token (fwd + bwd): 6 N + 12 L T d (PaLM appendix B / nanoGPT)."""
  return 6.0 * num_params(cfg) + 12.0 * cfg.num_layers * seq_len * cfg.d_model
