"""The shared optimiser builder (genai_jax/train/optimizers.py) gives every family's presets the
very updates of the optimiser each family built by hand before it: the references below are
those hand-built optimisers, copied as they were."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.configs import cyclegan as cyclegan_config
from experiments.configs import dcgan_celeba, diffusion as diffusion_config, gpt_shakespeare
from experiments.configs import seed_gans, vae_mnist, wavegan as wavegan_config
from genai_jax.errors import ConfigError, render
from genai_jax.tasks import cyclegan, diffusion, gan, lm, vae
from genai_jax.train import optimizers

NUM_STEPS = 6  # short, so every schedule moves within the updates compared
UPDATES = 8  # past NUM_STEPS: the end of each schedule counts too

# --- the optimisers as each family built them before the shared builder ---------------------

def _gan_reference(opt, which, decay_steps):
  s = gan.optimizer_settings(opt, which) if which else {k: opt[k] for k in gan.OPTIMIZER_KEYS}
  lr = s["learning_rate"]
  if opt.get("schedule", "constant") == "linear":
    lr = optax.linear_schedule(lr, 0.0, max(int(decay_steps), 1))
  return optax.adam(lr, b1=s["b1"], b2=s["b2"])


def _lm_reference(opt, num_steps):
  schedule = optax.warmup_cosine_decay_schedule(
      0.0, opt.learning_rate, opt.warmup_steps,
      max(opt.decay_steps or num_steps, opt.warmup_steps + 1), opt.min_learning_rate)
  decay_mask = lambda params: jax.tree.map(lambda x: x.ndim >= 2, params)  # noqa: E731
  return optax.chain(optax.clip_by_global_norm(opt.grad_clip),
                     optax.adamw(schedule, b1=opt.b1, b2=opt.b2, weight_decay=opt.weight_decay,
                                 mask=decay_mask))


def _vae_reference(opt, num_steps):
  lr = opt.learning_rate
  if opt.get("schedule", "constant") == "warmup_cosine":
    lr = optax.warmup_cosine_decay_schedule(0.0, lr, opt.warmup_steps,
                                            max(num_steps, opt.warmup_steps + 1), opt.min_learning_rate)
  return optax.adam(lr, b1=opt.b1, b2=opt.b2)


def _cyclegan_reference(opt, num_steps):
  fraction = float(opt.get("decay_fraction", 0.5))
  decay_steps = int(round(num_steps * fraction))
  lr = float(opt.learning_rate)
  if decay_steps:
    lr = optax.join_schedules([optax.constant_schedule(lr), optax.linear_schedule(lr, 0.0, decay_steps)],
                              [num_steps - decay_steps])
  return optax.adam(lr, b1=opt.b1, b2=opt.b2)


def _diffusion_reference(opt):
  adam = optax.adam(optax.linear_schedule(0.0, opt.learning_rate, max(int(opt.warmup), 1)),
                    b1=opt.b1, b2=opt.b2)
  if opt.grad_clip is None:  # the paper presets (EDM, DiT) do not clip: added with the builder
    return adam
  return optax.chain(optax.clip_by_global_norm(float(opt.grad_clip)), adam)


def _updates(tx):
  """The updates of ``UPDATES`` steps on fixed gradients (large enough to be clipped)."""
  params = {"w": jnp.linspace(-1.0, 1.0, 12).reshape(3, 4), "b": jnp.linspace(0.0, 0.5, 4)}
  state = tx.init(params)
  out = []
  for i in range(UPDATES):
    grads = jax.tree.map(lambda p: 3.0 * jnp.cos(p * (i + 1)), params)
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
    out.append(updates)
  return out


def _same(a, b):
  assert jax.tree.structure(a.init({"w": jnp.zeros((2, 2))})) == jax.tree.structure(
      b.init({"w": jnp.zeros((2, 2))}))  # the same optimiser state: old checkpoints restore
  for x, y in zip(_updates(a), _updates(b)):
    jax.tree.map(np.testing.assert_array_equal, x, y)


def _gan_configs():
  out = [(f"dcgan_celeba:{p}", dcgan_celeba.get_config(p)) for p in dcgan_celeba.PRESETS]
  out += [(f"seed_gans:{p}", seed_gans.get_config(p)) for p in seed_gans.PRESETS]
  out += [(f"wavegan:{p}", wavegan_config.get_config(p))
          for p in getattr(wavegan_config, "PRESETS", ("",))]
  return out


@pytest.mark.parametrize("name,config", _gan_configs(), ids=lambda x: x if isinstance(x, str) else "")
def test_gan_presets_keep_their_optimisers(name, config):
  n_dis = int(config.get("n_dis", 1))
  for which, steps in (("g", NUM_STEPS), ("d", NUM_STEPS * n_dis), ("", NUM_STEPS)):
    _same(gan.make_optimizer(config.optimizer, which, steps),
          _gan_reference(config.optimizer, which, steps))


@pytest.mark.parametrize("preset", gpt_shakespeare.PRESETS)
def test_lm_presets_keep_their_optimisers(preset):
  config = gpt_shakespeare.get_config(preset)
  _same(lm.make_optimizer(config.optimizer, NUM_STEPS), _lm_reference(config.optimizer, NUM_STEPS))
  # A short warmup, so the cosine part is compared too.
  config.optimizer.update(warmup_steps=2, decay_steps=0)
  _same(lm.make_optimizer(config.optimizer, NUM_STEPS), _lm_reference(config.optimizer, NUM_STEPS))


@pytest.mark.parametrize("preset", vae_mnist.PRESETS)
def test_vae_presets_keep_their_optimisers(preset):
  config = vae_mnist.get_config(preset)
  config.num_steps = NUM_STEPS
  _same(vae.make_optimizer(config), _vae_reference(config.optimizer, NUM_STEPS))


@pytest.mark.parametrize("preset", cyclegan_config.PRESETS)
@pytest.mark.parametrize("fraction", [None, 0.0, 1.0])
def test_cyclegan_presets_keep_their_optimisers(preset, fraction):
  config = cyclegan_config.get_config(preset)
  config.num_steps = NUM_STEPS
  if fraction is not None:
    config.optimizer.decay_fraction = fraction
  _same(cyclegan.make_optimizer(config), _cyclegan_reference(config.optimizer, NUM_STEPS))


@pytest.mark.parametrize("preset", tuple(diffusion_config.PRESETS))
def test_diffusion_presets_keep_their_optimisers(preset):
  config = diffusion_config.get_config(preset)
  config.num_steps = NUM_STEPS
  config.optimizer.warmup = 3  # within the compared updates
  _same(diffusion.make_optimizer(config), _diffusion_reference(config.optimizer))


def test_schedules_are_named_and_unknown_ones_are_config_errors():
  opt = {"name": "adam", "learning_rate": 1.0, "b1": 0.9, "b2": 0.999, "warmup": 2,
         "min_learning_rate": 0.1, "decay_fraction": 0.5}
  lr = lambda schedule: optimizers.learning_rate(opt, 4, schedule)  # noqa: E731
  assert lr("constant") == 1.0
  assert [float(lr("linear")(i)) for i in range(5)] == [1.0, 0.75, 0.5, 0.25, 0.0]
  assert [float(lr("warmup")(i)) for i in range(4)] == [0.0, 0.5, 1.0, 1.0]
  assert [float(lr("constant_then_linear")(i)) for i in range(5)] == [1.0, 1.0, 1.0, 0.5, 0.0]
  assert float(lr("warmup_cosine")(2)) == 1.0 and np.isclose(float(lr("warmup_cosine")(4)), 0.1)
  with pytest.raises(ConfigError, match=r"unknown optimizer.schedule 'cosine'; set optimizer.schedule") as e:
    optimizers.build({**opt, "schedule": "cosine"}, 4)
  assert "--config.optimizer.schedule to one of" in render(e.value)
  with pytest.raises(ConfigError, match=r"unknown GAN optimizer 'sgd'; set optimizer.name to 'adam'"):
    optimizers.build({**opt, "name": "sgd"}, 4, names=("adam",), family="GAN")
