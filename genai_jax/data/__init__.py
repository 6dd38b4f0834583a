"""Datasets: tfds pipelines (``pipelines``), text streams (``text``), embedded builders."""

# data.kind -> the key under which the pipeline's batches hold the real samples. Tasks read the
# batch through this, so one task (e.g. the GAN) trains on any kind whose shapes its model takes.
# For "unpaired" (two image domains, e.g. CycleGAN's) it is domain A's; domain B is 'image_b'.
BATCH_KEYS = {"image": "image", "text": "tokens", "unpaired": "image_a"}


def batch_key(data_cfg) -> str:
  """The batch key of ``data_cfg.kind`` (default 'image')."""
  return BATCH_KEYS[data_cfg.get("kind", "image")]
