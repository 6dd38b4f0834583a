"""Recurrent language model (the seeds' news LM baseline): embed -> stacked GRUs (or LSTMs) ->
vocabulary logits."""

from typing import Any, Optional

import flax.linen as nn
import jax.numpy as jnp


CELLS = ("gru", "lstm")


class GRULM(nn.Module):
  """tokens int32 [B, T] -> (logits float32 [B, T, vocab], carries: a tuple with one carry per
  layer: [B, hidden] for a GRU, a (c, h) pair of [B, hidden] for an LSTM).

  Pass the returned carries back in (``carries=``) to continue a sequence token by token.
  """
  vocab_size: int
  hidden: int = 256
  num_layers: int = 2
  dropout: float = 0.0
  dtype: Any = None  # compute dtype (None: float32); params and the carries stay float32
  cell: str = "gru"  # gru | lstm (Zaremba et al.'s PTB models)

  @nn.compact
  def __call__(self, tokens, carries: Optional[tuple] = None, *, train: bool = False):
    x = nn.Embed(self.vocab_size, self.hidden, dtype=self.dtype, name="embed")(tokens)
    out_carries = []
    for i in range(self.num_layers):
      if self.cell == "lstm":
        cell = nn.OptimizedLSTMCell(self.hidden, dtype=self.dtype, name=f"lstm_{i}")
      else:
        cell = nn.GRUCell(self.hidden, dtype=self.dtype, name=f"gru_{i}")
      rnn = nn.RNN(cell, return_carry=True)
      carry, x = rnn(x, initial_carry=None if carries is None else carries[i])
      out_carries.append(carry)
      x = nn.Dropout(self.dropout)(x, deterministic=not train)
    return nn.Dense(self.vocab_size, dtype=self.dtype, name="head")(x).astype(jnp.float32), tuple(out_carries)

  def zero_carries(self, batch: int) -> tuple:
    zero = lambda: jnp.zeros((batch, self.hidden), jnp.float32)  # noqa: E731
    return tuple((zero(), zero()) if self.cell == "lstm" else zero() for _ in range(self.num_layers))
