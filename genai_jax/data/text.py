"""Text data for language models: char/byte vocabularies and fixed-length token windows.

Two ways to cut a split into ``[seq_len + 1]`` windows (``cfg.packing``):

* ``windows`` (tiny_shakespeare, the embedded stdlib text; whole split in host memory): training
  row ``r`` of global batch ``t`` starts at a uniform offset drawn from ``(seed, t)``, as nanoGPT's
  ``get_batch``; eval batches are consecutive non-overlapping windows from the start (of
  ``data.eval_seq_len + 1`` tokens when set: see ``window_len``). Each
  process takes its contiguous block of rows, so batches do not depend on the process count and
  resuming at step ``s`` is exact by construction.
* ``stream`` (lm1b; sentences): each of ``cfg.shards`` even shards is shuffled per epoch with a
  seed from (seed, epoch, shard) as in ``reader.sharded_batches``, byte-encoded with a
  newline after each sentence, and packed into contiguous windows; a resumed run skips the
  windows already consumed (exact, at the cost of re-reading them).
"""

import collections
import functools
import re
from typing import Iterator

import numpy as np

from genai_jax.errors import ConfigError, DatasetMissingError

SEPARATOR = "\n"  # joins examples (files, sentences) in a split's token stream


class Vocab:
  """Char (the sorted characters of a dataset) or byte (256 values) vocabulary."""

  def __init__(self, chars=None):
    self.chars = chars  # None: bytes
    self.size = 256 if chars is None else len(chars)
    if chars is not None:
      self._index = {c: i for i, c in enumerate(chars)}

  def encode(self, text: str) -> np.ndarray:
    """str -> int32 [len] token ids (characters missing from a char vocab raise ConfigError)."""
    if self.chars is None:
      return np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32)
    try:
      return np.array([self._index[c] for c in text], np.int32)
    except KeyError as e:
      raise ConfigError(f"character {e.args[0]!r} is not in the dataset's vocabulary; "
                        f"use only characters from the training text") from e

  def decode(self, ids) -> str:
    """int [len] -> str; ids outside the vocabulary (e.g. a [MASK] id) render as '_'."""
    ids = np.asarray(ids).reshape(-1)
    if self.chars is None:
      return bytes(int(i) if 0 <= i < 256 else 95 for i in ids).decode("utf-8", errors="replace")
    return "".join(self.chars[i] if 0 <= i < self.size else "_" for i in ids)


UNK = "<unk>"
# A word: a run of letters, digits and apostrophes; or a run of other non-space characters (so
# "f()" is "f", "()" and a table rule "-----" is one token). Spaces are not tokens.
_WORD = re.compile(r"[\w']+|[^\w\s]+")


