"""GAN family: DCGAN and the small MNIST GANs, trained as in the PyTorch DCGAN example.

One step: sample z, generate fakes once, update D on a real batch and on the (detached) fakes,
then update G through the freshly updated D. D sees real and fake batches in separate forward
passes, so its BatchNorm statistics are per-kind, as in the reference.
"""

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from genai_jax import data, samples
from genai_jax.models import dcgan, mlp_gan, registry, sngan
from genai_jax.objectives import gan as gan_losses
from genai_jax.tasks.base import Task
from genai_jax.errors import ConfigError

SHARED_KEYS = ("image_size", "channels", "z_dim", "dtype")  # read by every GAN model


def _mlp(s):
  mlp_gan._check_output(s["output"])
  return (mlp_gan.MLPGenerator(s["g_hidden"], s["image_size"], s["channels"], s["activation"],
                               s["output"], s["dtype"]),
          mlp_gan.MLPDiscriminator(s["d_hidden"], s["activation"], s["output"], s["dtype"]))


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
                                         s["spectral_norm_g"], s["bn_momentum"], s["dtype"]),
                   sngan.ResNetDiscriminator(s["d_width"], s["num_classes"], s["attention_res"],
                                             s["spectral_norm"], s["dtype"])),
        {"width": None, "d_width": None, "num_classes": 0, "attention_res": 0,
         "spectral_norm": True, "spectral_norm_g": False, "bn_momentum": 0.9}),
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
                                              s["channels"], s["dtype"]),
                   mlp_gan.KerasConvDiscriminator(s["width"], s["kernel_size"], s["activation"],
                                                  s["dtype"])),
        {"width": 128, "kernel_size": 5, "out_kernel": 7, "activation": "leaky_relu:0.01",
         "bn_momentum": 0.8}),
}


@flax.struct.dataclass
class GANState:
  """Everything a GAN run needs to continue exactly: both networks, BN stats, optimisers."""
  step: jax.Array  # int32 scalar
  rng: jax.Array  # uint32[2] base key; per-step keys are fold_in(rng, step)
  g_params: Any
  g_batch_stats: Any
  g_opt_state: Any
  d_params: Any
  d_batch_stats: Any
  d_opt_state: Any


def make_models(config) -> tuple[nn.Module, nn.Module]:
  """(generator, discriminator) modules for ``config.model``, looked up in ``MODELS``; a model
  key that is set but not read by the chosen model is a ConfigError."""
  return registry.build("GAN", MODELS, config.model, SHARED_KEYS)


def make_optimizer(opt) -> optax.GradientTransformation:
  if opt.name != "adam":
    raise ConfigError(f"unknown GAN optimizer {opt.name!r}; set --config.optimizer.name to 'adam'")
  return optax.adam(opt.learning_rate, b1=opt.b1, b2=opt.b2)


def _apply(module, params, stats, x, train=True):
  """Runs a module in train mode; returns (output, new batch stats)."""
  variables = {"params": params, "batch_stats": stats}
  if not train:
    return module.apply(variables, x, train=False), stats
  out, updates = module.apply(variables, x, train=True, mutable=["batch_stats"])
  return out, updates.get("batch_stats", stats)


