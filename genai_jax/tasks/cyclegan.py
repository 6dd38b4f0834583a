"""CycleGAN family (Zhu et al. 2017): unpaired translation between image domains A and B.

Two ResNet generators (G: A -> B, F: B -> A) and two 70x70 PatchGAN discriminators (D_A on
domain A, D_B on domain B), trained as the authors' PyTorch code (``objectives.cyclegan`` for the
losses). One step, from the same starting state:

  * G and F: fakes G(a), F(b), cycles F(G(a)), G(F(b)) and identities G(b), F(a); the least-squares
    adversarial terms through the current D_A, D_B, plus lambda * cycle L1 and
    lambda_identity * lambda * identity L1; one Adam step on (G, F).
  * D_A and D_B: each sees its real batch against fakes drawn from a history pool of the last
    ``pool_size`` (50) fakes of its domain (Shrivastava et al.): while the pool fills, every new
    fake is stored and shown; once full, each new fake is, with probability 1/2, swapped with a
    random stored one (which D sees instead) or shown as is. One Adam step on (D_A, D_B).

Both Adam optimisers (2e-4, betas 0.5/0.999) keep the rate constant for the first half of
training and decay it linearly to zero over the second (``optimizer.decay_fraction``). The
pools are part of the state, so checkpoints resume exactly.

The batch is ``data.kind='unpaired'``: ``{'image_a', 'image_b'}`` drawn independently. Eval
reports, on held-out images of both domains, the cycle reconstruction error (mean L1 in [-1, 1]
units and PSNR), the identity error and the held-out D losses. The sample grid shows rows
``a, G(a), F(G(a)), b, F(b), G(F(b))``. There are no unconditional samples (``generate`` is
None), so the image metrics of ``genai_jax.eval`` do not apply.
"""

import functools
import json
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from genai_jax import samples
from genai_jax.errors import ConfigError
from genai_jax.models import cyclegan as models
from genai_jax.models import registry
from genai_jax.objectives import cyclegan as losses
from genai_jax.tasks.base import Task
from genai_jax.train import optimizers, sharding

SHARED_KEYS = ("image_size", "channels", "dtype")


def _build(s):
  res_blocks = s["res_blocks"] if s["res_blocks"] is not None else models.default_res_blocks(
      s["image_size"])
  if s["image_size"] % 4:
    raise ConfigError(f"CycleGAN image_size={s['image_size']} must be a multiple of 4 (two 2x "
                      f"downsamplings); set model.image_size and data.image_size",
                      keys=("model.image_size",))
  for key in ("norm", "upsample_impl"):
    allowed = models.NORMS if key == "norm" else models.UPSAMPLE_IMPLS
    if s[key] not in allowed:
      raise ConfigError(f"unknown model.{key} {s[key]!r}; set model.{key} to one of "
                        f"{list(allowed)}", keys=(f"model.{key}",))
  models.patch_grid(s["image_size"], s["d_layers"])  # an image too small for D fails here
  gen = models.ResnetGenerator(s["channels"], s["g_width"], res_blocks, s["norm"],
                               s["upsample_impl"], s["dtype"])
  disc = models.PatchDiscriminator(s["d_width"], s["d_layers"], s["norm"], s["dtype"])
  return gen, disc


# name -> (G, D) builder (both directions share the architecture) and the keys it reads.
MODELS = {
    # res_blocks None: the paper's 9 for 256x256 images, 6 for 128x128 and smaller.
    "resnet_patchgan": registry.Entry(
        _build, {"g_width": 64, "d_width": 64, "res_blocks": None, "d_layers": 3,
                 "norm": "instance", "upsample_impl": "subpixel"}),
}


def model_settings(config) -> tuple[registry.Entry, dict]:
  """(entry, settings) of ``config.model`` in ``MODELS`` (see ``registry.settings``)."""
  return registry.settings("CycleGAN", MODELS, config.model, SHARED_KEYS)


