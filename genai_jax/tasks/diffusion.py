"""Diffusion and flow-matching family: a U-Net or DiT backbone, four objectives, four samplers.

``objective.name`` picks what the network learns (genai_jax/objectives/diffusion.py):
  ddpm_eps  DDPM noise prediction on the ``objective.schedule`` (linear | cosine) of T steps;
  ddpm_v    the same schedule, v-prediction;
  edm       Karras et al. 2022: preconditioned denoiser, ln(sigma) ~ N(P_mean, P_std^2), weight
            lambda(sigma) = 1 / c_out^2;
  flow      rectified flow: x_t = (1 - t) x0 + t eps, t ~ U(0, 1), velocity eps - x0.
``sampler.name`` picks how samples are drawn: ddpm (ancestral; DDIM's eta = 1) and ddim (eta =
``sampler.eta``) for the DDPM objectives; euler and heun for edm (EDM's sigma ODE) and flow.
``sampler.steps`` is the number of steps (network evaluations: ddpm/ddim/euler steps, EDM heun
2 * steps - 1, flow heun 2 * steps; doubled again under guidance).

Class-conditional (``model.num_classes`` > 0, ``data.labels``): labels are replaced by the null
label (index num_classes) with probability ``objective.label_dropout`` in training, and sampling
applies classifier-free guidance out = (1 + w) out(y) - w out(null) with w = ``sampler.guidance``
(w = 0: the conditional model; w = -1: the unconditional one). The fixed grid's row r is class r;
``generate`` draws labels uniformly, ``generate_labelled`` the classes it is given.

An EMA of the weights (``ema.decay`` > 0; ema <- r ema + (1 - r) params after each step with
r = min(decay, step / (10 + step)): a copy at step 0, a short horizon early in short runs) is
what ``sample`` and ``generate`` draw from (and ``eval_step`` scores).

The network's noise input: the timestep t for DDPM, 1000 t for flow, 250 c_noise = 62.5 ln(sigma)
for EDM, so the sinusoidal embedding sees a range of hundreds in every objective.
Metrics: the training loss (mean over pixels and the batch); eval: the same loss on the eval
batch with fixed noise and noise levels (comparable across evals).
"""

import functools
import json
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from genai_jax import data, samples
from genai_jax.errors import ConfigError
from genai_jax.models import registry
from genai_jax.models import dit, unet
from genai_jax.objectives import diffusion as diff
from genai_jax.tasks.base import Task
from genai_jax.train import optimizers, sharding

OBJECTIVES = ("ddpm_eps", "ddpm_v", "edm", "flow")
SAMPLERS = {"ddpm": ("ddpm_eps", "ddpm_v"), "ddim": ("ddpm_eps", "ddpm_v"),
            "euler": ("edm", "flow"), "heun": ("edm", "flow")}
SHARED_KEYS = ("image_size", "channels", "num_classes", "dtype")  # read by every backbone
_EVAL_KEY = 0  # eval noise: the same for every eval of a run


def _unet(s):
  levels = len(s["channel_mult"])
  if int(s["image_size"]) % 2 ** (levels - 1):
    raise ConfigError(f"model.image_size={s['image_size']} must be divisible by "
                      f"{2 ** (levels - 1)} for {levels} U-Net levels; change "
                      f"model.channel_mult or the image size", keys=("model.channel_mult",))
  return unet.UNet(channels=s["channels"], width=s["width"], channel_mult=tuple(s["channel_mult"]),
                   num_res_blocks=s["num_res_blocks"], attention_res=tuple(s["attention_res"]),
                   dropout=s["dropout"], num_heads=s["num_heads"],
                   num_classes=int(s.get("num_classes") or 0), dtype=s.get("dtype"),
                   scale_shift=bool(s["scale_shift"]))


def _dit(s):
  size, p = int(s["image_size"]), int(s["patch_size"])
  d, heads = int(s["hidden"]), int(s["num_heads"])
  if p < 1 or size % p:
    raise ConfigError(f"model.image_size={size} must be divisible by model.patch_size={p}; set "
                      f"model.patch_size to a divisor of {size}",
                      keys=("model.patch_size", "model.image_size"))
  if heads < 1 or d % heads:
    raise ConfigError(f"model.hidden={d} must be divisible by model.num_heads={heads}; change "
                      f"either", keys=("model.hidden", "model.num_heads"))
  if d % 4:
    raise ConfigError(f"model.hidden={d} must be divisible by 4 (the 2-D sin-cos position "
                      f"embedding); set model.hidden to a multiple of 4", keys=("model.hidden",))
  return dit.DiT(channels=s["channels"], image_size=size, patch_size=p, hidden=d,
                 depth=int(s["depth"]), num_heads=heads, mlp_ratio=int(s["mlp_ratio"]),
                 num_classes=int(s.get("num_classes") or 0), dtype=s.get("dtype"))