def make_task(config) -> Task:
  gen, disc = make_models(config)
  loss = gan_losses.get(config.objective.loss)
  g_tx, d_tx = make_optimizer(config.optimizer), make_optimizer(config.optimizer)
  m = config.model
  z_dim, size, channels = m.z_dim, m.image_size, m.channels
  key = data.batch_key(config.data)  # where the pipeline's batches hold the real samples

  def init(rng):
    g_key, d_key, state_key = jax.random.split(rng, 3)
    g_vars = gen.init(g_key, jnp.zeros((2, z_dim)), train=False)
    d_vars = disc.init(d_key, jnp.zeros((2, size, size, channels)), train=False)
    g_params, d_params = g_vars["params"], d_vars["params"]
    return GANState(step=jnp.zeros((), jnp.int32), rng=state_key,
                    g_params=g_params, g_batch_stats=g_vars.get("batch_stats", {}),
                    g_opt_state=g_tx.init(g_params),
                    d_params=d_params, d_batch_stats=d_vars.get("batch_stats", {}),
                    d_opt_state=d_tx.init(d_params))

  def train_step(state: GANState, batch):
    real = batch[key]
    z = jax.random.normal(jax.random.fold_in(state.rng, state.step), (real.shape[0], z_dim))

    # Generator forward once; keep its VJP for the G update (as PyTorch reuses `fake`).
    def generate(g_params):
      return _apply(gen, g_params, state.g_batch_stats, z)
    fake, g_vjp, g_stats = jax.vjp(generate, state.g_params, has_aux=True)

    def d_loss_fn(d_params):
      real_logits, stats = _apply(disc, d_params, state.d_batch_stats, real)
      fake_logits, stats = _apply(disc, d_params, stats, jax.lax.stop_gradient(fake))
      return loss.d_loss(real_logits, fake_logits), (stats, real_logits, fake_logits)
    (d_loss, (d_stats, real_logits, fake_logits)), d_grads = jax.value_and_grad(
        d_loss_fn, has_aux=True)(state.d_params)
    d_updates, d_opt_state = d_tx.update(d_grads, state.d_opt_state, state.d_params)
    d_params = optax.apply_updates(state.d_params, d_updates)

    def g_loss_fn(image):
      logits, stats = _apply(disc, d_params, d_stats, image)
      return loss.g_loss(logits), (stats, logits)
    (g_loss, (d_stats, fake_logits_after)), d_image = jax.value_and_grad(
        g_loss_fn, has_aux=True)(fake)
    (g_grads,) = g_vjp(d_image)
    g_updates, g_opt_state = g_tx.update(g_grads, state.g_opt_state, state.g_params)
    g_params = optax.apply_updates(state.g_params, g_updates)

    metrics = {
        "d_loss": d_loss, "g_loss": g_loss,
        "d_real": jax.nn.sigmoid(real_logits).mean(),  # D(x)
        "d_fake": jax.nn.sigmoid(fake_logits).mean(),  # D(G(z)) before the D update
        "d_fake_after": jax.nn.sigmoid(fake_logits_after).mean(),  # after it
    }
    new_state = state.replace(step=state.step + 1, g_params=g_params, g_batch_stats=g_stats,
                              g_opt_state=g_opt_state, d_params=d_params, d_batch_stats=d_stats,
                              d_opt_state=d_opt_state)
    return new_state, metrics

  def eval_step(state: GANState, batch):
    """Held-out D: loss and accuracy on real eval images vs. fresh fakes (BN in batch mode)."""
    real = batch[key]
    eval_key = jax.random.fold_in(jax.random.split(state.rng)[1], state.step)  # disjoint from training keys
    z = jax.random.normal(eval_key, (real.shape[0], z_dim))
    fake, _ = _apply(gen, state.g_params, state.g_batch_stats, z)
    real_logits, _ = _apply(disc, state.d_params, state.d_batch_stats, real)
    fake_logits, _ = _apply(disc, state.d_params, state.d_batch_stats, fake)
    return {"d_loss": loss.d_loss(real_logits, fake_logits),
            "d_acc_real": (real_logits > 0).mean(), "d_acc_fake": (fake_logits < 0).mean()}

  fixed_z = jax.random.normal(jax.random.PRNGKey(config.seed + 1), (config.num_samples, z_dim))

  def sample(state: GANState, batch):
    del batch  # a GAN's grid comes from fixed noise only
    # Batch-statistics BN on the fixed noise, as the PyTorch example's fixed-noise grid.
    images, _ = _apply(gen, state.g_params, state.g_batch_stats, fixed_z)
    return {"samples": samples.Images(images)}

  def generate(state: GANState, rng, n: int):
    """n images from N(0, I) noise, BN in batch mode as the fixed-noise grid."""
    images, _ = _apply(gen, state.g_params, state.g_batch_stats, jax.random.normal(rng, (n, z_dim)))
    return samples.Images(images.astype(jnp.float32))

  def discriminate(state: GANState, images):
    """D's logits float32 [B], BN in batch mode as ``eval_step``."""
    return _apply(disc, state.d_params, state.d_batch_stats, images)[0].reshape(-1).astype(jnp.float32)

  return Task(init=init, train_step=train_step, eval_step=eval_step, sample=sample,
              finite_metrics=("d_loss", "g_loss"), unit="images", generate=generate,
              discriminate=discriminate)
