"""CycleGAN (Zhu et al. 2017): unpaired image-to-image translation, as the authors' PyTorch code.

One function per preset, each with its command, the result to expect and the wall time measured
or "not measured yet"; ``get_config(NAME)`` (default horse2zebra) looks NAME up in ``PRESETS``
(at the bottom) and every function returns a locked ConfigDict (a misspelt key is an error).

Every eval logs, on the held-out images of both domains: cycle_l1_a = mean |F(G(a)) - a| and
cycle_l1_b = mean |G(F(b)) - b| in [-1, 1] pixel units (cycle_l1: their mean), cycle_psnr_a/b in
dB, the identity errors idt_l1_a/b and the held-out D losses d_a, d_b. cycles/latest.png shows
rows a | G(a) | F(G(a)) | b | F(b) | G(F(b)) of the first held-out images. There are no
unconditional samples, so ``python -m genai_jax.eval`` (FID etc. of a generator) does not apply.
Rerunning a command resumes (and when all steps are done says there is nothing left to train).

Measured (faces_edges_demo, one run on 2 CPU cores shared with four other jobs, load 11-15: the
process got 27% of one core, so the wall time is an upper bound): 1,200 steps, 557.8 s of
training, 10 min 24 s wall for the command (166 s user CPU), peak RSS 1.6 GB. Last train log
(step 1200): g_loss 3.844, d_loss 0.300 (d_a 0.151, d_b 0.149), adv_ab 0.384, adv_ba 0.461,
cycle_a 0.090, cycle_b 0.101, idt_a 0.098, idt_b 0.120. Held-out cycle error on the 8 + 8 test
images (eval/cycle_l1 at steps 300/600/900/1200): 0.238 / 0.229 / 0.231 / 0.239, i.e. at step
1200 cycle_l1_a 0.211 (PSNR 17.6 dB) and cycle_l1_b 0.268 (14.8 dB); after 2 steps it is
0.533. The training cycle error keeps falling (0.23/0.27 at step 100, 0.09/0.10 at 1200) while
the held-out one is flat after step 300: with 42 images per domain the generators overfit, which
is what this small demo can show. cycles/latest.png: G(a) is a sketch of the face, F(b) a
plausible grey face under the strokes.
"""

import ml_collections
from ml_collections.config_dict import placeholder


