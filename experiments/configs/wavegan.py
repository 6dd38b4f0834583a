"""WaveGAN (Donahue, McAuley & Puckette, ICLR 2019): raw-waveform GAN, a preset of the GAN task.

Why a file of its own and not presets in dcgan_celeba.py: WaveGAN is the same task (one GAN
trainer: ``genai_jax/tasks/gan.py`` with the ``wavegan`` model of its registry), so this config
starts from the GAN config (its objective, optimizer/TTUR, ``n_dis``, EMA and eval blocks and
their defaults stay one definition) and replaces only what differs wholesale: the model block
(1-D networks, no image size) and the data block (``data.kind='audio'``). Putting audio presets
into the image config would leave image keys (``image_size``) in audio runs that read none of them.

One function per preset, each with its command, the result to expect and the wall time measured
(docs/results.md "Audio and music") or "not measured yet"; ``get_config(NAME)`` ('' or no name:
wavegan_sc09) looks NAME up in ``PRESETS`` and every function returns a locked ConfigDict.
"""

import ml_collections
from ml_collections.config_dict import placeholder

from experiments.configs import dcgan_celeba


def wavegan_sc09() -> ml_collections.ConfigDict:
  """The paper's WaveGAN (the default): d = 64, 5 layers -> 16,384 samples (1.02 s at 16 kHz), z
  100, phase shuffle 2, WGAN-GP (lambda 10), n_dis 5, Adam(1e-4, 0.5, 0.9), D batch 64 (batch_size
  5 x 64: a fresh real batch per D step), G 19,065,345 / D 17,427,969 parameters, on tfds sc09;
  fd_logmel, is_sc09 and fd_sc09 of 1,000 samples vs validation every 10k G steps.

  Run: python -m experiments.wavegan --workdir=workdirs/wavegan_sc09  (sc09 prepared: docs/data.md)
  Expect: the paper's Inception score from its SC09 digit classifier is the target; not
  reproduced here (no accelerator run). Time: not measured yet.
  """
  c = dcgan_celeba.base()
  c.unlock()
  # The GAN model keys WaveGAN reads (genai_jax.tasks.gan.MODELS['wavegan']); None: its default.
  c.model = ml_collections.ConfigDict({
      "name": "wavegan", "channels": 1, "z_dim": 100, "dtype": "float32",
      "width": placeholder(int),  # d (64)
      "layers": placeholder(int),  # 5: 16 * 4**layers samples per clip
      "phase_shuffle": placeholder(int),  # D's phase shuffle n (2; 0: off)
      "conv_impl": placeholder(str),  # subpixel (fast on CPU, exact) | xla (textbook lowering)
      "post_filter": placeholder(int)})  # taps of G's learned post-filter (0: none; paper's option: 512)
  c.data = ml_collections.ConfigDict({
      "kind": "audio", "name": "sc09", "data_dir": "", "download": False,
      "manual_dir": "",  # sc09: where the Speech Commands archive is ('': tfds's manual dir)
      "train_split": "train", "eval_split": "validation", "audio_key": "audio",
      "length": 16_384,  # samples per clip: must equal 16 * 4**model.layers (checked)
      "sample_rate": 16_000,  # Hz (checked against the dataset's)
      "shuffle_buffer": 10_000, "shards": 8})
  c.model.update(width=64, layers=5, phase_shuffle=2)
  c.objective.update(loss="wgan_gp", gp_weight=10.0)
  c.optimizer.update(learning_rate=1e-4, b1=0.5, b2=0.9, schedule="constant")
  d_batch = 64
  c.update(n_dis=5, batch_size=5 * d_batch, num_steps=100_000, log_every=100, eval_every=2_000,
           checkpoint_every=2_000, eval_batches=4, num_samples=16)  # 16 WAVs per eval
  # fd_logmel, and WaveGAN's Inception score and a Fréchet distance on the features of an SC09
  # digit classifier trained here (genai_jax/eval/sc09_classifier.py); the demo keeps fd_logmel.
  c.eval_gen.update(every=10_000, at_end=True, num_samples=1_000,
                    metrics="fd_logmel,is_sc09,fd_sc09", real_split="validation")
  c.lock()
  return c


def chorales_demo() -> ml_collections.ConfigDict:
  """A narrower, shorter WaveGAN on the embedded bach_chorales_audio (additive-synthesis chorales,
  clips cropped at random to 4,096 samples = 0.26 s): 4 layers, d = 16 (G 0.48M, D 0.27M), the
  paper's WGAN-GP and n_dis 5 with Adam(8e-4, 0.5, 0.9), D batch 8, a 512-tap post-filter, 1,200
  G steps; 8 WAVs and a log-mel PNG per eval, then fd_logmel of samples, noise and real clips.

  Run: python -m experiments.wavegan --config=experiments/configs/wavegan.py:chorales_demo --workdir=W
  Expect: fd_logmel 569.7 vs the 144 validation clips (white noise 1,346.9; real train clips 28.7).
  Time: 458 s for the command (433 s the steps) on 2 shared CPU cores, the dataset prepared.
  """
  c = wavegan_sc09()
  # Tuned for fd_logmel on a CPU budget: the paper's objective and n_dis, but D batch 8 and a
  # larger Adam step, and the paper's optional 512-tap post-filter (it takes out some of the
  # early broadband hiss, which dominates fd_logmel). Measured fd_logmel against the 144
  # validation clips (white noise 1,347; real training clips 28.7): D batch 16, lr 1e-4, 600
  # steps 927; D batch 8, lr 3e-4, 1,200 steps 727; + post-filter 687; + lr 8e-4 570.
  c.model.update(width=16, layers=4, post_filter=512)
  c.data.update(name="bach_chorales_audio", length=4_096, shuffle_buffer=2_000)
  c.optimizer.learning_rate = 8e-4
  d_batch = 8
  c.update(batch_size=5 * d_batch, num_steps=1_200, log_every=100, eval_every=400,
           checkpoint_every=400, eval_batches=2, num_samples=8)
  # Every validation clip (144) at the end, and as many generated clips.
  c.eval_gen.update(every=0, at_end=True, num_samples=144, metrics="fd_logmel")
  return c


PRESETS = {"": wavegan_sc09, "wavegan_sc09": wavegan_sc09, "chorales_demo": chorales_demo}


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  """The preset named (``--config=experiments/configs/wavegan.py:NAME``); '': wavegan_sc09."""
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; use one of: {', '.join(p for p in PRESETS if p)}")
  return PRESETS[preset]()
