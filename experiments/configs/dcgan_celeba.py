"""DCGAN on CelebA 64x64 (Radford et al. 2015, as the PyTorch DCGAN example), and the small GANs.

Run (CelebA prepared in TFDS_DATA_DIR or --config.data.data_dir):
  python -m experiments.dcgan_celeba --workdir=/tmp/dcgan
Expect: after ~5 epochs (6.3k steps at batch 128) recognisable faces in samples/latest.png, with
D(x) around 0.6-0.9 and D(G(z)) around 0.1-0.3, losses oscillating (D ~0.3-1.5, G ~1-5), as in
the PyTorch example's curves.

Presets (``--config=experiments/configs/dcgan_celeba.py:NAME``):
  demo         DCGAN, 32x32 grayscale, on the 90 LFW face crops that ship with scikit-image; 2 CPU
               cores in about 5 minutes. Expect face-like samples (eyes, nose, mouth) by step 1500.
               Ends with FID/KID/precision/recall/density/coverage of 100 samples against the 90
               training faces (split eval_gen of metrics.jsonl; README has a 500-sample table).
  mnist_mlp    An MLP GAN (G 256-512-1024, D 512-256, LeakyReLU 0.2) on tfds mnist (28x28), batch 64,
               30k steps. The seeds' own networks, exactly, are in seed_gans.py.
  mnist_conv   A small conv GAN on tfds mnist.
  digits_demo  The MLP GAN on scikit-learn's 8x8 digits, upsampled to 28x28; CPU, ~2 minutes;
               ends with the image metrics and FCD-digits of 200 samples.

Generator metrics during training: --config.eval_gen.every=N (and .num_samples, .metrics); see
genai_jax/eval/runner.py for the names.
"""

