"""GAN family: DCGAN, the small MNIST GANs, SNGAN-style recipes and WaveGAN, one task with switches.

One step (``n_dis`` = 1, the default): sample z, generate fakes once, update D on a real batch
and on the (detached) fakes, then update G through the freshly updated D, exactly as the PyTorch
DCGAN example. D sees real and fake batches in separate forward passes, so its BatchNorm
statistics are per-kind, as in the reference.

Switches (config keys): ``objective.loss`` (non_saturating | hinge | least_squares | wgan_gp with
``objective.gp_weight``), ``objective.r1_weight``/``r1_every`` (lazy R1 on reals), TTUR
(``optimizer.g`` / ``optimizer.d`` override the shared ``optimizer`` block key by key),
``n_dis`` D steps per G step, an EMA copy of G (``ema.decay``, ``ema.start_step``) that sampling
and evaluation use, DiffAugment in D's forward (``augment.policy``), and class-conditional
G and D (``model.num_classes`` > 0 with ``data.labels``).

Data kinds: images (``data.kind='image'``, samples ``samples.Images``) and audio
(``data.kind='audio'``, batch key 'audio', float32 [B, T, 1]; ``samples.Audio`` at
``data.sample_rate``). D is initialised on G's output shape, which must equal the data's sample
shape. In training D's forwards get a ``'phase_shuffle'`` rng (WaveGAN's D draws its shifts from
it; other models ignore it); evaluation and ``discriminate`` pass none, so they are deterministic.

With ``n_dis`` = n, one train step is one G step: the global batch holds n D batches
(``batch_size`` = n x the D batch, as SNGAN/Mimicry draw a fresh real batch per D step), taken
as strided chunks (rows i, i + n, ...) so every device keeps its own rows. D steps 1..n-1 each
generate their own fakes; the last D step and the G step share fakes as in the n = 1 step.
"""

import dataclasses
import functools
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from genai_jax import data, samples
from genai_jax.models import dcgan, mlp_gan, registry, sngan, wavegan
from genai_jax.objectives import gan as gan_losses
from genai_jax.tasks.base import Task
from genai_jax.train import optimizers, sharding
from genai_jax.errors import ConfigError
from genai_jax import augment

SHARED_KEYS = ("image_size", "channels", "z_dim", "dtype")  # read by every GAN model


def _mlp(s):
  mlp_gan._check_output(s["output"])
  return (mlp_gan.MLPGenerator(s["g_hidden"], s["image_size"], s["channels"], s["activation"],
                               s["output"], s["dtype"]),
          mlp_gan.MLPDiscriminator(s["d_hidden"], s["activation"], s["output"], s["dtype"]))


def _wavegan(s):
  if s["conv_impl"] not in wavegan.CONV_IMPLS:
    raise ConfigError(f"unknown model.conv_impl {s['conv_impl']!r} for wavegan; set it to one of "
                      f"{list(wavegan.CONV_IMPLS)}")
  return (wavegan.Generator(s["width"], s["layers"], s["channels"], s["dtype"], s["conv_impl"],
                            s["post_filter"]),
          wavegan.Discriminator(s["width"], s["layers"], s["phase_shuffle"], s["dtype"],
                                s["conv_impl"]))