class WordVocab:
  """Word vocabulary: ``<unk>`` (id 0), the newline (id 1: line breaks and the separator between
  examples are tokens), then the most frequent words of the training split (ties in first-seen
  order), ``size`` tokens in all.

  Text is lower-cased first when ``lowercase`` (the default: "The" and "the" are one word, so the
  vocabulary covers more of the text); words outside the vocabulary encode as ``<unk>``.
  ``whitespace``: words are the runs of non-space characters (pre-tokenised corpora such as the
  Penn Treebank, whose "<unk>", "mr." and "n't" are words) instead of ``_WORD``'s pattern; a
  literal "<unk>" in the text is the ``<unk>`` token. Decoding joins words with spaces.
  """

  def __init__(self, words, lowercase: bool = True, whitespace: bool = False):
    self.words = tuple(words)
    self.lowercase = lowercase
    self.whitespace = whitespace
    self.size = len(self.words)
    self._index = {w: i for i, w in enumerate(self.words)}

  @classmethod
  def from_text(cls, text: str, size: int, lowercase: bool = True,
                whitespace: bool = False) -> "WordVocab":
    if size < 3:
      raise ConfigError(f"data.vocab_size={size} is too small for a word vocabulary; set "
                        f"data.vocab_size to e.g. 10000", keys=("data.vocab_size",))
    counts = collections.Counter(cls.tokenize(text, lowercase, whitespace))
    counts.pop(SEPARATOR, None)
    counts.pop(UNK, None)  # a corpus's own <unk> is ours, not a second entry
    common = [w for w, _ in counts.most_common(size - 2)]
    return cls((UNK, SEPARATOR, *common), lowercase, whitespace)

  @staticmethod
  def tokenize(text: str, lowercase: bool = True, whitespace: bool = False) -> list:
    """str -> words, with a ``SEPARATOR`` token for each newline."""
    text = text.lower() if lowercase else text
    out = []
    for i, line in enumerate(text.split(SEPARATOR)):
      if i:
        out.append(SEPARATOR)
      out.extend(line.split() if whitespace else _WORD.findall(line))
    return out

  def encode(self, text: str) -> np.ndarray:
    """str -> int32 [words] ids; unknown words -> 0 (``<unk>``)."""
    words = self.tokenize(text, self.lowercase, self.whitespace)
    return np.array([self._index.get(w, 0) for w in words], np.int32)

  def decode(self, ids) -> str:
    """int [len] -> words joined by spaces; ids outside the vocabulary (a [MASK]) render as '_'."""
    words = [self.words[i] if 0 <= i < self.size else "_" for i in np.asarray(ids).reshape(-1)]
    return " ".join(words).replace(f" {SEPARATOR} ", SEPARATOR)


def _split_text(builder, split: str, key: str) -> str:
  from genai_jax.data import reader
  return SEPARATOR.join(_as_str(ex[key]) for ex in reader.read_all(builder, split))


def _as_str(value) -> str:
  return _as_bytes(value).decode("utf-8")


def _as_bytes(value) -> bytes:
  """A tfds Text value (bytes; a 0-d object array or str from tfds' mock data) -> bytes."""
  value = value.item() if isinstance(value, np.ndarray) else value
  return value.encode("utf-8") if isinstance(value, str) else bytes(value)


@functools.lru_cache(maxsize=8)
def _cached_vocab(name: str, data_dir, kind: str, key: str, word_opts: tuple = ()) -> Vocab:
  from genai_jax.data import reader  # lazily: tfds loads only when data is read
  if kind == "byte":
    return Vocab()
  if kind not in ("char", "word"):
    raise ConfigError(f"unknown data.vocab {kind!r}; set data.vocab to 'char', 'byte' "
                      f"or 'word'", keys=("data.vocab",))
  builder = reader.get_builder(_Cfg(name, data_dir))
  if kind == "word":  # from the training split only: held-out words it lacks are <unk>
    size, lowercase, train_split, whitespace = word_opts
    return WordVocab.from_text(_split_text(builder, train_split, key), size, lowercase, whitespace)
  chars = set(SEPARATOR)
  for split in sorted(builder.info.splits.keys()):  # all splits: eval text never hits an unknown char
    chars |= set(_split_text(builder, split, key))
  return Vocab(tuple(sorted(chars)))


class _Cfg(dict):
  """The few ``config.data`` fields ``get_builder`` reads, hashable for caching."""

  def __init__(self, name, data_dir):
    super().__init__(name=name, data_dir=data_dir or "")

  def __getattr__(self, k):
    return self[k]


def _word_opts(cfg) -> tuple:
  if cfg.get("vocab", "char") != "word":
    return ()
  split = cfg.get("word_split", "pattern")
  if split not in ("pattern", "whitespace"):
    raise ConfigError(f"unknown data.word_split {split!r}; set data.word_split to "
                      f"'pattern' (words and punctuation runs) or 'whitespace' (pre-tokenised text)",
                      keys=("data.word_split",))
  return (int(cfg.get("vocab_size", 0)) or 10_000, bool(cfg.get("lowercase", True)),
          cfg.get("train_split", "train"), split == "whitespace")


