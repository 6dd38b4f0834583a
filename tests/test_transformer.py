"""The transformer stack, its decoding, the LM objectives and the GRU baseline (tiny sizes)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genai_jax import generate as gen
from genai_jax.models import gru, transformer
from genai_jax.objectives import lm as lm_losses

V, T = 23, 16


def _model(**kw):
  cfg = transformer.TransformerConfig(vocab_size=V, num_layers=2, num_heads=2, d_model=32,
                                      max_len=T, **kw)
  model = transformer.Transformer(cfg)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((2, T), jnp.int32))["params"]
  return model, params


def _tokens(b=2, t=T, seed=1):
  return jax.random.randint(jax.random.PRNGKey(seed), (b, t), 0, V)


@pytest.mark.parametrize("positions", ["learned", "rope"])
def test_future_tokens_never_change_earlier_logits(positions):
  model, params = _model(positions=positions)
  apply = jax.jit(lambda t: model.apply({"params": params}, t))
  x = _tokens()
  base = apply(x)
  for j in (3, 9, T - 1):
    changed = x.at[:, j].set((x[:, j] + 1) % V)
    out = apply(changed)
    np.testing.assert_allclose(out[:, :j], base[:, :j], atol=1e-5)
    assert np.abs(np.asarray(out[:, j:] - base[:, j:])).max() > 1e-4  # it does see the present


def test_masked_lm_is_bidirectional():
  model, params = _model(causal=False)
  x = _tokens()
  out = model.apply({"params": params}, x.at[:, -1].set((x[:, -1] + 1) % V))
  assert np.abs(np.asarray(out[:, 0] - model.apply({"params": params}, x)[:, 0])).max() > 1e-4


@pytest.mark.parametrize("positions", ["learned", "rope"])
def test_kv_cache_decoding_equals_full_recomputation(positions):
  model, params = _model(positions=positions)
  x = _tokens()
  full = model.apply({"params": params}, x)
  step = jax.jit(lambda cache, t: model.apply({"params": params, "cache": cache}, t, decode=True,
                                              mutable=["cache"]))
  logits, upd = step(transformer.init_cache(model, 2, T), x[:, :5])  # prefill: the prompt at once
  steps = [logits]
  cache = upd["cache"]
  for t in range(5, T):
    logits, upd = step(cache, x[:, t:t + 1])  # then one position per token
    cache = upd["cache"]
    steps.append(logits)
  np.testing.assert_allclose(jnp.concatenate(steps, 1), full, atol=2e-5)
  assert int(cache["index"]) == T


def test_greedy_generate_matches_naive_argmax_loop():
  model, params = _model()
  prompt = _tokens(t=4)

  def step_fn(cache, tokens):
    logits, upd = model.apply({"params": params, "cache": cache}, tokens, decode=True,
                              mutable=["cache"])
    return logits, upd["cache"]
  out = jax.jit(lambda p: gen.generate(step_fn, transformer.init_cache(model, 2, T), p, T - 4,
                                       jax.random.PRNGKey(0), temperature=0))(prompt)
  full = jax.jit(lambda t: model.apply({"params": params}, t))
  seq = jnp.zeros((2, T), jnp.int32).at[:, :4].set(prompt)
  for t in range(4, T):  # recompute the whole prefix each step (the zero tail is masked out)
    seq = seq.at[:, t].set(jnp.argmax(full(seq)[:, t - 1], -1))
  np.testing.assert_array_equal(out, seq)


def test_top_k_and_top_p_filtering():
  logits = jnp.log(jnp.array([[0.5, 0.3, 0.15, 0.05]]))
  keep = lambda f: np.asarray(f > jnp.finfo(jnp.float32).min / 2)[0].tolist()
  assert keep(gen.filter_logits(logits, top_k=2)) == [True, True, False, False]
  assert keep(gen.filter_logits(logits, top_p=0.7)) == [True, True, False, False]
  assert keep(gen.filter_logits(logits, top_p=0.9)) == [True, True, True, False]
  assert keep(gen.filter_logits(logits, top_p=0.01)) == [True, False, False, False]
  draws = jax.vmap(lambda k: gen.sample_token(k, logits, top_k=2))(
      jax.random.split(jax.random.PRNGKey(0), 500))
  assert set(np.unique(draws).tolist()) == {0, 1}


def test_bert_masking_statistics():
  tokens = jax.random.randint(jax.random.PRNGKey(0), (64, 512), 0, 1000)
  mask_id = 1000
  inputs, weights = lm_losses.bert_mask(jax.random.PRNGKey(1), tokens, 1000, mask_id, 0.15)
  sel = np.asarray(weights) > 0
  inputs, tokens = np.asarray(inputs), np.asarray(tokens)
  assert abs(sel.mean() - 0.15) < 0.01
  assert np.all(inputs[~sel] == tokens[~sel])  # unselected positions are never touched
  masked = (inputs[sel] == mask_id).mean()
  kept = (inputs[sel] == tokens[sel]).mean()
  replaced = 1 - masked - kept
  assert abs(masked - 0.8) < 0.02 and abs(kept - 0.1) < 0.015 and abs(replaced - 0.1) < 0.015


def test_maskgit_fills_every_mask_and_keeps_the_prompt():
  model, params = _model(causal=False)
  mask_id = V - 1
  prompt = _tokens(t=4) % (V - 1)
  tokens = jnp.concatenate([prompt, jnp.full((2, T - 4), mask_id)], 1)
  out = gen.maskgit(lambda t: model.apply({"params": params}, t), tokens, mask_id, 5,
                    jax.random.PRNGKey(0))
  assert not np.any(np.asarray(out) == mask_id)
  np.testing.assert_array_equal(out[:, :4], prompt)


def test_gru_shapes_and_stateful_continuation():
  model = gru.GRULM(V, hidden=32, num_layers=2)
  x = _tokens(t=10)
  params = model.init(jax.random.PRNGKey(0), x)["params"]
  apply = jax.jit(lambda t, c=None: model.apply({"params": params}, t, c))
  logits, carries = apply(x)
  assert logits.shape == (2, 10, V) and logits.dtype == jnp.float32
  assert len(carries) == 2 and carries[0].shape == (2, 32)
  first, c = apply(x[:, :6])
  rest, _ = apply(x[:, 6:], c)  # continue from the carried state
  np.testing.assert_allclose(jnp.concatenate([first, rest], 1), logits, atol=1e-5)


def test_params_carry_logical_axes_and_flops_formula():
  model, params = _model()
  kernel = params["block_0"]["attn"]["qkv"]["kernel"]
  assert isinstance(kernel, nn.LogicallyPartitioned) and kernel.names == ("embed", "heads")
  n = sum(x.size for x in jax.tree.leaves(nn.unbox(params)))
  assert transformer.num_params(model.cfg, non_embedding=False) == n
  assert transformer.flops_per_token(model.cfg, T) == 6 * (n - T * 32) + 12 * 2 * T * 32


@pytest.mark.parametrize("backend,dtype,heads,want", [
    ("cpu", "bfloat16", 64, "xla"),    # CPU and TPU: XLA's attention
    ("tpu", "bfloat16", 64, "xla"),
    ("gpu", "bfloat16", 64, "cudnn"),  # GPU, half precision, head fits cuDNN's fused kernel
    ("gpu", "float16", 128, "cudnn"),
    ("gpu", "float32", 64, "xla"),     # cuDNN's fused attention is half precision only
    ("gpu", "bfloat16", 160, "xla"),   # head dims over 128 are not supported
    ("gpu", "bfloat16", 60, "xla"),    # nor those that are not a multiple of 8
])
def test_attention_kernel_picks_cudnn_only_where_it_applies(backend, dtype, heads, want):
  from genai_jax.models import backend as backend_lib
  with backend_lib.compiling_for(backend):
    cfg = transformer.TransformerConfig(vocab_size=8, dtype=jnp.dtype(dtype))
    assert transformer.attention_kernel(cfg, heads) == want
    forced = transformer.TransformerConfig(vocab_size=8, dtype=jnp.dtype(dtype), attention_impl="xla")
    assert transformer.attention_kernel(forced, heads) == "xla"  # an explicit choice always wins
  assert backend_lib.target() == jax.default_backend()  # the override ends with the block


def test_unknown_attention_impl_is_a_config_error():
  from genai_jax import tasks
  from genai_jax.errors import ConfigError
  from experiments.configs import gpt_shakespeare
  c = gpt_shakespeare.get_config("demo")
  c.data.update(name="tiny_shakespeare", vocab_size=65)  # absent here: built from shapes alone
  c.model.attention_impl = "flash"
  with pytest.raises(ConfigError, match="attention_impl='flash'.*'xla' or 'cudnn'"):
    tasks.get_task(c)


# The causal case in the slow tier (fast tier under 3 minutes); the full mask stays fast.
@pytest.mark.parametrize("causal", [pytest.param(True, marks=pytest.mark.slow), False])
def test_cpu_attention_matches_jax_dot_product_attention(causal):
  """The XLA-path attention (Q scaled, normalised after PV) is jax's function, values and grads."""
  from genai_jax.models.transformer import _attention_xla
  q, k, v = (jax.random.normal(jax.random.PRNGKey(i), (2, 16, 4, 8)) for i in range(3))

  def loss(fn, *qkv):
    return jnp.sum(jnp.sin(fn(*qkv)))

  ours = lambda q, k, v: _attention_xla(q, k, v, causal)
  ref = lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=causal, implementation="xla")
  np.testing.assert_allclose(ours(q, k, v), ref(q, k, v), atol=2e-6, rtol=1e-5)
  for g, r in zip(jax.grad(lambda *a: loss(ours, *a), (0, 1, 2))(q, k, v),
                  jax.grad(lambda *a: loss(ref, *a), (0, 1, 2))(q, k, v)):
    np.testing.assert_allclose(g, r, atol=2e-5, rtol=1e-4)


def test_cpu_dense_product_has_the_plain_values_and_gradients():
  """The Dense product whose weight gradient uses a materialised transpose on CPU (faster GEMM
  form) equals lax.dot_general, values and both gradients; other targets keep XLA's own."""
  from genai_jax.models import backend
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(12, 5)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(5, 7)), jnp.float32)
  dn = (((1,), (0,)), ((), ()))
  ours = lambda x, w: jnp.sum(jnp.sin(transformer._dense_dot_general(x, w, dn)))
  plain = lambda x, w: jnp.sum(jnp.sin(jax.lax.dot_general(x, w, dn)))
  np.testing.assert_allclose(ours(x, w), plain(x, w), rtol=1e-6)
  for a, b in zip(jax.grad(ours, (0, 1))(x, w), jax.grad(plain, (0, 1))(x, w)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert "custom_vjp_call" in str(jax.make_jaxpr(ours)(x, w))
  with backend.compiling_for("tpu"):  # a fresh function: traces are cached per function
    tpu = lambda x, w: jnp.sum(jnp.sin(transformer._dense_dot_general(x, w, dn)))
    assert "custom_vjp_call" not in str(jax.make_jaxpr(tpu)(x, w))
