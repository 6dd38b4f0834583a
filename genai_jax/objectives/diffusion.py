"""Diffusion and flow-matching objectives and samplers as pure functions.

Conventions (every function below): data x0 float32 [B, ...]; noise eps ~ N(0, I) of x0's shape;
per-example quantities (alpha_bar_t, sigma, t) are float32 [B] and broadcast over the trailing
axes; losses are float32 [B], the mean squared error over an example's elements.

* DDPM (Ho et al. 2020): x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps for integer t in [0, T), with
  ab_t = prod_{s <= t} (1 - beta_s) from a linear (Ho et al.) or cosine (Nichol & Dhariwal 2021)
  schedule. The network predicts eps, or v = sqrt(ab) eps - sqrt(1 - ab) x0 (Salimans & Ho 2022).
* EDM (Karras et al. 2022, table 1): x = x0 + sigma n; D(x; sigma) = c_skip x + c_out F(c_in x,
  c_noise), sigma ~ exp(N(P_mean, P_std^2)), loss weight lambda(sigma) = 1 / c_out^2.
* Flow matching / rectified flow (Lipman et al. 2023; Liu et al. 2023): x_t = (1 - t) x0 + t eps,
  t in [0, 1] (t = 1 is pure noise), the network predicts the velocity eps - x0.

Samplers take the model as a function and integrate from noise to data with ``jax.lax.scan``:
DDIM with eta (Song et al. 2021; eta = 1 on every step is DDPM's ancestral sampler), EDM's
deterministic Euler and Heun (Karras et al. algorithm 1 with S_churn = 0), and Euler / Heun on
the flow ODE.

Classifier-free guidance (Ho & Salimans 2022), the convention used throughout:
  out = (1 + w) out_cond - w out_uncond,
so w = 0 is the conditional model and w = -1 the unconditional one; w > 0 strengthens the class.
It is applied to the network output, which every parametrisation here maps affinely (with the
same x) to eps, v, the denoised image or the velocity, so guiding any of them is the same.
"""

import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from genai_jax.errors import ConfigError

SCHEDULES = ("linear", "cosine")


def _bcast(a: jax.Array, x: jax.Array) -> jax.Array:
  """a [B] -> [B, 1, ..., 1] broadcastable against x [B, ...]."""
  return jnp.reshape(a, a.shape + (1,) * (x.ndim - a.ndim))


def _mse(a: jax.Array, b: jax.Array) -> jax.Array:
  return jnp.mean(jnp.square(a - b), axis=tuple(range(1, a.ndim)))


# --- DDPM schedules --------------------------------------------------------------------------