# name -> (G, D) builder and the model keys it reads (defaults: the reference networks).
MODELS = {
    # Radford et al.'s DCGAN as the PyTorch example (BN momentum 0.1 in PyTorch terms).
    "dcgan": registry.Entry(
        lambda s: (dcgan.Generator(s["width"], s["image_size"], s["channels"], s["conv_impl"],
                                   s["dtype"], s["bn_momentum"]),
                   dcgan.Discriminator(s["width"], s["conv_impl"], s["dtype"], s["bn_momentum"],
                                       s["spectral_norm"])),
        {"width": 64, "conv_impl": "subpixel", "bn_momentum": 0.9, "spectral_norm": False}),
    # SNGAN's ResNets (Miyato et al. 2018, as Mimicry) at 32/64/128 px; num_classes > 0: conditional
    # BN in G and a projection D; attention_res > 0: a SAGAN self-attention block in both.
    "sngan_resnet": registry.Entry(
        lambda s: (sngan.ResNetGenerator(s["width"], s["image_size"], s["channels"],
                                         s["num_classes"], s["attention_res"],
                                         s["spectral_norm_g"], s["bn_momentum"], s["dtype"],
                                         s["shared_embedding"]),
                   sngan.ResNetDiscriminator(s["d_width"], s["num_classes"], s["attention_res"],
                                             s["spectral_norm"], s["dtype"])),
        {"width": None, "d_width": None, "num_classes": 0, "attention_res": 0,
         "spectral_norm": True, "spectral_norm_g": False, "bn_momentum": 0.9,
         "shared_embedding": 0}),
    "mlp": registry.Entry(_mlp, {"g_hidden": (256, 512, 1024), "d_hidden": (512, 256),
                                 "activation": "leaky_relu:0.2", "output": "tanh"}),
    "conv": registry.Entry(
        lambda s: (mlp_gan.ConvGenerator(s["width"], s["image_size"], s["channels"],
                                         s["bn_momentum"], s["dtype"]),
                   mlp_gan.ConvDiscriminator(s["width"], s["bn_momentum"], s["dtype"])),
        {"width": 64, "bn_momentum": 0.9}),
    # The seeds' Keras conv GAN (Keras BN momentum 0.8 = flax 0.8 = PyTorch 0.2).
    "keras_conv": registry.Entry(
        lambda s: (mlp_gan.KerasConvGenerator(s["width"], s["kernel_size"], s["out_kernel"],
                                              s["activation"], s["bn_momentum"], s["image_size"],
                                              s["channels"], s["dtype"], s["conv_impl"]),
                   mlp_gan.KerasConvDiscriminator(s["width"], s["kernel_size"], s["activation"],
                                                  s["dtype"], s["conv_impl"])),
        {"width": 128, "kernel_size": 5, "out_kernel": 7, "activation": "leaky_relu:0.01",
         "bn_momentum": 0.8, "conv_impl": "subpixel"}),
    # WaveGAN (Donahue et al. 2019): 1-D transposed convs to 16 * 4**layers samples, phase
    # shuffle in D, no batch norm (for WGAN-GP); the paper's d = 64, 5 layers, n = 2.
    "wavegan": registry.Entry(_wavegan, {"width": 64, "layers": 5, "phase_shuffle": 2,
                                         "conv_impl": "subpixel", "post_filter": 0}),
}


@flax.struct.dataclass
class GANState:
  """Everything a GAN run needs to continue exactly: both networks, BN stats, optimisers, and
  the EMA copy of G's params (``{}`` when ``ema.decay`` is 0)."""
  step: jax.Array  # int32 scalar: G steps taken
  rng: jax.Array  # uint32[2] base key; per-step keys are fold_in(rng, step)
  g_params: Any
  g_batch_stats: Any
  g_opt_state: Any
  d_params: Any
  d_batch_stats: Any
  d_opt_state: Any
  # Not a *params field on purpose: fine-tuning (init_from) does not copy it; the first step
  # re-starts it as a copy of the (fine-tuned) weights.
  g_ema: Any = flax.struct.field(default_factory=dict)


def model_settings(config) -> tuple[registry.Entry, dict]:
  """(entry, settings) of ``config.model`` in ``MODELS`` (see ``registry.settings``)."""
  return registry.settings("GAN", MODELS, config.model, SHARED_KEYS)


def make_models(config) -> tuple[nn.Module, nn.Module]:
  """(generator, discriminator) modules for ``config.model``, looked up in ``MODELS``; a model
  key that is set but not read by the chosen model is a ConfigError."""
  entry, settings = model_settings(config)
  return entry.build(settings)


OPTIMIZER_KEYS = ("learning_rate", "b1", "b2")


