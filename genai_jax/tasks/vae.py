"""VAE family (Kingma & Welling 2013): MLP and conv VAEs trained on the negative ELBO.

One step: map pixels from [-1, 1] to [0, 1], binarize them if the likelihood is Bernoulli
(static threshold, or dynamic: a fresh Bernoulli draw per step), encode to (mean, logvar), draw
z = mean + sigma * eps, decode, and minimise -ELBO = -log p(x|z) + KL(q(z|x) || N(0, I)) with
the KL in closed form. Every figure is in nats per example (summed over pixels and latents).

Evaluation reports the negative ELBO and the k-sample importance-weighted bound on -log p(x)
(``nll_k``, Burda et al. 2015), both from the same k samples per example, on a test set that is
binarized with a fixed key (so figures are comparable across evals and runs).
"""

import functools
import json
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from genai_jax import data, samples
from genai_jax.errors import ConfigError
from genai_jax.models import registry
from genai_jax.models import vae as vae_models
from genai_jax.objectives import vae as vae_obj
from genai_jax.tasks.base import Task
from genai_jax.train import optimizers, sharding

# bernoulli: 0/1 pixels, a likelihood in nats. gaussian: continuous pixels, a learned per-pixel
# variance (a density). bce: the seeds' binary cross-entropy on grey levels in [0, 1] (MNIST / 255)
# and mse: the seeds' summed squared error of a sigmoid mean; both are the seeds' reconstruction
# losses, not normalised likelihoods, so with them neg_elbo and nll_k are the seeds' objective
# values, not bounds on -log p(x) in nats.
LIKELIHOODS = ("bernoulli", "gaussian", "bce", "mse")
BINARIZE = ("static", "dynamic", "none")
_EVAL_BINARIZE_KEY = 0  # the test set's dynamic binarization: the same for every run and eval


@flax.struct.dataclass
class VAEState:
  step: jax.Array  # int32 scalar
  rng: jax.Array  # uint32[2] base key; per-step keys are fold_in(rng, step)
  params: Any
  opt_state: Any


def _check(config) -> None:
  o, m = config.objective, config.model
  if o.likelihood not in LIKELIHOODS:
    raise ConfigError(f"unknown likelihood {o.likelihood!r}; set objective.likelihood to "
                      f"one of {list(LIKELIHOODS)}", keys=("objective.likelihood",))
  if o.binarize not in BINARIZE:
    raise ConfigError(f"unknown binarize {o.binarize!r}; set objective.binarize to one of "
                      f"{list(BINARIZE)}", keys=("objective.binarize",))
  if o.likelihood == "bernoulli" and o.binarize == "none":
    raise ConfigError("a Bernoulli likelihood needs 0/1 pixels; set objective.binarize="
                      "static or dynamic (or objective.likelihood=gaussian)",
                      keys=("objective.binarize", "objective.likelihood"))
  if o.likelihood == "gaussian" and o.binarize != "none":
    raise ConfigError("a Gaussian likelihood models continuous pixels; set "
                      "objective.binarize=none", keys=("objective.binarize",))
  if int(o.iw_samples) < 1:
    raise ConfigError(f"objective.iw_samples={o.iw_samples} must be at least 1",
                      keys=("objective.iw_samples",))
  if float(o.beta) < 0:
    raise ConfigError(f"objective.beta={o.beta} must be >= 0", keys=("objective.beta",))
  model_settings(config)  # unknown name or a key the model does not read
  make_optimizer(config)  # an unknown optimizer or schedule fails here


SHARED_KEYS = ("image_size", "channels", "latent_size")  # read by every VAE model

# name -> the model keys it reads, with their defaults; the builder is vae_models.make_vae.
MODELS = {
    # decoder_hidden None: the encoder's hidden widths reversed (a mirror).
    "mlp": registry.Entry(lambda s: vae_models.make_vae("mlp", **s),
                          {"hidden": (500,), "decoder_hidden": None, "activation": "relu"}),
    "conv": registry.Entry(lambda s: vae_models.make_vae("conv", **s), {"width": 32, "dense": 256}),
}