def vocabulary(cfg) -> Vocab:
  """The vocabulary of ``cfg`` (``config.data``): ``cfg.vocab`` is 'char', 'byte' or 'word'
  (``WordVocab`` of ``cfg.vocab_size`` tokens, default 10,000, from the train split,
  ``cfg.lowercase``).

  A char vocabulary is read from the dataset. ``cfg.vocab_size`` > 0 states its size: checked
  against the dataset when it is at hand, and otherwise a stand-in of that many placeholder
  characters, so the model can be built and compiled from shapes alone (``genai_jax.aot`` on a
  machine without the data; reading batches still needs the dataset).
  """
  kind, size = cfg.get("vocab", "char"), cfg.get("vocab_size", 0)
  if kind == "byte":
    return Vocab()
  try:
    from genai_jax.data import reader  # lazily: tfds loads only when data is read
  except ImportError as e:  # an image without tfds: shapes are all we can build
    raise_missing = DatasetMissingError(f"cannot read {cfg.name!r} without tensorflow_datasets "
                                        f"({e}); pip install tensorflow-datasets array-record")
    reader = None
  if kind == "word":
    if reader is None:
      raise raise_missing
    return _cached_vocab(cfg.name, reader.data_dir(cfg), kind, cfg.get("text_key", "text"),
                         _word_opts(cfg))
  try:
    if reader is None:
      raise raise_missing
    vocab = _cached_vocab(cfg.name, reader.data_dir(cfg), kind, cfg.get("text_key", "text"), ())
  except DatasetMissingError as e:
    if kind != "char":
      raise
    if not size:
      raise DatasetMissingError(f"{e}; or, to build the model without the data (python -m "
                                f"genai_jax.aot), state its vocabulary: data.vocab_size=N",
                                keys=e.keys + ("data.vocab_size",)) from e
    return Vocab(tuple(chr(0xE000 + i) for i in range(size)))  # Unicode private-use placeholders
  if size and kind == "char" and size != vocab.size:
    raise ConfigError(f"data.vocab_size={size} but {cfg.name!r} has {vocab.size} {kind} tokens; "
                      f"set data.vocab_size={vocab.size} (or 0 to read it from the data)",
                      keys=("data.vocab_size",))
  return vocab


@functools.lru_cache(maxsize=8)
def _cached_tokens(name, data_dir, split, kind, key, word_opts=()) -> np.ndarray:
  from genai_jax.data import reader  # lazily: tfds loads only when data is read
  builder = reader.get_builder(_Cfg(name, data_dir))
  if builder.info.splits and split not in builder.info.splits:
    raise ConfigError(f"dataset {name!r} has no split {split!r}; "
                      f"choose one of {sorted(builder.info.splits.keys())}")
  vocab = _cached_vocab(name, data_dir, kind, key, word_opts)
  return vocab.encode(_split_text(builder, split, key))


def split_tokens(cfg, split: str) -> np.ndarray:
  """All of ``split`` as one int32 [n] token array (examples joined by a newline); cached."""
  from genai_jax.data import reader  # lazily: tfds loads only when data is read
  return _cached_tokens(cfg.name, reader.data_dir(cfg), split, cfg.get("vocab", "char"),
                        cfg.get("text_key", "text"), _word_opts(cfg))


def window_len(cfg, train: bool) -> int:
  """Tokens a window predicts: ``data.seq_len`` in training; in evaluation ``data.eval_seq_len``
  when set (> 0), e.g. an RNN read through the test text in a few long streams, as Zaremba et
  al. carry its state, rather than in training-length windows each from a zero state."""
  return int(cfg.seq_len if train else (cfg.get("eval_seq_len", 0) or cfg.seq_len))


