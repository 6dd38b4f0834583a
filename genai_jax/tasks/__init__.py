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
  raise ConfigError(f"unknown task {config.task!r}; set --config.task to one of ['gan', 'vae', 'causal_lm', 'masked_lm', 'gru_lm']")
