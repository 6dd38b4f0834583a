"""Datasets: tfds pipelines (``pipelines``), text streams (``text``), embedded builders."""

# data.kind -> the key under which the pipeline's batches hold the real samples. Tasks read the
# batch through this, so one task (e.g. the GAN) trains on any kind whose shapes its model takes.
# For "unpaired" (two image domains, e.g. CycleGAN's) it is domain A's; domain B is 'image_b'.
BATCH_KEYS = {"image": "image", "text": "tokens", "unpaired": "image_a", "music": "tokens",
              "audio": "audio"}


def batch_key(data_cfg) -> str:
  """The batch key of ``data_cfg.kind`` (default 'image')."""
  return BATCH_KEYS[data_cfg.get("kind", "image")]


def vocabulary(data_cfg):
  """The token vocabulary of a token kind: ``data.text.vocabulary`` for 'text', the piano-roll
  tokens (``genai_jax.data.music.Vocab``) for 'music'. Imported lazily: text reads the dataset."""
  if data_cfg.get("kind", "image") == "music":
    from genai_jax.data import music
    return music.Vocab()
  from genai_jax.data import text
  return text.vocabulary(data_cfg)