def window_batches(cfg, split: str, global_batch: int, *, train: bool, seed: int = 0,
                   start_step: int = 0) -> Iterator[dict]:
  """``{'tokens': int32 [global_batch / P, L + 1]}`` windows of one in-memory split, L =
  ``window_len`` (seq_len; eval_seq_len in evaluation when set)."""
  tokens = split_tokens(cfg, split)
  length = window_len(cfg, train) + 1
  span = len(tokens) - length
  if span <= 0:
    which = "data.seq_len" if train or not cfg.get("eval_seq_len", 0) else "data.eval_seq_len"
    raise ConfigError(f"split {split!r} of {cfg.name!r} has only {len(tokens)} tokens; "
                      f"lower {which} below it", keys=(which,))
  from genai_jax.data import reader
  rows = reader.process_rows(global_batch)
  ar = np.arange(length)

  def gen():
    step = start_step
    while True:
      if train:  # a fixed function of (seed, step): resume needs no saved iterator state
        starts = np.random.default_rng((seed, step)).integers(0, span + 1, global_batch)[rows]
      else:
        starts = ((np.arange(global_batch)[rows] + step * global_batch) * length) % (span + 1)
      yield {"tokens": tokens[starts[:, None] + ar]}
      step += 1
  return gen()


def stream_batches(cfg, split: str, global_batch: int, *, train: bool, seed: int = 0,
                   start_step: int = 0) -> Iterator[dict]:
  """``{'tokens': int32 [global_batch / P, L + 1]}`` (L: ``window_len``): sentences byte-encoded, each followed
  by a newline, and packed contiguously into rows; sharded as ``reader.sharded_batches`` (each
  shard's sentences in the per-epoch order of ``loader.indices``).

  Rows run across sentence boundaries, so where row k of a shard starts depends on the lengths
  of every sentence before it: a run resumed at step s reads the consumed sentences' records
  again to find its place (not decoding them into rows), the one stream that does."""
  from genai_jax.data import loader, reader  # lazily: tfds loads only when data is read
  if cfg.get("vocab", "byte") != "byte":
    raise ConfigError("data.packing='stream' packs bytes; set data.vocab=byte",
                      keys=("data.vocab",))
  key = cfg.get("text_key", "text")
  length = window_len(cfg, train) + 1
  builder = reader.get_builder(cfg)
  shards, per_shard, owned = reader.owned_shards(cfg, global_batch)
  sources = {s: reader.open_shard(builder, split, key, s, shards, name=cfg.name) for s in owned}

  def rows(s):  # this shard's packed rows from row start_step * per_shard on
    src, position, skip = sources[s], 0, start_step * per_shard * length  # bytes to pass over
    buf = np.zeros((0,), np.int32)
    while True:
      order = loader.indices(len(src), np.arange(position, position + 256), train=train,
                             seed=seed, shard=s)
      position += len(order)
      for i in order:
        text = _as_bytes(src[int(i)][key])
        n = len(text) + 1
        if skip >= n:
          skip -= n
          continue
        tokens = np.frombuffer(text + SEPARATOR.encode(), np.uint8).astype(np.int32)[skip:]
        skip = 0
        buf = np.concatenate([buf, tokens])
        while len(buf) >= length:
          yield buf[:length]
          buf = buf[length:]

  def gen():
    streams = [rows(s) for s in owned]
    while True:
      yield {"tokens": np.stack([next(r) for r in streams for _ in range(per_shard)])}
  return gen()


def text_batches(cfg, split: str, global_batch: int, *, train: bool, seed: int = 0,
                 start_step: int = 0) -> Iterator[dict]:
  """The loop's text data (``data.kind='text'``), by ``cfg.packing``; see the module docstring."""
  packing = cfg.get("packing", "windows")
  if packing == "windows":
    return window_batches(cfg, split, global_batch, train=train, seed=seed, start_step=start_step)
  if packing == "stream":
    return stream_batches(cfg, split, global_batch, train=train, seed=seed, start_step=start_step)
  raise ConfigError(f"unknown data.packing {packing!r}; set it to 'windows' or 'stream'")


def unigram_entropy(tokens: np.ndarray, reference: np.ndarray = None) -> float:
  """Cross-entropy (nats/token) of ``tokens`` under unigram frequencies of ``reference``
  (default: of ``tokens`` itself, i.e. its unigram entropy); add-one smoothing."""
  ref = tokens if reference is None else reference
  size = int(max(tokens.max(), ref.max())) + 1
  p = (np.bincount(ref, minlength=size) + 1.0) / (len(ref) + size)
  return float(-np.log(p[tokens]).mean())