def make_models(config):
  """(generator, discriminator) modules of ``config.model``; each is used twice (A->B, B->A)."""
  entry, settings = model_settings(config)
  return entry.build(settings)


@flax.struct.dataclass
class CycleGANState:
  """Both generators and discriminators, their optimisers and the two fake-image pools."""
  step: jax.Array  # int32 scalar
  rng: jax.Array  # uint32[2]; per-step keys are fold_in(rng, step)
  g_params: Any  # {'ab': G (A -> B), 'ba': F (B -> A)}
  g_opt_state: Any
  d_params: Any  # {'a': D_A (judges domain A), 'b': D_B}
  d_opt_state: Any
  pool_a: jax.Array  # float32 [pool_size, S, S, C]: past fakes F(b) of domain A
  pool_b: jax.Array  # past fakes G(a) of domain B
  pool_fill: jax.Array  # int32 [2]: how many slots of (pool_a, pool_b) hold a fake


def pool_query(pool: jax.Array, fill: jax.Array, images: jax.Array, key: jax.Array):
  """The official ImagePool.query, image by image: (pool, fill, images to show D).

  Args:
    pool: [P, ...] stored fakes. fill: int32 scalar, slots filled so far. images: [B, ...] new
    fakes (no gradient is taken through them). key: PRNG key.

  Returns:
    (new pool, new fill, [B, ...] images for D). While fill < P, each new image is stored in the
    next slot and shown. Once full, each is with probability 1/2 shown as is, else stored in a
    uniformly random slot whose old image is shown instead. P = 0 shows the new images.
  """
  size = pool.shape[0]
  if size == 0:
    return pool, fill, images

  def one(carry, xs):
    pool, fill = carry
    image, k = xs
    k_swap, k_slot = jax.random.split(k)
    filling = fill < size
    swap = jax.random.uniform(k_swap) > 0.5
    slot = jnp.where(filling, fill, jax.random.randint(k_slot, (), 0, size))
    old = pool[slot]
    pool = pool.at[slot].set(jnp.where(filling | swap, image, old))
    shown = jnp.where(swap & ~filling, old, image)
    return (pool, fill + filling.astype(fill.dtype)), shown

  keys = jax.random.split(key, images.shape[0])
  (pool, fill), shown = jax.lax.scan(one, (pool, fill), (images.astype(pool.dtype), keys))
  return pool, fill, shown


SCHEDULE = "constant_then_linear"  # the family's default optimizer.schedule


def learning_rate(opt, num_steps: int):
  """Constant ``opt.learning_rate`` for the first (1 - decay_fraction) of ``num_steps``, then
  linear to 0 at ``num_steps`` (the paper: 100 epochs constant, 100 decaying)."""
  return optimizers.learning_rate(opt, num_steps, SCHEDULE)


def make_optimizer(config) -> optax.GradientTransformation:
  """Adam at ``learning_rate`` (``train.optimizers.build``); G and D each get one."""
  return optimizers.build(config.optimizer, int(config.num_steps), SCHEDULE, names=("adam",),
                          family="CycleGAN")


def sample_rows(n: int) -> int:
  """Rows of six images that the loop's square grid (ceil(sqrt(N)) columns) lays out exactly as
  rows ``a, G(a), F(G(a)), b, F(b), G(F(b))``: 1 (shown as two rows of three), 5 or 6; 2-4
  available pairs are padded with blank rows to 5."""
  n = min(n, 6)
  return n if n in (1, 5, 6) else 5


