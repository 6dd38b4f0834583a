"""benchmarks.profile_step: compiled-HLO ops land in the right buckets, with their bytes."""

import jax
import jax.numpy as jnp
import optax

from benchmarks import profile_step


def test_shape_bytes_reads_arrays_and_tuples():
  assert profile_step.shape_bytes("f32[64,8]{1,0}") == 64 * 8 * 4
  assert profile_step.shape_bytes("(bf16[3], s32[], pred[2,2])") == 6 + 4 + 4


def test_hlo_ops_are_bucketed_by_what_they_compute():
  opt = optax.adam(1e-3)

  def step(w, s, x):
    y = jnp.tanh(x @ w)                     # a GEMM (+ its fused activation)
    z = jnp.transpose(y).reshape(-1)[::3]   # layout only
    g = jax.grad(lambda w: jnp.sum(jnp.tanh(x @ w) ** 2))(w)
    u, s = opt.update(g, s, w)
    return optax.apply_updates(w, u), s, jnp.sum(y, axis=1), z

  w, x = jnp.ones((64, 32)), jnp.ones((128, 64))
  text = jax.jit(step).lower(w, opt.init(w), x).compile().as_text()
  buckets, about, out_bytes = profile_step.parse_hlo(text)
  kinds = set(buckets.values())
  assert {"dot/conv", "optimizer", "reduction"} <= kinds, buckets
  dots = [n for n, b in buckets.items() if b == "dot/conv"]
  assert any("dot_general" in about[n] for n in dots)
  assert all(out_bytes[n] > 0 for n in dots)
  # Adam's moment updates come from optax's source files, whatever fusion they end up in.
  assert any(b == "optimizer" and "f32[64,32]" in about[n] for n, b in buckets.items())
