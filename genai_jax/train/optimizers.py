"""The one optimiser builder every family uses: a config's ``optimizer`` block -> optax.

The block's keys (each family's configs set the ones its schedule reads):

  name               'adam' | 'adamw' (AdamW decays matrices and embeddings only: ndim >= 2)
  learning_rate, b1, b2
  weight_decay       adamw only
  grad_clip          when the block has it: clip the global gradient norm to it first
  schedule           how the learning rate moves over ``num_steps`` updates (SCHEDULES); a
                     block without one gets its family's default
  warmup_steps / warmup, min_learning_rate, decay_steps, decay_fraction: schedule settings

Families name their default schedule (GAN and VAE 'constant', LM 'warmup_cosine', CycleGAN
'constant_then_linear', diffusion 'warmup'), so their configs, which predate the ``schedule``
key, build exactly the optimiser they did.
"""

from typing import Any, Mapping

import jax
import optax

from genai_jax.errors import ConfigError

# name -> what the learning rate does over the ``num_steps`` updates of the network.
SCHEDULES = {
    "constant": "learning_rate throughout",
    "linear": "learning_rate linearly to 0 at num_steps (SNGAN/Mimicry)",
    "warmup": "0 linearly to learning_rate over warmup steps, then constant",
    "warmup_cosine": ("0 linearly to learning_rate over warmup_steps, then cosine to "
                      "min_learning_rate at decay_steps (0: num_steps), as nanoGPT"),
    "constant_then_linear": ("learning_rate for the first (1 - decay_fraction) of num_steps, "
                             "then linearly to 0 (CycleGAN)"),
}
NAMES = ("adam", "adamw")


def _get(opt: Mapping, key: str, default: Any = None) -> Any:
  value = opt.get(key, None)
  return default if value is None else value


def _warmup_steps(opt: Mapping) -> int:
  # LM configs call it warmup_steps, diffusion configs warmup.
  return int(_get(opt, "warmup_steps", _get(opt, "warmup", 0)))


def learning_rate(opt: Mapping, num_steps: int, schedule: str = "constant", *,
                  key: str = "optimizer"):
  """The learning rate (a float or an optax schedule of the update count) of ``opt`` over
  ``num_steps`` updates; ``opt['schedule']``, when set, overrides the default ``schedule``."""
  schedule = _get(opt, "schedule", schedule)
  lr = opt["learning_rate"]
  if schedule == "constant":
    return lr
  if schedule == "linear":
    return optax.linear_schedule(lr, 0.0, max(int(num_steps), 1))
  if schedule == "warmup":
    return optax.linear_schedule(0.0, lr, max(_warmup_steps(opt), 1))
  if schedule == "warmup_cosine":
    warmup = _warmup_steps(opt)
    return optax.warmup_cosine_decay_schedule(
        0.0, lr, warmup, max(_get(opt, "decay_steps", 0) or num_steps, warmup + 1),
        opt["min_learning_rate"])
  if schedule == "constant_then_linear":
    fraction = float(_get(opt, "decay_fraction", 0.5))
    if not 0.0 <= fraction <= 1.0:
      raise ConfigError(f"{key}.decay_fraction={fraction} must be in [0, 1]",
                        keys=(f"{key}.decay_fraction",))
    decay_steps = int(round(num_steps * fraction))
    if decay_steps == 0:
      return float(lr)
    return optax.join_schedules([optax.constant_schedule(float(lr)),
                                 optax.linear_schedule(float(lr), 0.0, decay_steps)],
                                [num_steps - decay_steps])
  raise ConfigError(f"unknown {key}.schedule {schedule!r}; set {key}.schedule to one of "
                    f"{list(SCHEDULES)}", keys=(f"{key}.schedule",))


def reads_num_steps(opt: Mapping, schedule: str = "constant") -> bool:
  """Whether ``opt``'s learning rate depends on the number of updates (so a task cached across
  runs must key on it)."""
  return _get(opt, "schedule", schedule) not in ("constant", "warmup")


def _decay_mask(params):
  """Weight decay on matrices and embeddings only, not biases or LayerNorm scales."""
  return jax.tree.map(lambda x: x.ndim >= 2, params)


def build(opt: Mapping, num_steps: int, schedule: str = "constant", *,
          names: tuple[str, ...] = NAMES, family: str = "",
          key: str = "optimizer") -> optax.GradientTransformation:
  """The optimiser of the config block ``opt`` (keys: the module docstring) for ``num_steps``
  updates: [global-norm clipping when ``opt`` has ``grad_clip``, then] Adam or AdamW at the
  learning rate of ``learning_rate(opt, num_steps, schedule)``. ``names``: the optimisers the
  family supports (another is a ConfigError naming ``key``.name); ``family`` labels messages."""
  name = opt["name"]
  if name not in names:
    label = f"{family} " if family else ""
    raise ConfigError(f"unknown {label}optimizer {name!r}; set {key}.name to "
                      f"{' or '.join(repr(n) for n in names)}", keys=(f"{key}.name",))
  lr = learning_rate(opt, num_steps, schedule, key=key)
  if name == "adamw":
    tx = optax.adamw(lr, b1=opt["b1"], b2=opt["b2"], weight_decay=opt["weight_decay"],
                     mask=_decay_mask)
  else:
    tx = optax.adam(lr, b1=opt["b1"], b2=opt["b2"])
  if opt.get("grad_clip", None) is not None:
    tx = optax.chain(optax.clip_by_global_norm(float(opt["grad_clip"])), tx)
  return tx