def make_task(config) -> Task:
  """The CycleGAN task for ``config``; the same settings give the same Task object, so rebuilding
  it (a resumed run, a test) reuses the jit compilations."""
  settings = {k: config[k].to_dict() if hasattr(config[k], "to_dict") else config[k]
              for k in ("model", "objective", "optimizer")}
  settings["num_samples"] = config.get("num_samples", 6)
  # num_steps shapes only the decay schedule: without one, runs of any length share a task.
  decays = (optimizers.reads_num_steps(config.optimizer, SCHEDULE)
            and float(config.optimizer.get("decay_fraction", 0.5)) > 0)
  settings["num_steps"] = int(config.num_steps) if decays else 0
  return _make_task(json.dumps(settings, sort_keys=True))


@functools.lru_cache(maxsize=16)
def _make_task(settings_json: str) -> Task:
  config = ml_collections.ConfigDict(json.loads(settings_json))  # only what the task may read
  gen, disc = make_models(config)
  o, m = config.objective, config.model
  adv = losses.adversarial(o.loss)
  lam, lam_idt, pool_size = float(o.lambda_cycle), float(o.lambda_identity), int(o.pool_size)
  if lam < 0 or lam_idt < 0 or pool_size < 0:
    raise ConfigError(f"objective.lambda_cycle={lam}, lambda_identity={lam_idt} and "
                      f"pool_size={pool_size} must be >= 0")
  g_tx, d_tx = make_optimizer(config), make_optimizer(config)
  size, channels = m.image_size, m.channels
  num_rows = int(config.num_samples)

  def G(params, x):  # noqa: N802 (the paper's names)
    return gen.apply({"params": params}, x)

  def D(params, x):  # noqa: N802
    return disc.apply({"params": params}, x)

  def init(rng):
    keys = jax.random.split(rng, 5)
    x = jnp.zeros((1, size, size, channels))
    g_params = {"ab": gen.init(keys[0], x)["params"], "ba": gen.init(keys[1], x)["params"]}
    d_params = {"a": disc.init(keys[2], x)["params"], "b": disc.init(keys[3], x)["params"]}
    pool = jnp.zeros((pool_size, size, size, channels), jnp.float32)
    return CycleGANState(step=jnp.zeros((), jnp.int32), rng=keys[4], g_params=g_params,
                         g_opt_state=g_tx.init(g_params), d_params=d_params,
                         d_opt_state=d_tx.init(d_params), pool_a=pool, pool_b=pool,
                         pool_fill=jnp.zeros((2,), jnp.int32))

  def g_loss_fn(g_params, d_params, real_a, real_b):
    # FSDP: weights gathered where used, gradients reduce-scattered (train.sharding.gathered).
    g_params, d_params = sharding.gathered(g_params), sharding.gathered(d_params)
    fake_b = G(g_params["ab"], real_a)
    fake_a = G(g_params["ba"], real_b)
    terms = {"adv_ab": adv.g_loss(D(d_params["b"], fake_b)),
             "adv_ba": adv.g_loss(D(d_params["a"], fake_a)),
             "cycle_a": losses.l1(G(g_params["ba"], fake_b), real_a),
             "cycle_b": losses.l1(G(g_params["ab"], fake_a), real_b)}
    total = terms["adv_ab"] + terms["adv_ba"] + lam * (terms["cycle_a"] + terms["cycle_b"])
    if lam_idt > 0:  # G should leave B images alone, F leave A images alone
      terms["idt_b"] = losses.l1(G(g_params["ab"], real_b), real_b)
      terms["idt_a"] = losses.l1(G(g_params["ba"], real_a), real_a)
      total = total + lam_idt * lam * (terms["idt_a"] + terms["idt_b"])
    return total, (terms, fake_a, fake_b)

  def d_loss_fn(d_params, real_a, real_b, shown_a, shown_b):
    d_params = sharding.gathered(d_params)
    d_a = adv.d_loss(D(d_params["a"], real_a), D(d_params["a"], shown_a))
    d_b = adv.d_loss(D(d_params["b"], real_b), D(d_params["b"], shown_b))
    return d_a + d_b, {"d_a": d_a, "d_b": d_b}

  def train_step(state: CycleGANState, batch):
    real_a, real_b = batch["image_a"], batch["image_b"]
    key_a, key_b = jax.random.split(jax.random.fold_in(state.rng, state.step))
    (g_loss, (terms, fake_a, fake_b)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
        state.g_params, state.d_params, real_a, real_b)
    # D trains on the fakes of this step's (pre-update) generators, mixed with the pools.
    pool_a, fill_a, shown_a = pool_query(state.pool_a, state.pool_fill[0],
                                         jax.lax.stop_gradient(fake_a), key_a)
    pool_b, fill_b, shown_b = pool_query(state.pool_b, state.pool_fill[1],
                                         jax.lax.stop_gradient(fake_b), key_b)
    (d_loss, d_terms), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
        state.d_params, real_a, real_b, shown_a, shown_b)
    g_updates, g_opt_state = g_tx.update(g_grads, state.g_opt_state, state.g_params)
    d_updates, d_opt_state = d_tx.update(d_grads, state.d_opt_state, state.d_params)
    new_state = state.replace(
        step=state.step + 1, g_params=optax.apply_updates(state.g_params, g_updates),
        g_opt_state=g_opt_state, d_params=optax.apply_updates(state.d_params, d_updates),
        d_opt_state=d_opt_state, pool_a=pool_a, pool_b=pool_b,
        pool_fill=jnp.stack([fill_a, fill_b]))
    return new_state, {"g_loss": g_loss, "d_loss": d_loss, **terms, **d_terms}

  def eval_step(state: CycleGANState, batch):
    """Held-out figures, batch means: cycle_l1_{a,b} (mean |F(G(a)) - a| in [-1, 1] units) and
    cycle_l1 (their mean), cycle_psnr_{a,b} (dB), idt_l1_{a,b}, and D_A/D_B's losses on the
    held-out reals against the current fakes (no pool)."""
    real_a, real_b = batch["image_a"], batch["image_b"]
    g = state.g_params
    fake_b, fake_a = G(g["ab"], real_a), G(g["ba"], real_b)
    rec_a, rec_b = G(g["ba"], fake_b), G(g["ab"], fake_a)
    out = {"cycle_l1_a": losses.l1(rec_a, real_a), "cycle_l1_b": losses.l1(rec_b, real_b),
           "cycle_psnr_a": losses.psnr(rec_a, real_a).mean(),
           "cycle_psnr_b": losses.psnr(rec_b, real_b).mean(),
           "idt_l1_a": losses.l1(G(g["ba"], real_a), real_a),
           "idt_l1_b": losses.l1(G(g["ab"], real_b), real_b),
           "d_a": adv.d_loss(D(state.d_params["a"], real_a), D(state.d_params["a"], fake_a)),
           "d_b": adv.d_loss(D(state.d_params["b"], real_b), D(state.d_params["b"], fake_b))}
    out["cycle_l1"] = 0.5 * (out["cycle_l1_a"] + out["cycle_l1_b"])
    return out

  def sample(state: CycleGANState, batch):
    """{'cycles': Images}: rows a | G(a) | F(G(a)) | b | F(b) | G(F(b)) of the first eval pairs."""
    n = min(num_rows, batch["image_a"].shape[0])
    a, b = batch["image_a"][:n], batch["image_b"][:n]
    g = state.g_params
    fake_b, fake_a = G(g["ab"], a), G(g["ba"], b)
    rows = jnp.stack([a, fake_b, G(g["ba"], fake_b), b, fake_a, G(g["ab"], fake_a)], axis=1)
    rows = rows.reshape(6 * n, size, size, channels)
    blank = -jnp.ones((6 * (sample_rows(n) - n), size, size, channels), rows.dtype)
    return {"cycles": samples.Images(jnp.concatenate([rows, blank]))}

  return Task(init=init, train_step=train_step, eval_step=eval_step, sample=sample,
              finite_metrics=("g_loss", "d_loss"), unit="images", items_per_example=2)
