"""Continue a prompt from a language-model run's checkpoint: the library side of
``python -m genai_jax.sample_lm`` (kept out of the CLI module, which defines absl flags, and out
of ``generate.py``, which the LM task itself imports)."""

import jax
import jax.numpy as jnp


def continue_prompt(config, workdir: str, prompt: str, num_tokens: int, *, num_samples: int = 1,
                    temperature: float = 0.8, top_k: int = 0, top_p: float = 0.95,
                    iterations: int = 16, seed: int = 0, step=None) -> list[str]:
  """Restores ``workdir``'s checkpoint of the language-model run ``config`` and returns
  ``num_samples`` continuations (each the prompt followed by ``num_tokens`` generated
  characters/bytes). Bad arguments raise a one-line ``ConfigError`` before anything loads."""
  import numpy as np
  from genai_jax import tasks
  from genai_jax.errors import ConfigError
  from genai_jax.tasks import lm as lm_task
  from genai_jax.train import sharding
  from genai_jax.train import state as state_lib

  for name, value in (("num_tokens", num_tokens), ("num_samples", num_samples),
                      ("iterations", iterations)):
    if value <= 0:
      raise ConfigError(f"--{name}={value} must be positive")
  if temperature < 0 or not 0 < top_p <= 1 or top_k < 0:
    raise ConfigError(f"need --temperature >= 0, 0 < --top_p <= 1 and --top_k >= 0 (got "
                      f"{temperature}, {top_p}, {top_k})")
  if tasks.family_name(config.task) != "lm":
    raise ConfigError(f"{workdir} is a {config.task!r} run; sampling prompts needs a language "
                      f"model run")
  state_lib.check_has_checkpoints(workdir, step)
  lm = lm_task.build(config)
  ids = lm.vocab.encode(prompt or "\n")
  if lm.kind != "gru_lm" and len(ids) + num_tokens > lm.seq_len:
    raise ConfigError(f"prompt ({len(ids)} tokens) + --num_tokens={num_tokens} exceeds the model's "
                      f"context of {lm.seq_len}; lower --num_tokens or shorten --prompt")
  mesh = sharding.make_mesh(config.mesh.data, config.mesh.fsdp)
  _, state = state_lib.restore(config, workdir, step, mesh, task=tasks.get_task(config))
  sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p, iterations=iterations)
  fn = jax.jit(lambda params, prompt, rng: lm.continue_fn(params, prompt, num_tokens, rng,
                                                          **sampling))
  prompts = jnp.asarray(np.tile(ids[None], (num_samples, 1)))
  out = np.asarray(fn(state.params, prompts, jax.random.PRNGKey(seed)))
  return [lm.vocab.decode(row) for row in out]
