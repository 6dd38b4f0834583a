"""A small digit classifier trained here, whose features give the "Fréchet classifier distance on
digits" (FCD-digits). It is NOT FID: the features are those of a 2-conv CNN trained for a minute on
scikit-learn's 1,500 training digits, so its values are only comparable with other FCD-digits
values at the same image size. It exists so the embedded digits demo has an offline quality
metric whose feature network knows what a digit looks like.

The same network trains on full MNIST (``pypi_mnist``, or tfds ``mnist``: 3,000 steps, a few
minutes of CPU) for the MNIST generators' class accuracy, class coverage and Fréchet distance:

  python -m genai_jax.eval.classifier --name=pypi_mnist   # train once, cache, print test accuracy

Measured (pypi_mnist, 28px): test accuracy 0.9908 on the 10,000 test digits, 421,642 parameters,
about 6.5 min of CPU time.
"""

import os
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from genai_jax import multihost
from genai_jax.errors import ConfigError

DATASET = "sklearn_digits"
# The datasets it trains on -> training steps (batch 128). Full MNIST: 3,000 steps = 6.4 epochs.
DATASETS = {DATASET: 600, "pypi_mnist": 3_000, "mnist": 3_000}
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


def accuracy(variables: dict, x: np.ndarray, y: np.ndarray, batch: int = 1000) -> float:
  """Top-1 accuracy of the classifier on images float32 [N, S, S, 1] with labels int [N]."""
  model = DigitCNN()
  predict = jax.jit(lambda v, xb: model.apply(v, xb)[1].argmax(-1))
  right = sum(int((np.asarray(predict(variables, x[i:i + batch])) == y[i:i + batch]).sum())
              for i in range(0, len(x), batch))
  return right / len(x)


def train(data_cfg, steps: int = 600, batch: int = 128, seed: int = 0) -> tuple[dict, float]:
  """Trains ``DigitCNN`` on the train split (random +-2 px shifts, Adam 1e-3); returns
  (variables, test accuracy)."""
  x, y = labelled_images(data_cfg, "train")
  xt, yt = labelled_images(data_cfg, "test")
  model = DigitCNN()
  params = model.init(jax.random.PRNGKey(seed), x[:1])["params"]
  tx = optax.adam(1e-3)

  @jax.jit
  def step(params, opt_state, xs, ys, key):  # the split is an argument: no 200 MB constants
    k1, k2 = jax.random.split(key)
    idx = jax.random.randint(k1, (batch,), 0, len(xs))
    shift = jax.random.randint(k2, (2,), -2, 3)
    xb = jnp.roll(xs[idx], shift, axis=(1, 2))  # cheap augmentation
    def loss_fn(p):
      _, logits = model.apply({"params": p}, xb)
      return optax.softmax_cross_entropy_with_integer_labels(logits, ys[idx]).mean()
    grads = jax.grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  opt_state = tx.init(params)
  key = jax.random.PRNGKey(seed + 1)
  xs, ys = jnp.asarray(x), jnp.asarray(y)
  for i in range(steps):
    params, opt_state = step(params, opt_state, xs, ys, jax.random.fold_in(key, i))
  variables = {"params": params}
  return variables, accuracy(variables, xt, yt)


def cache_path(data_cfg, cache_dir: str) -> str:
  """Where the classifier of ``data_cfg.name`` at ``data_cfg.image_size`` is cached."""
  return os.path.join(cache_dir, f"fcd_{data_cfg.name}_{data_cfg.image_size}px.npz")


def load_or_train(data_cfg, cache_dir: str) -> tuple[dict, float]:
  """(variables, test accuracy) of the classifier for ``data_cfg`` (``name`` one of DATASETS,
  ``image_size``), trained once and cached as .npz in ``cache_dir`` (on several processes: by
  process 0, while the others wait to read it)."""
  if data_cfg.name not in DATASETS:
    raise ConfigError(f"the digit classifier trains on {sorted(DATASETS)}, not data.name="
                      f"{data_cfg.name!r}; set data.name to one of them", keys=("data.name",))
  path = cache_path(data_cfg, cache_dir)
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
  variables, acc = train(data_cfg, steps=DATASETS[data_cfg.name])
  flat = {"/".join(k): np.asarray(v) for k, v in traverse_util.flatten_dict(variables["params"]).items()}
  multihost.save_npz(path, test_accuracy=acc, **flat)
  return variables, acc


def make_extractor(variables: dict, mesh: Optional[object] = None, batch_size: int = 256,
                   logits: bool = False):
  """Host function float [N, S, S, 1] in [-1, 1] -> {'features': float32 [N, 128]}, with
  ``logits`` also {'logits': float32 [N, 10]} from the same pass (jitted, batches split over
  ``mesh`` when given; see ``inception.batched_extractor``)."""
  from genai_jax.eval import inception
  model = DigitCNN()

  def apply(v, x):
    features, out = model.apply(v, x)
    return {"features": features, "logits": out} if logits else {"features": features}
  return inception.batched_extractor(apply, variables, mesh, batch_size)


def main(argv=None) -> None:
  import argparse
  import ml_collections
  from genai_jax import cli, errors  # cli first: it pins JAX to the CPU on a machine without accelerators
  from genai_jax.eval import weights
  p = argparse.ArgumentParser(description="Train (once) and cache the digit classifier.")
  p.add_argument("--name", default="pypi_mnist", help=f"one of {sorted(DATASETS)}")
  p.add_argument("--image_size", type=int, default=28)
  p.add_argument("--data_dir", default="", help="tfds data dir (default $TFDS_DATA_DIR or ~/tensorflow_datasets)")
  p.add_argument("--cache_dir", default="", help="default: $GENAI_JAX_CACHE or ~/.cache/genai_jax")
  args = p.parse_args(argv)
  cli.setup_run()
  cfg = ml_collections.ConfigDict({"name": args.name, "data_dir": args.data_dir,
                                   "image_size": args.image_size, "channels": 1,
                                   "center_crop": False, "random_flip": False, "max_value": 255})
  cache = args.cache_dir or weights.cache_dir()
  with errors.friendly():
    variables, acc = load_or_train(cfg, cache)
    n = sum(int(np.size(v)) for v in jax.tree_util.tree_leaves(variables))
    print(f"{args.name} classifier at {args.image_size}px ({n:,} parameters): test accuracy "
          f"{acc:.4f}; cached at {cache_path(cfg, cache)}")


if __name__ == "__main__":
  main()
