"""Bach chorales: a Coconet-style masked model of four-voice piano rolls (the masked transformer
of ``gpt_shakespeare.py``'s ``mlm`` on ``data.kind='music'``).

Run (the embedded ``bach_chorales`` dataset, prepared from the music21 corpus on first use):
  python -m experiments.bach_chorales --config=experiments/configs/bach_chorales.py:demo --workdir=workdirs/chorales

Why a masked model, not a piano-roll GAN: Coconet (Huang et al. 2017) showed that an orderless
masked model of the roll, sampled by iterative re-masking (here MaskGIT's confidence-ordered
unmasking, ``genai_jax.generate.maskgit``), fits and generates chorales well, and it gives what
the evaluation asks for: a held-out note-level negative log-likelihood (the eval ``loss``: nats
per masked voice-step under BERT 15% masking, beside the unigram baseline the run prints), which
a GAN does not. It also reuses the task, model and sampler the text models already test. Coconet
is a convolutional net over the [T, pitch, voice] roll; here a transformer reads the roll as
time-major tokens (4 voices per sixteenth-note step, token = pitch or rest; ``genai_jax.music``),
so attention sees every voice at every step.

One function per preset, each with its command, the result to expect and the wall time measured
(docs/results.md "Audio and music") or "not measured yet"; ``get_config(NAME)`` ('' or no name: demo)
looks NAME up in ``PRESETS`` and every function returns a locked ConfigDict.
"""

import ml_collections

from experiments.configs import gpt_shakespeare


def demo() -> ml_collections.ConfigDict:
  """gpt_shakespeare.py:mlm_demo's masked transformer on the rolls: 4 layers, 4 heads, 128 wide
  (0.8M parameters), windows of 32 sixteenths (2 bars, 128 tokens), batch 16, transposition by up
  to +-3 semitones, 1,000 steps; then 64 unconditional rolls and music_stats.json / .md.

  Run: python -m experiments.bach_chorales --config=experiments/configs/bach_chorales.py:demo --workdir=workdirs/chorales
  Expect: validation loss 0.753 nats per masked voice-step (accuracy 0.728; unigram 3.406).
  Time: 3 min 6 s for the command (170 s the steps) on 2 idle CPU cores, the dataset prepared.
  """
  c = gpt_shakespeare.mlm_demo()
  c.unlock()
  c.task = "masked_lm"
  c.data = ml_collections.ConfigDict({
      "kind": "music", "name": "bach_chorales", "data_dir": "", "download": False,
      "train_split": "train", "eval_split": "validation", "pitches_key": "pitches",
      "seq_len": 128,  # tokens: 32 steps x 4 voices
      "transpose": 3,  # train windows shifted by up to +-3 semitones (staying in range)
      "vocab_size": 0})
  c.batch_size = 16
  c.num_steps = 1_000
  c.log_every = 100
  c.eval_every = c.checkpoint_every = 500
  c.eval_batches = 16  # 16 x 16 windows of 32 steps: most of the 36 validation chorales
  c.num_samples = 8
  c.model.update(num_layers=4, num_heads=4, d_model=128, dropout=0.1)
  c.optimizer.update(learning_rate=1e-3, min_learning_rate=1e-4, warmup_steps=100,
                     weight_decay=0.01)
  c.sample.update(prompt_len=16, temperature=1.0, top_k=0, iterations=32)
  # Confidence-first unmasking commits held notes everywhere first (a held note is the most
  # predictable token) and samples collapse into long held chords; MaskGIT's Gumbel-noised
  # order (annealed) fixes that.
  c.sample.choice_temperature = 4.5
  c.eval_gen.update(at_end=False)  # the music statistics are computed by the experiment
  # Music statistics after training (experiments.bach_chorales): unconditional samples vs real.
  c.music_stats = ml_collections.ConfigDict({"num_samples": 64, "seed": 0})
  c.lock()
  return c


def chorales() -> ml_collections.ConfigDict:
  """:demo's model family at a Coconet-like scale: 8 layers, 8 heads, 256 wide, windows of 64
  sixteenths (4 bars), batch 32, 20k steps.

  Run: python -m experiments.bach_chorales --config=experiments/configs/bach_chorales.py:chorales --workdir=W
  Expect: not measured yet. Time: not measured yet.
  """
  c = demo()
  c.batch_size = 32
  c.num_steps = 20_000
  c.log_every, c.eval_every, c.checkpoint_every = 200, 2_000, 2_000
  c.model.update(num_layers=8, num_heads=8, d_model=256)
  c.data.seq_len = 256
  c.sample.prompt_len = 32
  return c


PRESETS = {"": demo, "demo": demo, "chorales": chorales}


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  """The preset named (``--config=experiments/configs/bach_chorales.py:NAME``); '': demo."""
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; use one of: {', '.join(p for p in PRESETS if p)}")
  return PRESETS[preset]()
