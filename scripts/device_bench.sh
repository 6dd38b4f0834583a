#!/usr/bin/env bash
# The accelerator benchmark on a lent GPU machine (its image has JAX+CUDA, flax, optax, orbax,
# chex but no TensorFlow and no ml_collections: the latter travels as a wheel in .whl/).
# Usage (device tool): bash scripts/device_bench.sh   (with carry=[".whl"])
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit 1
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
python3 -c "import jax, flax, optax, orbax.checkpoint as o, chex; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())"
mkdir -p "${OUT:-/tmp/out}"
timeout 330 python3 -m benchmarks.accelerator --sizes=accelerator --steps=20 --rounds=3 --loop_repeats=1 --loader_seconds=0.5 --isolate 2>&1 | grep -v "^I0000\|^W0000\|absl::InitializeLog" | tee "${OUT:-/tmp/out}/accelerator.txt"
