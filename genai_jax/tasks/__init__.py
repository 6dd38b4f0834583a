"""Model families as pure functions the shared loop calls; see ``base.Task``."""

from genai_jax.tasks.base import Task
from genai_jax.errors import ConfigError


def get_task(config) -> Task:
  """Builds the task named by ``config.task`` (imported lazily so one family never loads another)."""
  if config.task == "gan":
    from genai_jax.tasks import gan
    return gan.make_task(config)
  if config.task in ("causal_lm", "masked_lm", "gru_lm"):
    from genai_jax.tasks import lm
    return lm.make_task(config)
  if config.task == "vae":
    from genai_jax.tasks import vae
    return vae.make_task(config)
  if config.task == "cyclegan":
    from genai_jax.tasks import cyclegan
    return cyclegan.make_task(config)
  if config.task == "diffusion":
    from genai_jax.tasks import diffusion
    return diffusion.make_task(config)
  raise ConfigError(f"unknown task {config.task!r}; set --config.task to one of ['gan', 'vae', 'causal_lm', 'masked_lm', 'gru_lm', 'cyclegan', 'diffusion']")


def check_model(config) -> None:
  """Resolves ``config.model`` against its family's model registry without building anything:
  an unknown model, a key the chosen model does not read or a bad dtype is a ConfigError here,
  before any data is read or anything compiled."""
  from genai_jax.models import registry
  if config.task == "gan":
    from genai_jax.tasks import gan
    registry.settings("GAN", gan.MODELS, config.model, gan.SHARED_KEYS)
  elif config.task in ("causal_lm", "masked_lm", "gru_lm"):
    from genai_jax.tasks import lm
    registry.settings("LM", lm.MODELS, config.model, lm.SHARED_KEYS, name=config.task,
                      name_key="task")
  elif config.task == "vae":
    from genai_jax.tasks import vae
    registry.settings("VAE", vae.MODELS, config.model, vae.SHARED_KEYS)
  elif config.task == "cyclegan":
    from genai_jax.tasks import cyclegan
    registry.settings("CycleGAN", cyclegan.MODELS, config.model, cyclegan.SHARED_KEYS)
  elif config.task == "diffusion":
    from genai_jax.tasks import diffusion
    registry.settings("diffusion", diffusion.MODELS, config.model, diffusion.SHARED_KEYS)
