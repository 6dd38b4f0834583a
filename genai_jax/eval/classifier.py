"""A small digit classifier trained here, whose features give the "Fréchet classifier distance on
digits" (FCD-digits). It is NOT FID: the features are those of a 2-conv CNN trained for a minute on
scikit-learn's 1,500 training digits, so its values are only comparable with other FCD-digits
values at the same image size. It exists so the embedded digits demo has an offline quality
metric whose feature network knows what a digit looks like.
"""

import os
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from genai_jax import multihost

DATASET = "sklearn_digits"
FEATURES = 128


class DigitCNN(nn.Module):
  """float32 [N, S, S, 1] in [-1, 1] -> (features float32 [N, 128], logits float32 [N, 10])."""

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(32, (3, 3))(x))
    x = nn.max_pool(x, (2, 2), (2, 2))
    x = nn.relu(nn.Conv(64, (3, 3))(x))
    x = nn.max_pool(x, (2, 2), (2, 2))
    feats = nn.relu(nn.Dense(FEATURES)(x.reshape(len(x), -1)))
    return feats, nn.Dense(10)(feats)


def labelled_images(data_cfg, split: str) -> tuple[np.ndarray, np.ndarray]:
  """Every example of ``split``: (float32 [N, S, S, C] in [-1, 1] preprocessed exactly as the
  training pipeline does, int64 labels [N])."""
  from genai_jax.data import pipelines, preprocess, reader
  examples = reader.read_all(pipelines.get_builder(data_cfg), split, data_cfg.name)
  xs = np.stack([preprocess.preprocess_image(ex["image"], data_cfg) for ex in examples])
  return xs, np.array([ex["label"] for ex in examples], np.int64)


def train(data_cfg, steps: int = 600, batch: int = 128, seed: int = 0) -> tuple[dict, float]:
  """Trains ``DigitCNN`` on the train split (random +-2 px shifts); returns (variables, test accuracy)."""
  x, y = labelled_images(data_cfg, "train")
  xt, yt = labelled_images(data_cfg, "test")
  model = DigitCNN()
  params = model.init(jax.random.PRNGKey(seed), x[:1])["params"]
  tx = optax.adam(1e-3)

  @jax.jit
  def step(params, opt_state, key):
    k1, k2 = jax.random.split(key)
    idx = jax.random.randint(k1, (batch,), 0, len(x))
    shift = jax.random.randint(k2, (2,), -2, 3)
    xb = jnp.roll(jnp.asarray(x)[idx], shift, axis=(1, 2))  # cheap augmentation
    def loss_fn(p):
      _, logits = model.apply({"params": p}, xb)
      return optax.softmax_cross_entropy_with_integer_labels(logits, jnp.asarray(y)[idx]).mean()
    grads = jax.grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  opt_state = tx.init(params)
  key = jax.random.PRNGKey(seed + 1)
  for i in range(steps):
    params, opt_state = step(params, opt_state, jax.random.fold_in(key, i))
  _, logits = model.apply({"params": params}, xt)
  return {"params": params}, float((np.asarray(logits).argmax(-1) == yt).mean())


def load_or_train(data_cfg, cache_dir: str) -> tuple[dict, float]:
  """The classifier for ``data_cfg.image_size``, trained once and cached as .npz in ``cache_dir``
  (on several processes: by process 0, while the others wait to read it)."""
  path = os.path.join(cache_dir, f"fcd_{DATASET}_{data_cfg.image_size}px.npz")
  return multihost.leader_first(f"the digits classifier {path}",
                                lambda: _load_or_train(data_cfg, path))


def _load_or_train(data_cfg, path: str) -> tuple[dict, float]:
  from flax import traverse_util
  if os.path.exists(path):
    with np.load(path) as f:
      flat = {tuple(k.split("/")): f[k] for k in f.files if k != "test_accuracy"}
      acc = float(f["test_accuracy"])
    return {"params": traverse_util.unflatten_dict(flat)}, acc
  multihost.phase("classifier")
  variables, acc = train(data_cfg)
  flat = {"/".join(k): np.asarray(v) for k, v in traverse_util.flatten_dict(variables["params"]).items()}
  multihost.save_npz(path, test_accuracy=acc, **flat)
  return variables, acc


def make_extractor(variables: dict, mesh: Optional[object] = None, batch_size: int = 256):
  """Host function float [N, S, S, 1] in [-1, 1] -> {'features': float32 [N, 128]} (jitted,
  batches split over ``mesh`` when given; see ``inception.batched_extractor``)."""
  from genai_jax.eval import inception
  model = DigitCNN()
  return inception.batched_extractor(lambda v, x: {"features": model.apply(v, x)[0]},
                                     variables, mesh, batch_size)
