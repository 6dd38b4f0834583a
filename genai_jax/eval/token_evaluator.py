"""Generator metrics of token samples (``samples.Tokens``: text), on ``eval_gen.text_unit``:
whitespace 'words' (default) or 'tokens'; each also reported on N real windows of the eval split
of the same length, as ``real_<name>``. Names (``--metrics`` / ``eval_gen.metrics``; empty: the
defaults, marked *):

  distinct*  distinct-1/2/3 over all samples                     -> distinct_1, distinct_2, distinct_3
  self_bleu* BLEU-4 of each sample against the others            -> self_bleu
  mem*       share of 8-grams found verbatim in the train split  -> mem_8gram
"""

import numpy as np

from genai_jax import samples as samples_lib
from genai_jax.errors import ConfigError
from genai_jax.eval import evaluator

MEM_N = 8  # memorisation n-gram length
TEXT_UNITS = ("words", "tokens")


def real_token_windows(config, split: str, num: int, length: int) -> np.ndarray:
  """int32 [n <= num, length]: the first ``num`` windows of ``split`` as the eval pipeline reads
  them (in order, no shuffling), cut to ``length`` tokens."""
  from genai_jax.data import pipelines
  rows, bs = [], int(config.batch_size)
  for batch in pipelines.batches(config.data, split, bs, train=False, seed=config.seed):
    rows.extend(np.asarray(batch["tokens"])[:, :length])
    if len(rows) >= num:
      break
  return np.stack(rows[:num]).astype(np.int32)


class TokenEvaluator(evaluator.Evaluator):
  """``evaluator.Evaluator`` for token sequences; ``text_unit``: 'words' or 'tokens'."""
  KIND = samples_lib.Tokens
  METRICS = ("distinct", "self_bleu", "mem")
  DEFAULTS = ("distinct", "self_bleu", "mem")
  OPTIONS = ("text_unit",)  # the eval_gen keys this kind reads beyond the shared ones

  def __init__(self, config, metrics, num_samples: int, mesh=None, *, task,
               text_unit: str = "words", **shared):
    super().__init__(config, metrics, num_samples, mesh, task=task, **shared)
    from genai_jax.eval import text_metrics
    if text_unit not in TEXT_UNITS:
      raise ConfigError(f"unknown eval_gen.text_unit {text_unit!r}; set it to one of "
                        f"{list(TEXT_UNITS)}", keys=("eval_gen.text_unit",))
    self.text_unit = text_unit
    self._words = text_metrics.WordIds() if text_unit == "words" else None
    self._mem_index = None
    if "mem" in self.metrics and self.config.data.get("packing", "windows") != "windows":
      raise ConfigError("mem (memorisation) indexes the whole training text, which a streamed "
                        "corpus (data.packing='stream') is too large for; drop mem from the metrics")

  def _units(self, sample) -> list:
    """A Tokens sample's generated parts as int sequences of ``text_unit``."""
    if self._words is None:
      return [np.asarray(row[sample.prompt_len:]) for row in np.asarray(sample.tokens)]
    return [self._words(t) for t in sample.texts()]

  def _scores(self, seqs: list) -> dict:
    from genai_jax.eval import text_metrics
    out = {}
    if "distinct" in self.metrics:
      for n in (1, 2, 3):
        out[f"distinct_{n}"] = text_metrics.distinct_n(seqs, n)
    if "self_bleu" in self.metrics:
      out["self_bleu"] = text_metrics.self_bleu(seqs)
    if "mem" in self.metrics:
      out[f"mem_{MEM_N}gram"] = text_metrics.memorisation(seqs, self._memorisation_index())
    return out

  def _memorisation_index(self):
    if self._mem_index is None:
      from genai_jax.data import text
      from genai_jax.eval import text_metrics
      train = text.split_tokens(self.config.data, self.config.data.train_split)
      if self._words is not None:
        train = self._words(text.vocabulary(self.config.data).decode(train))
      self._mem_index = text_metrics.NgramIndex(train, MEM_N)
    return self._mem_index

  def __call__(self, state, seed: int = 0) -> dict:
    fake = self._generate(state, self.num_samples, seed)
    out = self._scores(self._units(fake))
    if "real" not in self._refs:  # real held-out windows as long as the generated text
      length = fake.tokens.shape[1] - fake.prompt_len
      windows = real_token_windows(self.config, self.config.data.eval_split, self.num_samples,
                                   length)
      real = samples_lib.Tokens(windows, fake.detokenise, 0)
      self._refs["real"] = {f"real_{k}": v for k, v in self._scores(self._units(real)).items()}
      self.notes.append(f"real_* metrics: {len(windows)} windows of {length} tokens of the "
                        f"{self.config.data.eval_split} split")
    return {**out, **self._refs["real"]}