def linear_alpha_bar(num_steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
  """float64 [T]: ab_t = prod_{s<=t} (1 - beta_s), betas linear from beta_start to beta_end
  (Ho et al.'s T = 1000 schedule)."""
  betas = np.linspace(beta_start, beta_end, num_steps, dtype=np.float64)
  return np.cumprod(1.0 - betas)


def cosine_alpha_bar(num_steps: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
  """float64 [T]: Nichol & Dhariwal's ab_t = f(t + 1) / f(0), f(u) = cos((u / T + s) / (1 + s)
  * pi / 2)^2, through betas clipped at ``max_beta`` (so ab never reaches exactly 0)."""
  u = np.arange(num_steps + 1, dtype=np.float64) / num_steps
  f = np.cos((u + s) / (1 + s) * math.pi / 2) ** 2
  betas = np.minimum(1.0 - f[1:] / f[:-1], max_beta)
  return np.cumprod(1.0 - betas)


def alpha_bar_schedule(name: str, num_steps: int, beta_start: float = 1e-4,
                       beta_end: float = 0.02) -> np.ndarray:
  """The schedule ``name`` ('linear' | 'cosine') as float64 [T]; an unknown name is a ConfigError."""
  if name == "linear":
    return linear_alpha_bar(num_steps, beta_start, beta_end)
  if name == "cosine":
    return cosine_alpha_bar(num_steps)
  raise ConfigError(f"unknown diffusion schedule {name!r}; set objective.schedule to one "
                    f"of {list(SCHEDULES)}", keys=("objective.schedule",))


def q_sample(x0: jax.Array, eps: jax.Array, alpha_bar: jax.Array) -> jax.Array:
  """x_t = sqrt(ab) x0 + sqrt(1 - ab) eps; alpha_bar [B]."""
  ab = _bcast(alpha_bar, x0)
  return jnp.sqrt(ab) * x0 + jnp.sqrt(1.0 - ab) * eps


def v_target(x0: jax.Array, eps: jax.Array, alpha_bar: jax.Array) -> jax.Array:
  """v = sqrt(ab) eps - sqrt(1 - ab) x0 (Salimans & Ho 2022)."""
  ab = _bcast(alpha_bar, x0)
  return jnp.sqrt(ab) * eps - jnp.sqrt(1.0 - ab) * x0


def eps_from_v(x_t: jax.Array, v: jax.Array, alpha_bar: jax.Array) -> jax.Array:
  """eps = sqrt(1 - ab) x_t + sqrt(ab) v (inverts ``q_sample`` and ``v_target``)."""
  ab = _bcast(alpha_bar, x_t)
  return jnp.sqrt(1.0 - ab) * x_t + jnp.sqrt(ab) * v


def ddpm_loss(prediction: jax.Array, x0: jax.Array, eps: jax.Array, alpha_bar: jax.Array,
              target: str = "eps") -> jax.Array:
  """float32 [B]: the mean squared error of the eps ('eps') or v ('v') prediction."""
  want = eps if target == "eps" else v_target(x0, eps, alpha_bar)
  return _mse(prediction.astype(jnp.float32), want)


# --- EDM -------------------------------------------------------------------------------------

def edm_preconditioning(sigma: jax.Array, sigma_data: float = 0.5) -> dict:
  """Karras et al. (table 1): {'c_skip', 'c_out', 'c_in', 'c_noise'}, each of sigma's shape:
  c_skip = sd^2 / (s^2 + sd^2), c_out = s sd / sqrt(s^2 + sd^2), c_in = 1 / sqrt(s^2 + sd^2),
  c_noise = ln(s) / 4."""
  total = sigma ** 2 + sigma_data ** 2
  return {"c_skip": sigma_data ** 2 / total, "c_out": sigma * sigma_data / jnp.sqrt(total),
          "c_in": 1.0 / jnp.sqrt(total), "c_noise": jnp.log(sigma) / 4.0}


def edm_loss_weight(sigma: jax.Array, sigma_data: float = 0.5) -> jax.Array:
  """lambda(sigma) = (s^2 + sd^2) / (s sd)^2 = 1 / c_out^2."""
  return (sigma ** 2 + sigma_data ** 2) / (sigma * sigma_data) ** 2


def edm_sample_sigma(key: jax.Array, n: int, p_mean: float = -1.2, p_std: float = 1.2) -> jax.Array:
  """float32 [n]: training noise levels, ln(sigma) ~ N(P_mean, P_std^2)."""
  return jnp.exp(p_mean + p_std * jax.random.normal(key, (n,)))


def edm_denoise(raw_fn: Callable, x: jax.Array, sigma: jax.Array, sigma_data: float = 0.5):
  """D(x; sigma) = c_skip x + c_out F(c_in x, c_noise): raw_fn(x_in [B, ...], c_noise [B]) is the
  network F; sigma [B]."""
  c = edm_preconditioning(sigma, sigma_data)
  out = raw_fn(_bcast(c["c_in"], x) * x, c["c_noise"]).astype(jnp.float32)
  return _bcast(c["c_skip"], x) * x + _bcast(c["c_out"], x) * out


def edm_loss(denoised: jax.Array, x0: jax.Array, sigma: jax.Array, sigma_data: float = 0.5):
  """float32 [B]: lambda(sigma) * mean ||D(x0 + sigma n; sigma) - x0||^2."""
  return edm_loss_weight(sigma, sigma_data) * _mse(denoised, x0)


def karras_sigmas(steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0,
                  rho: float = 7.0) -> np.ndarray:
  """float64 [steps + 1]: sigma_i = (smax^(1/rho) + i / (N - 1) (smin^(1/rho) - smax^(1/rho)))^rho
  for i < N, then sigma_N = 0 (Karras et al. eq. 5)."""
  i = np.arange(steps, dtype=np.float64)
  frac = i / max(steps - 1, 1)
  s = (sigma_max ** (1 / rho) + frac * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
  return np.append(s, 0.0)


# --- flow matching ---------------------------------------------------------------------------

def flow_interpolate(x0: jax.Array, eps: jax.Array, t: jax.Array) -> jax.Array:
  """x_t = (1 - t) x0 + t eps; t [B] in [0, 1]."""
  tb = _bcast(t, x0)
  return (1.0 - tb) * x0 + tb * eps


def flow_loss(velocity: jax.Array, x0: jax.Array, eps: jax.Array) -> jax.Array:
  """float32 [B]: the mean squared error of the predicted velocity against eps - x0."""
  return _mse(velocity.astype(jnp.float32), eps - x0)


# --- guidance --------------------------------------------------------------------------------

def guide(out_cond: jax.Array, out_uncond: jax.Array, weight) -> jax.Array:
  """Classifier-free guidance: (1 + w) out_cond - w out_uncond (w = 0: conditional; w = -1:
  unconditional)."""
  return (1.0 + weight) * out_cond - weight * out_uncond


# --- samplers --------------------------------------------------------------------------------

def check_steps(steps: int) -> int:
  if int(steps) < 1:
    raise ConfigError(f"sampler.steps={steps} must be at least 1; set sampler.steps=N",
                      keys=("sampler.steps",))
  return int(steps)


def ddim_sample(eps_fn: Callable, alpha_bar, x_T: jax.Array, key: jax.Array, steps: int,
                eta: float = 0.0, clip: Optional[float] = None) -> jax.Array:
  """DDIM (Song et al. 2021, eq. 12) from x_T ~ N(0, I) over ``steps`` evenly spaced timesteps
  of the T-step schedule ``alpha_bar`` (float [T]); ``steps`` network evaluations.

  eps_fn(x [B, ...], t int32 [B]) -> eps. eta = 0: deterministic; eta = 1 with steps = T: DDPM's
  ancestral sampler (the posterior variance beta~_t). clip: clamp the x0 estimate to
  [-clip, clip] (images) and recompute eps from it. Returns x_0 float32 of x_T's shape.
  """
  steps = check_steps(steps)
  T = len(alpha_bar)
  if steps > T:
    raise ConfigError(f"sampler.steps={steps} exceeds the schedule's {T} timesteps; set "
                      f"sampler.steps <= {T}", keys=("sampler.steps",))
  ts = np.unique(np.linspace(0, T - 1, steps).round().astype(np.int32))[::-1]
  ab = np.asarray(alpha_bar, np.float64)
  ab_t = ab[ts]
  ab_prev = np.append(ab[ts[1:]], 1.0)  # the last step lands on x0 (ab = 1)
  xs = (jnp.asarray(ts), jnp.asarray(ab_t, jnp.float32), jnp.asarray(ab_prev, jnp.float32),
        jax.random.split(key, len(ts)))

  def step(x, inp):
    t, a, a_prev, k = inp
    eps = eps_fn(x, jnp.full((x.shape[0],), t, jnp.int32)).astype(jnp.float32)
    x0 = (x - jnp.sqrt(1.0 - a) * eps) / jnp.sqrt(a)
    if clip is not None:
      x0 = jnp.clip(x0, -clip, clip)
      eps = (x - jnp.sqrt(a) * x0) / jnp.sqrt(1.0 - a)
    sigma = eta * jnp.sqrt((1.0 - a_prev) / (1.0 - a) * (1.0 - a / a_prev))
    direction = jnp.sqrt(jnp.maximum(1.0 - a_prev - sigma ** 2, 0.0)) * eps
    x = jnp.sqrt(a_prev) * x0 + direction + sigma * jax.random.normal(k, x.shape)
    return x, None

  x, _ = jax.lax.scan(step, x_T.astype(jnp.float32), xs)
  return x


def edm_sample(denoise_fn: Callable, noise: jax.Array, steps: int, heun: bool = True,
               sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> jax.Array:
  """EDM's deterministic sampler (Karras et al. algorithm 1, S_churn = 0) on the ODE
  dx/dsigma = (x - D(x; sigma)) / sigma, from x = sigma_max * noise down the ``karras_sigmas``.

  denoise_fn(x [B, ...], sigma float32 [B]) -> D. heun: a second-order correction on every step
  but the last (2 * steps - 1 network evaluations); else Euler (steps evaluations).
  """
  steps = check_steps(steps)
  sig = karras_sigmas(steps, sigma_min, sigma_max, rho)
  cur, nxt = jnp.asarray(sig[:-1], jnp.float32), jnp.asarray(sig[1:], jnp.float32)

  def slope(x, s):
    return (x - denoise_fn(x, jnp.full((x.shape[0],), s))) / s

  def step(x, inp):
    s, s_next = inp
    d = slope(x, s)
    x_next = x + (s_next - s) * d
    if heun:  # the last step (to sigma = 0) stays Euler: the slope is undefined there
      x_next = jax.lax.cond(
          s_next > 0, lambda: x + (s_next - s) * 0.5 * (d + slope(x_next, jnp.maximum(s_next, 1e-20))),
          lambda: x_next)
    return x_next, None

  x, _ = jax.lax.scan(step, noise.astype(jnp.float32) * sig[0], (cur, nxt))
  return x


def flow_sample(velocity_fn: Callable, noise: jax.Array, steps: int, heun: bool = False) -> jax.Array:
  """Integrates dx/dt = v(x, t) from t = 1 (x = noise) to t = 0 in ``steps`` uniform steps.
  velocity_fn(x [B, ...], t float32 [B]) -> v. Euler: steps evaluations; Heun: 2 * steps."""
  steps = check_steps(steps)
  ts = jnp.linspace(1.0, 0.0, steps + 1, dtype=jnp.float32)

  def v(x, t):
    return velocity_fn(x, jnp.full((x.shape[0],), t)).astype(jnp.float32)

  def step(x, inp):
    t, t_next = inp
    d = v(x, t)
    x_next = x + (t_next - t) * d
    if heun:
      x_next = x + (t_next - t) * 0.5 * (d + v(x_next, t_next))
    return x_next, None

  x, _ = jax.lax.scan(step, noise.astype(jnp.float32), (ts[:-1], ts[1:]))
  return x