# name -> the model keys it reads, with their defaults (a builder raises a one-line ConfigError
# for settings its network cannot take). DiT's defaults are DiT-S/2.
MODELS = {
    "unet": registry.Entry(_unet, {"width": 64, "channel_mult": (1, 2, 2), "num_res_blocks": 2,
                                   "attention_res": (16,), "dropout": 0.1, "num_heads": 1,
                                   "scale_shift": True}),
    "dit": registry.Entry(_dit, {"patch_size": 2, "hidden": 384, "depth": 12, "num_heads": 6,
                                 "mlp_ratio": 4}),
}


@flax.struct.dataclass
class DiffusionState:
  step: jax.Array  # int32 scalar
  rng: jax.Array  # uint32[2] base key; per-step keys are fold_in(rng, step)
  params: Any
  opt_state: Any
  # Not a *params field: fine-tuning (init_from) does not copy it; step 0 restarts it as a copy.
  ema: Any = flax.struct.field(default_factory=dict)


def _check(config) -> tuple:
  """(objective, sampler, num_classes), checked; each bad setting is one ConfigError line."""
  o, s = config.objective, config.sampler
  if o.name not in OBJECTIVES:
    raise ConfigError(f"unknown diffusion objective {o.name!r}; set objective.name to one "
                      f"of {list(OBJECTIVES)}", keys=("objective.name",))
  if o.name.startswith("ddpm"):
    diff.alpha_bar_schedule(o.schedule, 1)  # an unknown schedule is a ConfigError
  if s.name not in SAMPLERS:
    raise ConfigError(f"unknown diffusion sampler {s.name!r}; set sampler.name to one of "
                      f"{list(SAMPLERS)}", keys=("sampler.name",))
  if o.name not in SAMPLERS[s.name]:
    fits = [k for k, v in SAMPLERS.items() if o.name in v]
    raise ConfigError(f"sampler {s.name!r} does not sample objective {o.name!r}; set "
                      f"sampler.name to one of {fits}", keys=("sampler.name",))
  diff.check_steps(s.steps)
  if o.name.startswith("ddpm") and int(s.steps) > int(o.timesteps):
    raise ConfigError(f"sampler.steps={s.steps} exceeds objective.timesteps={o.timesteps}; set "
                      f"sampler.steps <= {o.timesteps}", keys=("sampler.steps",))
  make_model(config)  # an unknown name or key, or settings the backbone cannot take
  num_classes = int(config.model.get("num_classes", None) or 0)
  if num_classes and not config.data.get("labels", False):
    raise ConfigError(f"model.num_classes={num_classes} needs labelled batches; set "
                      f"data.labels=True", keys=("data.labels",))
  if float(s.guidance) != 0.0 and not num_classes:
    raise ConfigError(f"sampler.guidance={s.guidance} needs a class-conditional model; set "
                      f"model.num_classes=N (with data.labels) or sampler.guidance=0",
                      keys=("model.num_classes", "sampler.guidance"))
  if not 0.0 <= float(o.label_dropout) < 1.0:
    raise ConfigError(f"objective.label_dropout={o.label_dropout}; set it in [0, 1)")
  if not 0.0 <= float(config.ema.decay) < 1.0:
    raise ConfigError(f"ema.decay={config.ema.decay}; set ema.decay in [0, 1) (0 = no EMA)",
                      keys=("ema.decay",))
  make_optimizer(config)  # an unknown optimizer or schedule fails here
  return o.name, s.name, num_classes


def model_settings(config) -> tuple[registry.Entry, dict]:
  """(entry, settings) of ``config.model`` in ``MODELS`` (see ``registry.settings``)."""
  return registry.settings("diffusion", MODELS, config.model, SHARED_KEYS)


def make_model(config) -> nn.Module:
  """The backbone of ``config.model`` (looked up in ``MODELS``): a ``unet.UNet`` or ``dit.DiT``,
  both (x [B, S, S, C], noise_label float32 [B], y int32 [B] or None) -> float32 [B, S, S, C]."""
  entry, settings = model_settings(config)
  return entry.build(settings)


def make_optimizer(config) -> optax.GradientTransformation:
  """Global-norm clipping then Adam with a linear warmup over ``optimizer.warmup`` steps
  (``train.optimizers.build``)."""
  return optimizers.build(config.optimizer, int(config.get("num_steps", 0)), "warmup",
                          names=("adam",), family="diffusion")


