"""Continue a prompt from a language-model checkpoint (compiled KV-cache decoding).

  python -m genai_jax.sample_lm --workdir=/tmp/lm_demo \
      --config=experiments/configs/gpt_shakespeare.py:demo --prompt="def " --num_tokens=100

Pass the ``--config`` (and overrides) the run was trained with. Causal and GRU models decode
incrementally (temperature, top-k, top-p); a masked LM fills ``--num_tokens`` [MASK]s after the
prompt by MaskGIT rounds (``--iterations``).
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(_ROOT, "experiments/configs/gpt_shakespeare.py"),
    "The training config (file:preset) of the checkpoint.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "The run's workdir (holds checkpoints/).")
_PROMPT = flags.DEFINE_string("prompt", "\n", "Text to continue.")
_NUM = flags.DEFINE_integer("num_tokens", 200, "New tokens per sample.")
_SAMPLES = flags.DEFINE_integer("num_samples", 1, "Independent continuations.")
_TEMP = flags.DEFINE_float("temperature", 0.8, "Softmax temperature (0: greedy).")
_TOP_K = flags.DEFINE_integer("top_k", 0, "Keep the k most likely tokens (0: all).")
_TOP_P = flags.DEFINE_float("top_p", 0.95, "Nucleus: keep the smallest set with this mass.")
_ITERS = flags.DEFINE_integer("iterations", 16, "MaskGIT rounds (masked LM only).")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")


def continue_prompt(config, workdir: str, prompt: str, num_tokens: int, *, num_samples: int = 1,
                    temperature: float = 0.8, top_k: int = 0, top_p: float = 0.95,
                    iterations: int = 16, seed: int = 0, step=None) -> list[str]:
  """Restores ``workdir``'s checkpoint of ``config`` and returns ``num_samples`` continuations
  (each the prompt followed by ``num_tokens`` generated characters/bytes)."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from genai_jax import tasks
  from genai_jax.errors import ConfigError
  from genai_jax.tasks import lm as lm_task
  from genai_jax.train import sharding
  from genai_jax.train import state as state_lib

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


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  if not _WORKDIR.value:
    print("error: pass --workdir=DIR of a trained run", file=sys.stderr)
    sys.exit(2)
  if not flags.FLAGS["verbosity"].present:  # Orbax logs every restore at INFO
    logging.set_verbosity(logging.WARNING)
  from genai_jax import errors
  with errors.friendly():
    texts = continue_prompt(_CONFIG.value, _WORKDIR.value, _PROMPT.value, _NUM.value,
                            num_samples=_SAMPLES.value, temperature=_TEMP.value, top_k=_TOP_K.value,
                            top_p=_TOP_P.value, iterations=_ITERS.value, seed=_SEED.value,
                            step=_STEP.value)
  for i, t in enumerate(texts):
    if len(texts) > 1:
      print(f"=== sample {i} ===")
    print(t)


if __name__ == "__main__":
  app.run(main)