def model_settings(config) -> tuple[registry.Entry, dict]:
  """(entry, settings) of ``config.model`` in ``MODELS`` (see ``registry.settings``)."""
  return registry.settings("VAE", MODELS, config.model, SHARED_KEYS)


def make_model(config) -> vae_models.VAE:
  """The VAE of ``config.model`` (looked up in ``MODELS``); the decoder emits two parameters per
  pixel for the Gaussian likelihood (mean, log-variance) and one (a logit) otherwise."""
  entry, settings = model_settings(config)
  out_params = 2 if config.objective.likelihood == "gaussian" else 1
  return entry.build({**settings, "out_params": out_params})


def make_optimizer(config) -> optax.GradientTransformation:
  """Adam at a constant rate unless ``optimizer.schedule`` says otherwise (``train.optimizers``)."""
  return optimizers.build(config.optimizer, int(config.get("num_steps", 0)), "constant",
                          names=("adam",), family="VAE")


def _square_side(n: int, cap: int = 8) -> int:
  """The largest even side c <= cap with c * c / 2 <= n: a c x c grid of c/2 row pairs."""
  c = min(cap, int((2 * n) ** 0.5))
  return max(2, c - c % 2)


def make_task(config) -> Task:
  """The VAE task for ``config``; the same settings give the same Task object, so rebuilding it
  (a resumed run, a test, a benchmark in one process) reuses the jit compilations."""
  _check(config)
  settings = {k: config[k].to_dict() if hasattr(config[k], "to_dict") else config[k]
              for k in ("seed", "num_samples", "model", "objective", "optimizer")}
  settings["batch_key"] = data.batch_key(config.data)
  # num_steps shapes only a schedule that reads it: without one, runs of any length share a task.
  if optimizers.reads_num_steps(config.optimizer, "constant"):
    settings["num_steps"] = int(config.num_steps)
  return _make_task(json.dumps(settings, sort_keys=True))


