"""Continue a prompt from a language-model checkpoint (compiled KV-cache decoding).

  python -m genai_jax.sample_lm --workdir=/tmp/lm_demo --prompt="def " --num_tokens=100

The run's config comes from ``<workdir>/config.json`` (``--config=FILE:PRESET`` with the run's
overrides for runs without one). Causal and GRU models decode incrementally (temperature, top-k,
top-p); a masked LM fills ``--num_tokens`` [MASK]s after the prompt by MaskGIT rounds
(``--iterations``).
"""

from absl import app, flags

from genai_jax import cli

_CONFIG = cli.define_config(None, "The run's config (file:preset and overrides); default: "
                            "<workdir>/config.json.", "see python -m genai_jax.sample_lm --help")
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


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  cli.setup_run()
  from genai_jax import errors
  with errors.friendly():
    if not _WORKDIR.value:
      raise errors.ConfigError("pass --workdir=DIR of a trained language-model run")
    from genai_jax import continuation
    from genai_jax.train import workdir as workdir_lib
    config = _CONFIG.value or workdir_lib.load_config(_WORKDIR.value)
    texts = continuation.continue_prompt(
        config, _WORKDIR.value, _PROMPT.value, _NUM.value, num_samples=_SAMPLES.value,
        temperature=_TEMP.value, top_k=_TOP_K.value, top_p=_TOP_P.value,
        iterations=_ITERS.value, seed=_SEED.value, step=_STEP.value)
  for i, t in enumerate(texts):
    if len(texts) > 1:
      print(f"=== sample {i} ===")
    print(t)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.flags_parser("see python -m genai_jax.sample_lm --help"))