import ml_collections
from ml_collections.config_dict import placeholder


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.task = "gan"
  c.seed = 0
  # Fine-tuning: start from another run's weights (WORKDIR or WORKDIR:STEP; its config.json
  # must describe the same model); the optimiser starts fresh unless keep_optimizer.
  c.init_from = ""
  c.init_from_keep_optimizer = False
  c.batch_size = 128  # global, across all devices and processes
  c.num_steps = 8_000
  c.log_every = 100
  c.eval_every = 1_000
  c.eval_batches = 4
  c.checkpoint_every = 1_000
  c.keep_checkpoints = 3
  c.num_samples = 64  # 8x8 grid from fixed noise

  # Generator metrics in the loop (genai_jax.eval.runner): every N steps (0: never) and/or at the
  # last step; metrics '' = the sample kind's defaults (fid,kid,pr,dc for images); real_split ''
  # = data.train_split. `python -m genai_jax.eval` reads the same block for its defaults.
  c.eval_gen = ml_collections.ConfigDict(
      {"every": 0, "at_end": False, "num_samples": 500, "metrics": "", "real_split": ""})

  c.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1})

  c.model = ml_collections.ConfigDict()
  # dcgan | mlp | conv | keras_conv | sngan_resnet (the registry genai_jax.tasks.gan.MODELS)
  c.model.name = "dcgan"
  # Read by every model:
  c.model.image_size = 64
  c.model.channels = 3
  c.model.z_dim = 100
  c.model.dtype = "float32"  # compute dtype: float32 | bfloat16 | float16 (params stay float32)
  # Read by some models only; None means the chosen model's default (in brackets). Setting a key
  # the chosen model does not read is an error, not a silently ignored setting.
  c.model.width = placeholder(int)  # dcgan (64: ngf = ndf), conv (64), keras_conv (128), sngan
  c.model.conv_impl = placeholder(str)  # dcgan: subpixel (fast, exact) | xla (textbook lowering)
  # BatchNorm running-average decay in flax/Keras semantics; PyTorch's momentum is 1 minus it.
  # dcgan (0.9 = PyTorch 0.1), conv (0.9), keras_conv (0.8), sngan_resnet (0.9)
  c.model.bn_momentum = placeholder(float)
  c.model.g_hidden = placeholder(tuple)  # mlp ((256, 512, 1024))
  c.model.d_hidden = placeholder(tuple)  # mlp ((512, 256))
  # relu | leaky_relu (slope 0.01) | leaky_relu:SLOPE | elu | gelu | tanh | sigmoid
  c.model.activation = placeholder(str)  # mlp (leaky_relu:0.2), keras_conv (leaky_relu:0.01)
  # G's output nonlinearity: tanh (data in [-1, 1]) | sigmoid (the seed's data in [0, 1]; exact,
  # see genai_jax/models/mlp_gan.py)
  c.model.output = placeholder(str)  # mlp (tanh)
  c.model.kernel_size = placeholder(int)  # keras_conv (5)
  c.model.out_kernel = placeholder(int)  # keras_conv (7): kernel of G's last Conv
  # Spectral normalisation of D (dcgan: SN-DCGAN, SN instead of D's BatchNorm); of G too.
  c.model.spectral_norm = placeholder(bool)  # dcgan (False), sngan_resnet (True)
  c.model.spectral_norm_g = placeholder(bool)  # sngan_resnet (False)
  # sngan_resnet widths (None: the published nets: 256 / 128 at 32px, 1024 / 1024 at 64 and 128px)
  # are G's channels at 4x4 (width) and D's widest channels (d_width).
  c.model.d_width = placeholder(int)  # sngan_resnet
  # sngan_resnet (0: unconditional; > 0: conditional BN in G and a projection D)
  c.model.num_classes = placeholder(int)
  c.model.attention_res = placeholder(int)  # sngan_resnet (0: none; e.g. 16: SAGAN block at 16x16)

  c.objective = ml_collections.ConfigDict({"loss": "non_saturating"})
  c.optimizer = ml_collections.ConfigDict(
      {"name": "adam", "learning_rate": 2e-4, "b1": 0.5, "b2": 0.999})

  c.data = ml_collections.ConfigDict()
  c.data.name = "celeb_a"
  c.data.data_dir = ""  # '' -> $TFDS_DATA_DIR or ~/tensorflow_datasets; gs:// works
  c.data.download = False  # let tfds download when not prepared
  c.data.train_split = "train"
  c.data.eval_split = "validation"
  c.data.image_key = "image"
  c.data.image_size = 64  # must equal model.image_size (checked)
  c.data.channels = 3
  c.data.center_crop = True
  c.data.random_flip = False
  c.data.shuffle_buffer = 10_000  # per shard
  # The split is read as this many even shards; global batches do not depend on the process
  # count, which must divide it (raise it for pods with more than 8 hosts).
  c.data.shards = 8

  if preset == "demo":
    c.num_steps = 1_500
    c.batch_size = 64
    c.log_every = 50
    c.eval_every = 250
    c.checkpoint_every = 250
    c.eval_batches = 1
    c.model.update(width=32, image_size=32, channels=1)
    c.data.update(name="skimage_lfw_faces", eval_split="test", image_size=32, channels=1,
                  random_flip=True)
    c.eval_gen.update(at_end=True, num_samples=100)  # cheap: against the 90 training faces
  elif preset in ("mnist_mlp", "mnist_conv", "digits_demo"):
    c.batch_size = 64
    c.num_steps = 30_000
    c.model.update(name="mlp" if preset != "mnist_conv" else "conv", image_size=28, channels=1)
    c.data.update(name="mnist", eval_split="test", image_size=28, channels=1, center_crop=False)
    if preset == "digits_demo":
      c.num_steps, c.eval_every, c.checkpoint_every, c.log_every = 3_000, 500, 500, 100
      c.data.name = "sklearn_digits"
      c.eval_gen.update(at_end=True, num_samples=200, metrics="fid,kid,pr,dc,fcd")
  elif preset:
    raise ValueError(f"unknown preset {preset!r}; use one of: demo, mnist_mlp, mnist_conv, digits_demo")
  c.lock()  # a misspelt key is an error, not a silently ignored setting
  return c