def optimizer_settings(opt, which: str) -> dict:
  """{learning_rate, b1, b2} of network ``which`` ('g' or 'd'): the ``optimizer.<which>`` block
  (TTUR) where it sets a key, else the shared ``optimizer`` block."""
  sub = opt.get(which, None) or {}
  unknown = sorted(set(sub.keys()) - set(OPTIMIZER_KEYS))
  if unknown:
    raise ConfigError(f"optimizer.{which} has unknown keys {unknown}; it takes {list(OPTIMIZER_KEYS)}")
  return {k: sub[k] if sub.get(k) is not None else opt[k] for k in OPTIMIZER_KEYS}


def make_optimizer(opt, which: str = "", decay_steps: int = 0) -> optax.GradientTransformation:
  """Adam for G (``which='g'``) or D (``'d'``) per ``optimizer_settings``; '' = the shared block
  (``train.optimizers.build``). ``optimizer.schedule='linear'`` decays the learning rate linearly
  to 0 over ``decay_steps`` updates of that network (SNGAN/Mimicry); 'constant' (default) keeps
  it."""
  block = dict(opt.items())
  if which:
    block.update(optimizer_settings(opt, which))
  return optimizers.build(block, decay_steps, "constant", names=("adam",), family="GAN")


def _apply(module, params, stats, x, y=None, train=True, rngs=None):
  """Runs a module (batch-statistics BN when ``train``); returns (output, new batch stats).
  ``y`` (int32 [B] labels) is passed as ``y=`` only when given (conditional models); ``rngs``
  (e.g. {'phase_shuffle': key}) only in training."""
  kw = {} if y is None else {"y": y}
  if not train:
    return module.apply({"params": params, "batch_stats": stats}, x, train=False, **kw), stats
  # Training: weights gathered where used, gradients reduce-scattered (FSDP; see sharding).
  variables = {"params": sharding.gathered(params), "batch_stats": stats}
  out, updates = module.apply(variables, x, train=True, mutable=["batch_stats"], rngs=rngs, **kw)
  return out, updates.get("batch_stats", stats)