def fixed_labels(num_samples: int, num_classes: int) -> jax.Array:
  """int32 [num_samples]: grid row r holds class r mod num_classes."""
  cols = samples.grid_cols(num_samples)
  return ((jnp.arange(num_samples) // cols) % num_classes).astype(jnp.int32)


def make_task(config) -> Task:
  """The diffusion task for ``config``; the same settings give the same Task object (cached)."""
  _check(config)
  return _parts(_settings_json(config))


def _settings_json(config) -> str:
  settings = {k: config[k].to_dict() if hasattr(config[k], "to_dict") else config[k]
              for k in ("seed", "num_samples", "model", "objective", "sampler", "optimizer", "ema")}
  settings["batch_key"] = data.batch_key(config.data)
  # num_steps shapes only a schedule that reads it: without one, runs of any length share a task.
  if optimizers.reads_num_steps(config.optimizer, "warmup"):
    settings["num_steps"] = int(config.num_steps)
  return json.dumps(settings, sort_keys=True)


@functools.lru_cache(maxsize=16)
def _parts(settings_json: str) -> Task:
  """The Task of the settings ``_settings_json`` wrote (cached: one per distinct settings)."""
  config = ml_collections.ConfigDict(json.loads(settings_json))
  objective, sampler = config.objective.name, config.sampler.name
  num_classes = int(config.model.get("num_classes", None) or 0)
  model = make_model(config)
  o, s, m = config.objective, config.sampler, config.model
  size, channels = m.image_size, m.channels
  key = config.batch_key
  ema_decay = float(config.ema.decay)
  sd = float(o.sigma_data)
  tx = make_optimizer(config)
  if objective.startswith("ddpm"):
    alpha_bar_np = diff.alpha_bar_schedule(o.schedule, int(o.timesteps), o.beta_start, o.beta_end)
    alpha_bar = jnp.asarray(alpha_bar_np, jnp.float32)

  def net(params, x, label, y, train=False, rng=None):
    rngs = {"dropout": rng} if train else None
    return model.apply({"params": params}, x, label, y, train=train, rngs=rngs)

  def guided(params, x, label, y):
    """The network output under classifier-free guidance (the weight is static config)."""
    w = float(s.guidance)
    if not num_classes or w == 0.0:
      return net(params, x, label, y)
    null = jnp.full_like(y, num_classes)
    both = net(params, jnp.concatenate([x, x]), jnp.concatenate([label, label]),
               jnp.concatenate([y, null]))
    cond, uncond = jnp.split(both, 2)
    return diff.guide(cond, uncond, w)

  def losses(params, x0, y, k, train):
    """Per-example loss float32 [B] of the objective at noise drawn from k."""
    b = x0.shape[0]
    k_noise, k_level, k_drop = jax.random.split(k, 3)
    eps = jax.random.normal(k_noise, x0.shape)
    call = functools.partial(net, params, train=train, rng=k_drop)
    if objective.startswith("ddpm"):
      t = jax.random.randint(k_level, (b,), 0, int(o.timesteps))
      ab = alpha_bar[t]
      out = call(diff.q_sample(x0, eps, ab), t.astype(jnp.float32), y)
      return diff.ddpm_loss(out, x0, eps, ab, "eps" if objective == "ddpm_eps" else "v")
    if objective == "edm":
      sigma = diff.edm_sample_sigma(k_level, b, o.p_mean, o.p_std)
      x = x0 + sigma[:, None, None, None] * eps
      denoised = diff.edm_denoise(lambda xi, cn: call(xi, 250.0 * cn, y), x, sigma, sd)
      return diff.edm_loss(denoised, x0, sigma, sd)
    t = jax.random.uniform(k_level, (b,))
    return diff.flow_loss(call(diff.flow_interpolate(x0, eps, t), 1000.0 * t, y), x0, eps)

  def labels_of(batch, k):
    if not num_classes:
      return None
    y = batch["label"].astype(jnp.int32)
    if k is None or not float(o.label_dropout):
      return y
    drop = jax.random.bernoulli(k, float(o.label_dropout), y.shape)
    return jnp.where(drop, num_classes, y)

  def init(rng):
    param_key, state_key = jax.random.split(rng)
    y = jnp.zeros((2,), jnp.int32) if num_classes else None
    params = model.init(param_key, jnp.zeros((2, size, size, channels), jnp.float32),
                        jnp.zeros((2,), jnp.float32), y)["params"]
    return DiffusionState(step=jnp.zeros((), jnp.int32), rng=state_key, params=params,
                          opt_state=tx.init(params),
                          ema=jax.tree.map(jnp.copy, params) if ema_decay else {})

  def train_step(state: DiffusionState, batch):
    k = jax.random.fold_in(state.rng, state.step)
    k_loss, k_label = jax.random.split(k)
    x0 = batch[key].astype(jnp.float32)
    y = labels_of(batch, k_label)

    def loss_fn(params):
      params = sharding.gathered(params)  # FSDP: weights gathered, gradients reduce-scattered
      return losses(params, x0, y, k_loss, True).mean()

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ema = state.ema
    if ema_decay:
      step = state.step.astype(jnp.float32)
      rate = jnp.minimum(ema_decay, step / (10.0 + step))  # 0 at step 0: a copy
      ema = jax.tree.map(lambda e, p: rate * e + (1.0 - rate) * p, state.ema, params)
    return (state.replace(step=state.step + 1, params=params, opt_state=opt_state, ema=ema),
            {"loss": loss, "grad_norm": optax.global_norm(grads)})

  def eval_step(state: DiffusionState, batch):
    """{'loss'}: the objective on the eval batch at fixed noise (EMA weights when enabled)."""
    x0 = batch[key].astype(jnp.float32)
    k = jax.random.PRNGKey(_EVAL_KEY)
    return {"loss": losses(sampling_params(state), x0, labels_of(batch, None), k, False).mean()}

  def sampling_params(state):
    return state.ema if ema_decay else state.params

  def draw(params, rng, y, n: int):
    """Images float32 [n, S, S, C] in [-1, 1] from the configured sampler; y int32 [n] or None."""
    k_noise, k_sample = jax.random.split(rng)
    noise = jax.random.normal(k_noise, (n, size, size, channels))
    if objective.startswith("ddpm"):
      def eps_fn(x, t):
        out = guided(params, x, t.astype(jnp.float32), y)
        return out if objective == "ddpm_eps" else diff.eps_from_v(x, out, alpha_bar[t])
      eta = 1.0 if sampler == "ddpm" else float(s.eta)
      steps = int(s.steps)  # ddpm with steps < T: ancestral steps over a strided subsequence
      x = diff.ddim_sample(eps_fn, alpha_bar_np, noise, k_sample, steps, eta, clip=1.0)
    elif objective == "edm":
      def denoise_fn(x, sigma):
        return diff.edm_denoise(lambda xi, cn: guided(params, xi, 250.0 * cn, y), x, sigma, sd)
      x = diff.edm_sample(denoise_fn, noise, int(s.steps), sampler == "heun", s.sigma_min,
                          s.sigma_max, s.rho)
    else:
      x = diff.flow_sample(lambda xi, t: guided(params, xi, 1000.0 * t, y), noise, int(s.steps),
                           sampler == "heun")
    return jnp.clip(x, -1.0, 1.0)

  fixed_key = jax.random.PRNGKey(config.seed + 1)
  fixed_y = fixed_labels(config.num_samples, num_classes) if num_classes else None

  def sample(state: DiffusionState, batch):
    """The grid from fixed noise (EMA weights when enabled); conditional: row r is class r."""
    del batch
    return {"samples": samples.Images(draw(sampling_params(state), fixed_key, fixed_y,
                                           config.num_samples))}

  def generate(state: DiffusionState, rng, n: int):
    """n samples (EMA weights when enabled); conditional: labels uniform over the classes."""
    y = (jax.random.randint(jax.random.fold_in(rng, 1), (n,), 0, num_classes, jnp.int32)
         if num_classes else None)
    return samples.Images(draw(sampling_params(state), rng, y, n))

  def generate_labelled(state: DiffusionState, rng, labels):
    """Images of the classes ``labels`` int32 [n] (guidance, sampler and EMA weights as
    configured); the same noise as ``generate(state, rng, n)``, which draws its labels apart."""
    return samples.Images(draw(sampling_params(state), rng, labels.astype(jnp.int32),
                               labels.shape[0]))

  task = Task(init=init, train_step=train_step, eval_step=eval_step, sample=sample,
              finite_metrics=("loss",), unit="images", generate=generate,
              num_classes=num_classes, generate_labelled=generate_labelled if num_classes else None)
  return task


def labelled_samples(config, state: DiffusionState, rng: jax.Array, labels: jax.Array) -> jax.Array:
  """float32 [N, S, S, C] in [-1, 1] of the classes ``labels`` int32 [N] (guidance, sampler and
  EMA weights as configured): ``Task.generate_labelled``'s images, for per-class checks under a
  classifier."""
  if not int(config.model.get("num_classes", None) or 0):
    raise ConfigError("labelled samples need a class-conditional model; this run has "
                      "model.num_classes=0")
  return make_task(config).generate_labelled(state, rng, labels).images
