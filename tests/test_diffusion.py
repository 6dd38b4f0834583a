"""The diffusion family: objectives against their formulas, samplers on a Gaussian with the exact
score, guidance by its stated formula, learning, sharding and one-line config errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import diffusion as diffusion_configs
from genai_jax import tasks
from genai_jax.errors import ConfigError
from genai_jax.objectives import diffusion as diff
from genai_jax.tasks import diffusion as diffusion_task
from tests.helpers import override, run_steps


def tiny_config(preset="digits_cond", **overrides):
  """A preset shrunk to 8x8 images and the smallest U-Net (one level, no blocks beside the middle
  res-attention-res and one up block: compile time; this is about the wiring), one Euler step. Width 64, not less: with one
  channel per GroupNorm group (32 groups) the residual-stream biases get structurally zero
  gradients, which Adam turns into sharding-dependent float noise."""
  c = diffusion_configs.get_config(preset)
  c.model.update(image_size=8, width=64, channel_mult=(1,), num_res_blocks=0, attention_res=())
  c.data.update(image_size=8, shards=8)
  c.sampler.update(name="euler", steps=1)
  c.optimizer.update(warmup=1, learning_rate=3e-3)
  c.update(batch_size=16, num_samples=4)
  return override(c, overrides)


def _batch(n=16, size=8, seed=0):
  """Blob images in [-1, 1] with a label each (no dataset needed)."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:size, :size] / (size - 1) - 0.5
  r = rng.uniform(0.15, 0.35, (n, 1, 1))
  images = np.where(np.hypot(yy, xx)[None] < r, 1.0, -1.0)[..., None]
  return {"image": images.astype(np.float32), "label": (np.arange(n) % 10).astype(np.int32)}


# --- objectives against their formulas ---------------------------------------------------------