@functools.lru_cache(maxsize=16)
def _make_task(settings_json: str) -> Task:
  config = ml_collections.ConfigDict(json.loads(settings_json))  # only what the task may read
  model = make_model(config)
  o, m = config.objective, config.model
  tx = make_optimizer(config)
  size, channels, latent = m.image_size, m.channels, m.latent_size
  gaussian = o.likelihood == "gaussian"
  beta = float(o.beta)  # KL weight of the training loss (beta-VAE; 1: the ELBO)
  key = config.batch_key  # where the pipeline's batches hold the images

  def binarize(x, key):
    """x float32 [B, S, S, C] in [0, 1] -> the data the likelihood models (0/1 for Bernoulli)."""
    if o.binarize == "static":  # already-binary data (binarized_mnist) passes unchanged
      return (x > 0.5).astype(jnp.float32)
    if o.binarize == "dynamic":  # pixel ~ Bernoulli(intensity)
      return jax.random.bernoulli(key, x).astype(jnp.float32)
    return x

  def to_unit(images):
    return (images.astype(jnp.float32) + 1.0) * 0.5

  def encode(params, x):
    return model.apply({"params": params}, x, method="encode")

  def log_likelihood(params, z, x):
    """log p(x|z) in nats: z [..., B, D], x [B, S, S, C] -> [..., B]."""
    out = model.apply({"params": params}, z, method="decode")
    if o.likelihood in ("bernoulli", "bce"):  # the same formula; bce on grey levels (see LIKELIHOODS)
      return vae_obj.bernoulli_log_likelihood(out, x)
    if o.likelihood == "mse":
      return -vae_obj.squared_error(jax.nn.sigmoid(out), x)
    mean, raw_logvar = jnp.split(out, 2, axis=-1)
    return vae_obj.gaussian_log_likelihood(mean, vae_models.bound_logvar(raw_logvar), x)

  def decode_mean(params, z):
    """E[x|z] as images in [-1, 1]: float32 [N, S, S, C]."""
    out = model.apply({"params": params}, z, method="decode")
    mean = jnp.clip(out[..., :channels], 0.0, 1.0) if gaussian else jax.nn.sigmoid(out)
    return mean * 2.0 - 1.0

  def init(rng):
    param_key, state_key = jax.random.split(rng)
    params = model.init(param_key, jnp.zeros((2, size, size, channels), jnp.float32))["params"]
    return VAEState(step=jnp.zeros((), jnp.int32), rng=state_key, params=params,
                    opt_state=tx.init(params))

  def loss_fn(params, x, key):
    params = sharding.gathered(params)  # FSDP: weights gathered, gradients reduce-scattered
    mean, logvar = encode(params, x)
    z = vae_obj.reparameterize(key, mean, logvar)
    terms = vae_obj.elbo(log_likelihood(params, z, x), mean, logvar)
    loss = (terms["recon"] + beta * terms["kl"]).mean()  # -ELBO (nats per example) at beta = 1
    return loss, {"loss": loss, "kl": terms["kl"].mean(), "recon": terms["recon"].mean()}

  def train_step(state: VAEState, batch):
    bin_key, eps_key = jax.random.split(jax.random.fold_in(state.rng, state.step))
    x = binarize(to_unit(batch[key]), bin_key)
    grads, metrics = jax.grad(loss_fn, has_aux=True)(state.params, x, eps_key)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

  def eval_data(state, batch):
    return binarize(to_unit(batch[key]), jax.random.PRNGKey(_EVAL_BINARIZE_KEY))

  def eval_step(state: VAEState, batch):
    """{'neg_elbo', 'nll_k', 'kl', 'recon'}: float32 scalars, nats per example (batch mean)."""
    x = eval_data(state, batch)
    mean, logvar = encode(state.params, x)
    iw_key = jax.random.split(state.rng)[1]  # fixed: evals differ only by the parameters
    log_w, log_px = vae_obj.importance_log_weights(
        iw_key, x, mean, logvar, lambda z, xx: log_likelihood(state.params, z, xx),
        o.iw_samples, o.iw_chunk)
    kl = vae_obj.gaussian_kl(mean, logvar)
    recon = -log_px.mean(axis=0)  # E_q[-log p(x|z)], averaged over the same k samples
    return {"neg_elbo": (recon + kl).mean(), "nll_k": -vae_obj.iwae_bound(log_w).mean(),
            "kl": kl.mean(), "recon": recon.mean()}

  fixed_z = jax.random.normal(jax.random.PRNGKey(config.seed + 1), (config.num_samples, latent))

  def sample(state: VAEState, batch):
    """Prior samples, reconstructions (rows of inputs above their reconstructions), latent
    interpolations between pairs of eval images, and the 2-D latent manifold if latent_size == 2."""
    x = eval_data(state, batch)
    mean, _ = encode(state.params, x)
    out = {"samples": decode_mean(state.params, fixed_z)}

    c = _square_side(x.shape[0])  # c x c grids: the loop lays out ceil(sqrt(N)) columns
    n = c * c // 2
    originals = x[:n] * 2.0 - 1.0
    recons = decode_mean(state.params, mean[:n])
    pairs = jnp.stack([originals.reshape(c // 2, c, size, size, channels),
                       recons.reshape(c // 2, c, size, size, channels)], axis=1)
    out["reconstructions"] = pairs.reshape(c * c, size, size, channels)

    c = min(8, x.shape[0] // 2)
    t = jnp.linspace(0.0, 1.0, c)[None, :, None]
    z = (1.0 - t) * mean[:c, None] + t * mean[c:2 * c, None]  # [c rows, c steps, D]
    out["interpolations"] = decode_mean(state.params, z.reshape(c * c, latent))

    if latent == 2:  # decode a grid of N(0, I) quantiles, as Kingma & Welling's figure 4
      q = jax.scipy.special.ndtri(jnp.linspace(0.05, 0.95, 15))
      grid = jnp.stack(jnp.meshgrid(q, -q, indexing="xy"), axis=-1).reshape(-1, 2)
      out["manifold"] = decode_mean(state.params, grid)
    return {k: samples.Images(v) for k, v in out.items()}

  def generate(state: VAEState, rng, n: int):
    """n prior samples z ~ N(0, I) decoded to E[x|z] (as the ``samples`` grid)."""
    return samples.Images(decode_mean(state.params, jax.random.normal(rng, (n, latent))))

  return Task(init=init, train_step=train_step, eval_step=eval_step, sample=sample,
              finite_metrics=("loss", "kl"), unit="images", generate=generate)