def horse2zebra() -> ml_collections.ConfigDict:
  """The paper's setting (the default): 256x256 RGB, ResNet G of 9 blocks (11.378M parameters) and
  70x70 PatchGAN D (2.765M), two of each, LSGAN, cycle lambda 10, identity 0.5, pools of 50, Adam
  2e-4 (0.5, 0.999), batch 1 (8 on 8 devices), 200 epochs, the rate decaying to 0 over the second
  half; train images resized to 286, randomly cropped to 256 and flipped.

  Run: python -m experiments.cyclegan --workdir=workdirs/horse2zebra  (cycle_gan/horse2zebra prepared)
  Expect: stripes on horses in cycles/latest.png within a few epochs, eval/cycle_l1 falling, LSGAN
  losses ~0.2-0.5 (the paper gives no horse2zebra figure); not measured yet. Time: not measured yet.
  """
  c = ml_collections.ConfigDict()
  c.task = "cyclegan"
  c.seed = 0
  # Fine-tuning: start from another run's weights (WORKDIR or WORKDIR:STEP; its config.json
  # must describe the same model); the optimiser starts fresh unless keep_optimizer.
  c.init_from = ""
  c.init_from_keep_optimizer = False
  c.batch_size = 1  # global: pairs (one image of each domain) per step, across all devices
  c.num_steps = 266_800  # 200 epochs of 1,334 (the larger domain, trainB)
  c.log_every = 100
  c.eval_every = 5_000
  c.eval_batches = 120  # testA's 120 horses (and the first 120 of testB's 140 zebras)
  c.checkpoint_every = 5_000
  c.keep_checkpoints = 3
  c.num_samples = 6  # rows of the cycles grid (at most batch_size; 2-4 are padded to 5)

  c.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1})

  c.model = ml_collections.ConfigDict()
  c.model.name = "resnet_patchgan"  # the registry genai_jax.tasks.cyclegan.MODELS
  c.model.image_size = 256
  c.model.channels = 3  # both domains
  c.model.dtype = "float32"  # compute dtype: float32 | bfloat16 | float16 (params stay float32)
  # None: the model's default (in brackets).
  c.model.g_width = placeholder(int)  # ngf (64)
  c.model.d_width = placeholder(int)  # ndf (64)
  c.model.res_blocks = placeholder(int)  # (9 for 256x256 images, 6 for 128x128 and smaller)
  c.model.d_layers = placeholder(int)  # stride-2 convs of D (3: 70x70 patches; 2: 34x34)
  c.model.norm = placeholder(str)  # instance | none (instance)
  c.model.upsample_impl = placeholder(str)  # subpixel (fast, exact) | xla (subpixel)

  c.objective = ml_collections.ConfigDict({
      "loss": "least_squares",  # least_squares (LSGAN, the paper) | non_saturating (BCE)
      "lambda_cycle": 10.0,
      "lambda_identity": 0.5,  # times lambda_cycle; 0 turns the identity loss off
      "pool_size": 50,  # fakes kept per domain for D; 0: D sees only the newest
  })
  c.optimizer = ml_collections.ConfigDict({
      "name": "adam", "learning_rate": 2e-4, "b1": 0.5, "b2": 0.999,
      "decay_fraction": 0.5,  # the last half of the steps decays the rate linearly to 0
  })

  c.data = ml_collections.ConfigDict()
  c.data.kind = "unpaired"  # batches {'image_a', 'image_b'}, drawn independently
  c.data.name = "cycle_gan/horse2zebra"
  c.data.demo_hint = "--config=experiments/configs/cyclegan.py:faces_edges_demo"
  c.data.data_dir = ""  # '' -> $TFDS_DATA_DIR or ~/tensorflow_datasets; gs:// works
  c.data.download = False
  c.data.train_split = "train"  # + each domain suffix: trainA, trainB
  c.data.eval_split = "test"  # testA, testB
  c.data.domains = ("A", "B")
  c.data.image_key = "image"
  c.data.image_size = 256  # must equal model.image_size (checked)
  c.data.load_size = 286  # train: resize to this, random crop image_size; 0: no crop
  c.data.channels = 3
  c.data.center_crop = True
  c.data.random_flip = True
  c.data.shuffle_buffer = 10_000  # per shard
  c.data.shards = 1  # must divide batch_size (and be a multiple of the process count)
  c.lock()  # a misspelt key is an error, not a silently ignored setting
  return c


def faces_edges_demo() -> ml_collections.ConfigDict:
  """Embedded, no download: LFW faces (A) <-> Sobel edge maps of *other* faces (B), 32x32 gray,
  42 train / 8 held-out images per domain, disjoint (skimage_lfw_faces_edges); narrow nets (G 16
  with 3 residual blocks, a 34x34 PatchGAN of width 16), batch 4, 1,200 steps.

  Run: python -m experiments.cyclegan --config=experiments/configs/cyclegan.py:faces_edges_demo --workdir=W
  Expect: held-out cycle_l1 0.533 after 2 steps, 0.238 / 0.229 / 0.231 / 0.239 at steps 300-1,200
  (flat after 300: the generators overfit 42 images); G(a) a sketch of the face, F(b) a grey face.
  Time: 10 min 24 s wall (557.8 s of training) on 2 busy CPU cores (27% of one; "Measured" above).
  """
  c = horse2zebra()
  c.batch_size = 4
  c.num_steps = 1_200
  c.log_every = 100
  c.eval_every = c.checkpoint_every = 300
  c.eval_batches = 2  # 2 x 4 = all 8 held-out images of each domain, each once
  c.model.update(image_size=32, channels=1, g_width=16, d_width=16, res_blocks=3, d_layers=2)
  c.data.update(name="skimage_lfw_faces_edges", image_size=32, load_size=0, channels=1,
                shards=4)
  return c


PRESETS = {"horse2zebra": horse2zebra, "faces_edges_demo": faces_edges_demo}


def get_config(preset: str = "horse2zebra") -> ml_collections.ConfigDict:
  """The preset named (``--config=experiments/configs/cyclegan.py:NAME``); no name: horse2zebra."""
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; use one of: {', '.join(PRESETS)}")
  return PRESETS[preset]()