def test_alpha_bar_schedules_follow_their_definitions():
  ab = diff.linear_alpha_bar(1000)
  betas = np.linspace(1e-4, 0.02, 1000)
  np.testing.assert_allclose(ab[0], 1 - 1e-4)
  np.testing.assert_allclose(ab[1:] / ab[:-1], 1 - betas[1:], rtol=1e-12)
  assert ab[-1] == pytest.approx(4.04e-5, rel=0.01)  # Ho et al.: x_T is almost pure noise
  cos = diff.cosine_alpha_bar(1000)
  f = lambda u: math.cos((u / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2
  for t in (0, 250, 500, 900):  # unclipped region: ab_t = f(t + 1) / f(0)
    assert cos[t] == pytest.approx(f(t + 1) / f(0), rel=1e-9)
  assert np.all(np.diff(cos) < 0) and cos[-1] > 0
  # q(x_t | x0) keeps unit variance for unit-variance data; v and eps invert each other.
  x0, eps = jax.random.normal(jax.random.PRNGKey(0), (2, 4096, 3))
  a = jnp.full((4096,), 0.3)
  xt = diff.q_sample(x0, eps, a)
  assert float(jnp.var(xt)) == pytest.approx(1.0, abs=0.05)
  v = diff.v_target(x0, eps, a)
  np.testing.assert_allclose(diff.eps_from_v(xt, v, a), eps, atol=1e-5)
  np.testing.assert_allclose(math.sqrt(0.3) * xt - math.sqrt(0.7) * v, x0, atol=1e-5)
  with pytest.raises(ConfigError, match="unknown diffusion schedule 'sqrt'.*objective.schedule"):
    diff.alpha_bar_schedule("sqrt", 10)


def test_edm_preconditioning_and_weight_at_chosen_sigmas():
  c = diff.edm_preconditioning(jnp.array([0.5, 2.0]), sigma_data=0.5)
  # By hand: sigma = 0.5: s^2 + sd^2 = 0.5; sigma = 2: 4.25.
  np.testing.assert_allclose(c["c_skip"], [0.5, 0.25 / 4.25], rtol=1e-6)
  np.testing.assert_allclose(c["c_out"], [0.25 / math.sqrt(0.5), 1.0 / math.sqrt(4.25)], rtol=1e-6)
  np.testing.assert_allclose(c["c_in"], [1 / math.sqrt(0.5), 1 / math.sqrt(4.25)], rtol=1e-6)
  np.testing.assert_allclose(c["c_noise"], [math.log(0.5) / 4, math.log(2.0) / 4], rtol=1e-6)
  np.testing.assert_allclose(diff.edm_loss_weight(jnp.array([0.5, 2.0])), [8.0, 4.25 / 1.0],
                             rtol=1e-6)
  # The weighted loss is the unweighted error of F against the effective target (EDM eq. 8).
  k1, k2, k3 = jax.random.split(jax.random.PRNGKey(1), 3)
  x0, n, f = (jax.random.normal(k, (3, 4, 4, 1)) for k in (k1, k2, k3))
  sigma = jnp.array([0.1, 1.0, 10.0])
  x = x0 + sigma[:, None, None, None] * n
  loss = diff.edm_loss(diff.edm_denoise(lambda xi, cn: f, x, sigma), x0, sigma)
  c = diff.edm_preconditioning(sigma)
  target = (x0 - c["c_skip"][:, None, None, None] * x) / c["c_out"][:, None, None, None]
  np.testing.assert_allclose(loss, jnp.mean((f - target) ** 2, axis=(1, 2, 3)), rtol=1e-4)
  s = diff.karras_sigmas(18)
  assert s[0] == pytest.approx(80.0) and s[-2] == pytest.approx(0.002) and s[-1] == 0.0


# --- samplers with the exact score of a Gaussian ------------------------------------------------

MU, STD = np.array([0.5, -1.0]), np.array([0.3, 1.5])
N = 20_000


def _check_moments(x):
  x = np.asarray(x)
  np.testing.assert_allclose(x.mean(0), MU, atol=0.04)
  np.testing.assert_allclose(x.std(0), STD, rtol=0.04)


def _exact_eps(alpha_bar):
  ab = jnp.asarray(alpha_bar, jnp.float32)

  def eps_fn(x, t):  # E[eps | x_t] for x0 ~ N(MU, STD^2)
    a = ab[t][:, None]
    return jnp.sqrt(1 - a) * (x - jnp.sqrt(a) * MU) / (a * STD ** 2 + 1 - a)
  return eps_fn


def _exact_denoiser(mu=MU, std=STD):
  def denoise(x, sigma):  # E[x0 | x0 + sigma n]
    s2 = sigma[:, None] ** 2
    return mu + std ** 2 / (std ** 2 + s2) * (x - mu)
  return denoise


def _exact_velocity(mu=MU, std=STD):
  def velocity(x, t):  # E[eps - x0 | (1 - t) x0 + t eps]
    t = t[:, None]
    var = (1 - t) ** 2 * std ** 2 + t ** 2
    r = x - (1 - t) * mu
    return t / var * r - (mu + (1 - t) * std ** 2 / var * r)
  return velocity


@pytest.mark.parametrize("schedule,steps,eta", [("linear", 250, 0.0), ("cosine", 1000, 1.0)])
def test_ddim_and_ddpm_reproduce_a_gaussian_with_the_exact_eps(schedule, steps, eta):
  # First-order in the step size: with 50 DDIM steps the smaller std comes out ~10% low.
  ab = diff.alpha_bar_schedule(schedule, 1000)
  noise_key, key = jax.random.split(jax.random.PRNGKey(2))
  x = jax.jit(lambda n, k: diff.ddim_sample(_exact_eps(ab), ab, n, k, steps, eta))(
      jax.random.normal(noise_key, (N, 2)), key)
  _check_moments(x)


def test_edm_sampler_reproduces_a_gaussian_with_the_exact_denoiser():
  noise = jax.random.normal(jax.random.PRNGKey(3), (N, 2))
  run = jax.jit(lambda heun, steps: diff.edm_sample(_exact_denoiser(), noise, steps, heun),
                static_argnums=(0, 1))
  # For a Gaussian the ODE's solution is linear in the noise: x = MU + STD / sqrt(STD^2 +
  # smax^2) (smax n - MU); Heun is second order, so at equal steps it lands much closer.
  n = np.asarray(noise, np.float64)
  exact = MU + STD / np.sqrt(STD ** 2 + 80.0 ** 2) * (80.0 * n - MU)
  heun, euler = np.asarray(run(True, 50)), np.asarray(run(False, 50))
  assert np.abs(heun - exact).max() < 0.25 * np.abs(euler - exact).max()
  np.testing.assert_allclose(heun.std(0), exact.std(0), rtol=0.01)
  _check_moments(heun)  # (18 Heun steps leave this narrow std 0.3 target ~6% wide)
  _check_moments(run(False, 200))


@pytest.mark.parametrize("heun,steps", [(True, 10), (False, 100)])
def test_flow_sampler_reproduces_a_gaussian_with_the_exact_velocity(heun, steps):
  x = jax.jit(lambda n: diff.flow_sample(_exact_velocity(), n, steps, heun))(
      jax.random.normal(jax.random.PRNGKey(4), (N, 2)))
  _check_moments(x)


def test_guidance_weight_0_is_conditional_and_minus_1_unconditional():
  # Formula: out = (1 + w) cond - w uncond. Two exact velocity fields (class N(MU, STD^2), null
  # N(-MU, 1)): w = 0 samples the class, w = -1 the null model, w = 2 pushes past the class.
  cond, uncond = _exact_velocity(), _exact_velocity(-MU, np.ones(2))
  noise = jax.random.normal(jax.random.PRNGKey(5), (N, 2))
  run = jax.jit(lambda w: diff.flow_sample(
      lambda x, t: diff.guide(cond(x, t), uncond(x, t), w), noise, 10, heun=True))
  _check_moments(run(0.0))
  np.testing.assert_allclose(np.asarray(run(-1.0)).mean(0), -MU, atol=0.04)
  assert np.all(np.abs(np.asarray(run(2.0)).mean(0) + MU) > np.abs(MU) * 2)


@pytest.mark.slow
def test_task_guidance_minus_1_equals_the_null_label():
  # The task's guided pass (doubled batch, null label num_classes) at w = -1 must equal an
  # unguided draw with every label null; random weights (the EMA copy, which sampling reads),
  # so the zero-initialised output layer does not make every draw equal.
  base = tiny_config(**{"sampler.guidance": -1.0})
  task = tasks.get_task(base)
  abstract = jax.eval_shape(task.init, jax.random.PRNGKey(0))  # shapes only: nothing compiled
  leaves, treedef = jax.tree.flatten(abstract.ema)
  keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
  noisy = [0.2 * jax.random.normal(k, l.shape) for l, k in zip(leaves, keys)]
  state = diffusion_task.DiffusionState(step=None, rng=None, params=None, opt_state=None,
                                        ema=jax.tree.unflatten(treedef, noisy))
  y = jnp.array([0, 3, 7, 9], jnp.int32)
  unguided = tiny_config(**{"sampler.guidance": 0.0})
  draw = lambda c: jax.jit(lambda s, k, y: diffusion_task.labelled_samples(c, s, k, y))
  guided = draw(base)(state, jax.random.PRNGKey(2), y)
  draw_plain = draw(unguided)
  plain = draw_plain(state, jax.random.PRNGKey(2), jnp.full((4,), 10, jnp.int32))
  np.testing.assert_allclose(guided, plain, atol=1e-5)
  conditional = draw_plain(state, jax.random.PRNGKey(2), y)
  assert float(jnp.abs(guided - conditional).max()) > 1e-3  # the labels matter


# --- the task ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_train_steps_lower_the_loss_and_sharded_equals_single_device():
  config = tiny_config(**{"ema.decay": 0.0, "model.dropout": 0.0})
  batch = _batch()
  task, state1, hist1 = run_steps(config, jax.devices()[:1], 3, batch)
  _, fresh, _ = run_steps(config, jax.devices()[:1], 0, batch)  # init compiled already
  eval_step = jax.jit(task.eval_step)
  before = float(eval_step(fresh, batch)["loss"])
  after = float(eval_step(state1, batch)["loss"])
  assert after < before, (before, after)
  _, state8, hist8 = run_steps(config, jax.devices(), 3, batch)
  np.testing.assert_allclose([h["loss"] for h in hist8], [h["loss"] for h in hist1], rtol=1e-4)
  # atol: 3% of one Adam step (lr 3e-3); Adam's g / sqrt(v) magnifies summation-order noise
  # on small gradients (measured up to 5e-5 after 3 steps).
  for a, b in zip(jax.tree.leaves(state8.params), jax.tree.leaves(state1.params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("overrides,message", [
    ({"objective.schedule": "sqrt", "objective.name": "ddpm_eps", "sampler.name": "ddim"},
     r"unknown diffusion schedule 'sqrt'; set objective.schedule"),
    ({"sampler.name": "dpm"}, r"unknown diffusion sampler 'dpm'; set sampler.name"),
    ({"sampler.name": "ddim"}, r"sampler 'ddim' does not sample objective 'flow'.*\['euler', 'heun'\]"),
    ({"model.name": "vit"}, r"unknown diffusion model 'vit'; set model.name"),
    ({"objective.name": "score"}, r"unknown diffusion objective 'score'"),
    ({"sampler.steps": 0}, r"sampler.steps=0 must be at least 1"),
    ({"model.channel_mult": (1, 2, 2, 2, 2)}, r"image_size=8 must be divisible by 16 for 5 U-Net"),
    ({"model.num_classes": 0, "data.labels": False},
     r"sampler.guidance=2.0 needs a class-conditional model"),
])
def test_bad_settings_are_one_line_config_errors(overrides, message):
  config = tiny_config(**overrides)
  with pytest.raises(ConfigError, match=message) as err:
    tasks.validate(config)
    tasks.get_task(config)
  assert "\n" not in str(err.value)


def test_presets_resolve_and_config_keys_match_the_registry():
  from genai_jax.models import registry
  assert set(diffusion_configs.get_config().model.keys()) == registry.all_keys(
      diffusion_task.MODELS, diffusion_task.SHARED_KEYS)
  for preset in diffusion_configs.PRESETS:  # "" included; builds the Task (nothing compiled)
    config = diffusion_configs.get_config(preset)
    tasks.validate(config)
    assert tasks.get_task(config).generate is not None
  with pytest.raises(ValueError, match="unknown preset 'cifar'"):
    diffusion_configs.get_config("cifar")