def fixed_labels(num_samples: int, num_classes: int) -> jax.Array:
  """int32 [num_samples]: the fixed sample grid's labels, so grid row r holds class r mod
  num_classes (the grid writer lays samples out row-major, ``samples.grid_cols`` per row)."""
  cols = samples.grid_cols(num_samples)
  return ((jnp.arange(num_samples) // cols) % num_classes).astype(jnp.int32)


def _settings(config):
  """The training switches, checked: (n_dis, num_classes, ema decay, ema start, policy)."""
  n_dis = int(config.get("n_dis", 1))
  if n_dis < 1:
    raise ConfigError(f"n_dis={n_dis}; set n_dis to 1 or more D steps per G step", keys=("n_dis",))
  if config.batch_size % n_dis:
    raise ConfigError(f"batch_size={config.batch_size} is not divisible by n_dis={n_dis}; the "
                      f"batch holds n_dis D batches: set batch_size to a multiple of it",
                      keys=("batch_size",))
  num_classes = int(config.model.get("num_classes", None) or 0)
  if num_classes and not config.data.get("labels", False):
    raise ConfigError(f"model.num_classes={num_classes} needs labelled batches; set "
                      f"data.labels=True", keys=("data.labels",))
  ema = config.get("ema", None) or {}
  decay, start = float(ema.get("decay", 0.0)), int(ema.get("start_step", 0))
  if not 0.0 <= decay < 1.0:
    raise ConfigError(f"ema.decay={decay}; set ema.decay in [0, 1) (0 = no EMA)",
                      keys=("ema.decay",))
  policy = (config.get("augment", None) or {}).get("policy", "")
  augment.parse_policy(policy)  # ConfigError on an unknown op, at task build time
  obj = config.objective
  if obj.get("r1_weight", 0.0) and int(obj.get("r1_every", 16)) < 1:
    raise ConfigError("objective.r1_every must be >= 1 (1 = R1 at every D step)")
  if policy and config.data.get("kind", "image") == "audio":
    raise ConfigError(f"augment.policy={policy!r}: DiffAugment works on images, not audio; set "
                      f"augment.policy=''", keys=("augment.policy",))
  return n_dis, num_classes, decay, start, policy


def _sample_kind(config):
  """(wrap, unit): ``wrap`` turns G's output into the samples kind of ``config.data.kind``
  (float32 [N, T, C] -> ``samples.Audio`` at ``data.sample_rate`` Hz for 'audio'; [N, H, W, C]
  -> ``samples.Images`` otherwise) and ``unit`` is what the progress line counts."""
  if config.data.get("kind", "image") != "audio":
    return samples.Images, "images"
  rate = config.data.get("sample_rate", None)
  if not rate:
    raise ConfigError("data.kind='audio' needs the clips' rate: set data.sample_rate "
                      "(Hz; 16000 for sc09 and bach_chorales_audio)", keys=("data.sample_rate",))
  return (lambda x: samples.Audio(x, int(rate))), "clips"


def _check_shapes(config, gen, num_classes: int) -> tuple:
  """G's sample shape (e.g. (H, W, C) or (T, C)), checked against the data's; D is built on it."""
  y = {"y": jnp.zeros((2,), jnp.int32)} if num_classes else {}
  z = jnp.zeros((2, config.model.z_dim))
  made = jax.eval_shape(lambda k: gen.init_with_output(k, z, train=False, **y)[0],
                        jax.random.PRNGKey(0)).shape[1:]
  from genai_jax.data import specs
  want = specs.batch_spec(config.data, 2)[data.batch_key(config.data)].shape[1:]
  if tuple(made) != tuple(want):
    raise ConfigError(f"model {config.model.name!r} makes samples of shape {tuple(made)} but the "
                      f"data ({config.data.get('kind', 'image')}) holds {tuple(want)}; make them "
                      f"agree (images: model/data image_size and channels; audio: data.length = "
                      f"16 * 4**model.layers)")
  return tuple(made)


@dataclasses.dataclass(frozen=True, eq=False)
class GAN:
  """One GAN recipe resolved from a config: the networks, their optimisers and the training
  switches, everything the step functions below read (``build``)."""
  gen: nn.Module
  disc: nn.Module
  loss: Any  # objectives.gan loss: d_loss(real_logits, fake_logits), g_loss(fake_logits)
  g_tx: optax.GradientTransformation
  d_tx: optax.GradientTransformation  # steps n_dis times per G step
  n_dis: int
  num_classes: int  # 0: unconditional
  ema_decay: float  # 0: no EMA copy of G
  ema_start: int
  policy: str  # DiffAugment policy in D's forward ('' = none)
  gp_weight: float  # WGAN-GP weight (0 unless objective.loss is wgan_gp)
  r1_weight: float
  r1_every: int
  z_dim: int
  key: str  # where the pipeline's batches hold the real samples
  wrap: Any  # G's output -> the samples kind (Images or Audio)
  unit: str
  sample_shape: tuple  # G's (and D's input) sample shape without the batch


def build(config) -> GAN:
  """The checked recipe of ``config``: models (D initialised on G's sample shape, which must be
  the data's), loss, the two optimisers and the switches."""
  n_dis, num_classes, ema_decay, ema_start, policy = _settings(config)
  gen, disc = make_models(config)
  loss_name = config.objective.loss
  wrap, unit = _sample_kind(config)
  return GAN(
      gen=gen, disc=disc, loss=gan_losses.get(loss_name),
      g_tx=make_optimizer(config.optimizer, "g", config.num_steps),
      d_tx=make_optimizer(config.optimizer, "d", config.num_steps * n_dis),  # D updates n_dis times
      n_dis=n_dis, num_classes=num_classes, ema_decay=ema_decay, ema_start=ema_start,
      policy=policy,
      gp_weight=float(config.objective.get("gp_weight", 10.0)) if loss_name == "wgan_gp" else 0.0,
      r1_weight=float(config.objective.get("r1_weight", 0.0)),
      r1_every=int(config.objective.get("r1_every", 16)),
      z_dim=config.model.z_dim, key=data.batch_key(config.data), wrap=wrap, unit=unit,
      sample_shape=_check_shapes(config, gen, num_classes))


def init(gan: GAN, rng) -> GANState:
  """A fresh state: G and D initialised from ``rng`` (uint32[2]), their optimisers, the EMA."""
  g_key, d_key, state_key = jax.random.split(rng, 3)
  y = jnp.zeros((2,), jnp.int32) if gan.num_classes else None
  kw = {} if y is None else {"y": y}
  g_vars = gan.gen.init(g_key, jnp.zeros((2, gan.z_dim)), train=False, **kw)
  d_vars = gan.disc.init(d_key, jnp.zeros((2,) + gan.sample_shape), train=False, **kw)
  g_params, d_params = g_vars["params"], d_vars["params"]
  return GANState(step=jnp.zeros((), jnp.int32), rng=state_key,
                  g_params=g_params, g_batch_stats=g_vars.get("batch_stats", {}),
                  g_opt_state=gan.g_tx.init(g_params),
                  d_params=d_params, d_batch_stats=d_vars.get("batch_stats", {}),
                  d_opt_state=gan.d_tx.init(d_params),
                  g_ema=jax.tree.map(jnp.copy, g_params) if gan.ema_decay else {})


def fake_labels(gan: GAN, k, n: int):
  """int32 [n] labels drawn uniformly over the classes from ``k``; None if unconditional."""
  if not gan.num_classes:
    return None
  return jax.random.randint(k, (n,), 0, gan.num_classes, jnp.int32)


def d_forward(gan: GAN, d_params, stats, images, y, aug_key):
  """D's training-mode logits on DiffAugmented ``images`` (identity without a policy), new BN
  stats; D's own randomness (WaveGAN's phase shuffle) comes from ``aug_key`` too."""
  if gan.policy:
    images = augment.apply(aug_key, images, gan.policy)
  rngs = {"phase_shuffle": jax.random.fold_in(aug_key, 7)}
  return _apply(gan.disc, d_params, stats, images, y, rngs=rngs)


# --- the discriminator step -------------------------------------------------------------------

def d_update(gan: GAN, d, real, y_real, fake, y_fake, k, d_index):
  """One D step: d = (d_params, d_opt_state, d_stats) -> (updated d, metrics). ``fake`` is
  detached; ``k`` keys the step's randomness; ``d_index`` (int32) counts D steps (lazy R1)."""
  d_params, d_opt_state, d_stats = d

  def d_loss_fn(d_params):
    real_logits, stats = d_forward(gan, d_params, d_stats, real, y_real, jax.random.fold_in(k, 1))
    fake_logits, stats = d_forward(gan, d_params, stats, fake, y_fake, jax.random.fold_in(k, 2))
    total = gan.loss.d_loss(real_logits, fake_logits)
    aux = {"real_logits": real_logits, "fake_logits": fake_logits}
    # The penalties' own forwards use the updated stats but do not update them again; a
    # conditional critic scores the interpolates with the real images' labels (StudioGAN).
    critic = lambda x: d_forward(gan, d_params, stats, x, y_real,  # noqa: E731
                                 jax.random.fold_in(k, 3))[0].reshape(-1)
    if gan.gp_weight:
      aux["gp"] = gan_losses.gradient_penalty(critic, real, fake, jax.random.fold_in(k, 4),
                                              gan.gp_weight)
      total = total + aux["gp"]
    if gan.r1_weight:
      # Lazy regularisation (StyleGAN2): every r1_every-th D step, scaled by r1_every.
      aux["r1"] = jax.lax.cond(
          d_index % gan.r1_every == 0,
          lambda: gan_losses.r1_penalty(critic, real, gan.r1_weight * gan.r1_every),
          lambda: jnp.zeros((), jnp.float32))
      total = total + aux["r1"]
    return total, (stats, aux)
  (d_loss, (d_stats, aux)), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d_params)
  updates, d_opt_state = gan.d_tx.update(grads, d_opt_state, d_params)
  d_params = optax.apply_updates(d_params, updates)
  return (d_params, d_opt_state, d_stats), dict(aux, d_loss=d_loss)


def early_d_steps(gan: GAN, state: GANState, real_all, y_all, step_key):
  """D steps 0..n_dis-2, each on its own real chunk and freshly generated fakes:
  -> ((d_params, d_opt_state, d_stats), G's batch stats)."""
  b = real_all.shape[0] // gan.n_dis
  d = (state.d_params, state.d_opt_state, state.d_batch_stats)
  g_stats = state.g_batch_stats
  # A Python loop, not lax.scan: XLA's CPU backend runs convolutions inside a while loop many
  # times slower (a WaveGAN demo step with n_dis 2: 3.3 s as a scan, 0.2 s unrolled); n_dis is
  # small, so the unrolled program compiles in about the same time.
  for i in range(gan.n_dis - 1):
    k = jax.random.fold_in(step_key, i + 1)
    y_fake = fake_labels(gan, jax.random.fold_in(k, 5), b)
    z = jax.random.normal(jax.random.fold_in(k, 0), (b, gan.z_dim))
    fake, g_stats = _apply(gan.gen, state.g_params, g_stats, z, y_fake)
    real = jax.lax.dynamic_index_in_dim(
        real_all.reshape((b, gan.n_dis) + real_all.shape[1:]), i, 1, keepdims=False)
    y_real = (None if y_all is None else
              jax.lax.dynamic_index_in_dim(y_all.reshape(b, gan.n_dis), i, 1, keepdims=False))
    d, _ = d_update(gan, d, real, y_real, jax.lax.stop_gradient(fake), y_fake, k,
                    state.step * gan.n_dis + i)
  return d, g_stats


# --- the generator step -----------------------------------------------------------------------

def g_update(gan: GAN, state: GANState, fake, g_vjp, y_fake, d_params, d_stats, k):
  """One G step through the freshly updated D: ``fake`` = G(z) and ``g_vjp`` its pullback to
  G's params. -> (g_params, g_opt_state, D's new BN stats, g_loss, D's logits on ``fake``)."""
  def g_loss_fn(image):
    logits, stats = d_forward(gan, d_params, d_stats, image, y_fake, jax.random.fold_in(k, 6))
    return gan.loss.g_loss(logits), (stats, logits)
  (g_loss, (d_stats, fake_logits)), d_image = jax.value_and_grad(g_loss_fn, has_aux=True)(fake)
  (g_grads,) = g_vjp(d_image)
  g_updates, g_opt_state = gan.g_tx.update(g_grads, state.g_opt_state, state.g_params)
  g_params = optax.apply_updates(state.g_params, g_updates)
  return g_params, g_opt_state, d_stats, g_loss, fake_logits


def ema_update(gan: GAN, state: GANState, g_params):
  """G's EMA after a step: a copy of the weights until ema_start (and at the first step, so a
  fine-tuned run's EMA starts from its loaded weights), then decay * ema + (1 - decay) * params."""
  if not gan.ema_decay:
    return state.g_ema
  rate = jnp.where(state.step < max(gan.ema_start, 1), 0.0, gan.ema_decay)
  return jax.tree.map(lambda e, p: rate * e + (1 - rate) * p, state.g_ema, g_params)


def train_step(gan: GAN, state: GANState, batch):
  """n_dis D steps then one G step (the module docstring): (state, batch) -> (state, metrics)."""
  real_all = batch[gan.key]
  y_all = batch["label"] if gan.num_classes else None
  step_key = jax.random.fold_in(state.rng, state.step)
  n_dis = gan.n_dis
  b = real_all.shape[0] // n_dis
  # Strided chunks (rows i, i + n_dis, ...): each device keeps its own rows, no reshuffle.
  chunk = lambda x, i: x.reshape((b, n_dis) + x.shape[1:])[:, i]  # noqa: E731
  if n_dis > 1:
    d, g_stats = early_d_steps(gan, state, real_all, y_all, step_key)
  else:
    d, g_stats = (state.d_params, state.d_opt_state, state.d_batch_stats), state.g_batch_stats

  # The last D step and the G step share one generator forward (as the PyTorch example).
  last = n_dis - 1
  k = jax.random.fold_in(step_key, last + 1)
  real = chunk(real_all, last)
  y_real = None if y_all is None else chunk(y_all, last)
  y_fake = fake_labels(gan, jax.random.fold_in(k, 5), b)
  z = jax.random.normal(step_key, (b, gan.z_dim))
  fake, g_vjp, g_stats = jax.vjp(lambda g_params: _apply(gan.gen, g_params, g_stats, z, y_fake),
                                 state.g_params, has_aux=True)
  d, d_aux = d_update(gan, d, real, y_real, jax.lax.stop_gradient(fake), y_fake, k,
                      state.step * n_dis + last)
  d_params, d_opt_state, d_stats = d
  g_params, g_opt_state, d_stats, g_loss, fake_logits_after = g_update(
      gan, state, fake, g_vjp, y_fake, d_params, d_stats, k)

  metrics = {
      "d_loss": d_aux["d_loss"], "g_loss": g_loss,
      "d_real": jax.nn.sigmoid(d_aux["real_logits"]).mean(),  # D(x)
      "d_fake": jax.nn.sigmoid(d_aux["fake_logits"]).mean(),  # D(G(z)) before the D update
      "d_fake_after": jax.nn.sigmoid(fake_logits_after).mean(),  # after it
  }
  metrics.update({k: d_aux[k] for k in ("gp", "r1") if k in d_aux})  # r1: 0 on skipped steps
  new_state = state.replace(step=state.step + 1, g_params=g_params, g_batch_stats=g_stats,
                            g_opt_state=g_opt_state, d_params=d_params, d_batch_stats=d_stats,
                            d_opt_state=d_opt_state, g_ema=ema_update(gan, state, g_params))
  return new_state, metrics


def eval_step(gan: GAN, state: GANState, batch):
  """Held-out D: loss and accuracy on real eval images vs. fresh fakes (BN in batch mode)."""
  real = batch[gan.key]
  y_real = batch["label"] if gan.num_classes else None
  eval_key = jax.random.fold_in(jax.random.split(state.rng)[1], state.step)  # disjoint from training keys
  z = jax.random.normal(eval_key, (real.shape[0], gan.z_dim))
  y_fake = fake_labels(gan, jax.random.fold_in(eval_key, 1), real.shape[0])
  fake, _ = _apply(gan.gen, state.g_params, state.g_batch_stats, z, y_fake)
  real_logits, _ = _apply(gan.disc, state.d_params, state.d_batch_stats, real, y_real)
  fake_logits, _ = _apply(gan.disc, state.d_params, state.d_batch_stats, fake, y_fake)
  return {"d_loss": gan.loss.d_loss(real_logits, fake_logits),
          "d_acc_real": (real_logits > 0).mean(), "d_acc_fake": (fake_logits < 0).mean()}


# --- sampling ---------------------------------------------------------------------------------

def sampling_params(gan: GAN, state: GANState):
  """G's params for samples and evaluation: the EMA copy when enabled."""
  return state.g_ema if gan.ema_decay else state.g_params


def sample(gan: GAN, fixed_z, fixed_y, state: GANState, batch):
  """The fixed-noise grid (EMA weights when enabled); conditional: grid row r is class r."""
  del batch  # a GAN's grid comes from fixed noise only
  # Batch-statistics BN on the fixed noise, as the PyTorch example's fixed-noise grid.
  images, _ = _apply(gan.gen, sampling_params(gan, state), state.g_batch_stats, fixed_z, fixed_y)
  return {"samples": gan.wrap(images)}


def generate(gan: GAN, state: GANState, rng, n: int):
  """n samples (images, or audio clips for audio data) from N(0, I) noise (EMA weights when
  enabled), BN in batch mode as the grid; conditional models draw each label uniformly over
  the classes."""
  z = jax.random.normal(rng, (n, gan.z_dim))
  y = fake_labels(gan, jax.random.fold_in(rng, 1), n)
  images, _ = _apply(gan.gen, sampling_params(gan, state), state.g_batch_stats, z, y)
  return gan.wrap(images.astype(jnp.float32))


def generate_labelled(gan: GAN, state: GANState, rng, labels):
  """n samples (images, or audio clips), sample i of class ``labels[i]`` (int32 [n]), from
  N(0, I) noise (EMA weights when enabled), for a class-conditional G. G's BatchNorm runs in
  batch mode as for the grid, and normalises over the whole batch: a batch of one class would
  lose what conditional BN adds for that class (training batches mix the classes). So G runs on
  a class-balanced batch, n rows of each class (num_classes x n forwards), and sample i is the
  row of its class at its rank among the asked samples of that class."""
  labels = labels.astype(jnp.int32)
  n, c = labels.shape[0], gan.num_classes
  onehot = jax.nn.one_hot(labels, c, dtype=jnp.int32)
  rank = (jnp.cumsum(onehot, axis=0) * onehot).sum(-1) - 1  # earlier asks of the same class
  rows = labels * n + rank
  z = jax.random.normal(rng, (c * n, gan.z_dim))
  balanced = jnp.repeat(jnp.arange(c, dtype=jnp.int32), n)  # row j holds class j // n
  images, _ = _apply(gan.gen, sampling_params(gan, state), state.g_batch_stats, z, balanced)
  return gan.wrap(images[rows].astype(jnp.float32))


def discriminate(gan: GAN, state: GANState, images):
  """D's logits float32 [B] on real-shaped samples (images [B, H, W, C] or clips [B, T, C]),
  BN in batch mode and no phase shuffle, as ``eval_step``."""
  logits = _apply(gan.disc, state.d_params, state.d_batch_stats, images)[0]
  return logits.reshape(-1).astype(jnp.float32)


def make_task(config) -> Task:
  """The GAN task of ``config``: ``build``'s recipe bound into the step functions above."""
  gan = build(config)
  fixed_z = jax.random.normal(jax.random.PRNGKey(config.seed + 1), (config.num_samples, gan.z_dim))
  fixed_y = fixed_labels(config.num_samples, gan.num_classes) if gan.num_classes else None
  bind = lambda f, *args: functools.partial(f, gan, *args)  # noqa: E731
  return Task(init=bind(init), train_step=bind(train_step), eval_step=bind(eval_step),
              sample=bind(sample, fixed_z, fixed_y), finite_metrics=("d_loss", "g_loss"),
              unit=gan.unit, generate=bind(generate),
              # A conditional D needs labels, which the held-out accuracy (dacc) does not pass.
              discriminate=None if gan.num_classes else bind(discriminate),
              num_classes=gan.num_classes,
              generate_labelled=bind(generate_labelled) if gan.num_classes else None)


def labelled_samples(config, state: GANState, rng: jax.Array, labels: jax.Array) -> jax.Array:
  """float32 [N, S, S, C] in [-1, 1]: G(z ~ N(0, I), labels int32 [N]) of a class-conditional
  ``config`` (``model.num_classes`` > 0), with the weights ``sample`` and ``generate`` use (the
  EMA copy when enabled) and batch-statistics BN. For per-class checks (e.g. the accuracy of
  each class's samples under a classifier). Mix the classes within ``labels`` as training
  batches do: batch-statistics BN subtracts anything common to the whole batch, so a batch of
  one class loses most of what conditional BN adds for that class."""
  if not int(config.model.get("num_classes", None) or 0):
    raise ConfigError("labelled samples need a class-conditional model; this run has "
                      "model.num_classes=0")
  gen, _ = make_models(config)
  params = state.g_ema if float((config.get("ema", None) or {}).get("decay", 0.0)) else state.g_params
  z = jax.random.normal(rng, (labels.shape[0], config.model.z_dim))
  images, _ = _apply(gen, params, state.g_batch_stats, z, labels.astype(jnp.int32))
  return images.astype(jnp.float32)
