#!/usr/bin/env bash
# Trains on one GPU, end to end and resumed once, with no network and no TensorFlow: the
# class-conditional GAN (cond_mnist) and the IWAE-paper VAE (iwae) on full MNIST, the baby GPT
# (plays_gpt) on Shakespeare's plays; then GPT-2 small's step (cuDNN attention at batch 32/64, XLA's at 32).
#
#   bash scripts/device_bundle.sh                 # first, on a CPU machine: .device/{tfds,whl}
#   bash scripts/device_train.sh                  # on the GPU machine (device tool: carry=[".device"])
#   DEVICE_TRAIN_SCALE=cpu bash scripts/device_train.sh   # the same flow in minutes on a CPU
#
# The image must have JAX (+CUDA), flax, optax, orbax, chex; the wheels in .device/whl that it
# lacks (tfds, array_record, ml_collections, tensorboard, ...) are installed into a private
# --target dir, never over the image's own packages. Output ($OUT, default /tmp/device_train_out):
# device_train.md (the table), one JSON and two logs per model, env.txt.
#
# Sizing for an H200 (run time <= 8 min = 480 s; each stage under `timeout`, so one that runs long
# leaves the others' rows): install ~10 s; per run ~20-40 s of start-up and compiling.
#   gan  cond_mnist, batch 64 at 32x32: SNGAN-ResNet G32/D64 is ~1/15 of DCGAN-64's FLOPs per
#        image, but at batch 64 it is launch-bound; assume >= 100 steps/s (6.4k img/s, 1/8 of DCGAN's
#        50k img/s): 2,500 + 2,500 steps (5.3 epochs) <= 50 s, + 2 x 30 s start-up, + the MNIST
#        classifier for class accuracy (3,000 steps, ~15 s) and the bare-step timing (its FLOPs
#        from a host-CPU compile, ~20 s): 160 s cap.
#   vae  iwae, batch 100, 784-200-200-50 MLP: ~1 MFLOP per image, so the loader (PNG decode of 100
#        digits per step) bounds it: measured 3.6k digits/s on one shared core of a 2-core CPU
#        (DEVICE_TRAIN_SCALE=cpu), so ~20-30k/s from 16 decode threads, ~200 steps/s: 4,000 +
#        4,000 steps (13 epochs) ~40 s; the final IWAE k=5000 eval on the 10k test digits is
#        ~2e13 FLOPs (~20 s); 130 s cap.
#   gpt  plays_gpt (6x384, ctx 256, batch 64 = 16,384 tokens/step, bf16): 3.3M tok/s = ~200
#        steps/s: 5,000 steps (nanoGPT's baby run, 19 epochs of the 4.31M train chars) = 25 s, +
#        evals (21 batches every 2,500 steps) and 2 x 30 s start-up: 100 s cap.
#   gpt2 GPT-2 small step: cuDNN attention at batch 32 and 64, XLA's at 32; each row ~20 s (GPU
#        compile, host-CPU compile for its FLOPs, 50 steps at 0.03-0.06 s): 70 s cap, rows kept as
#        they land.
# Total caps: 10 + 160 + 130 + 100 + 70 = 470 s.
set -u
cd "$(dirname "$0")/.."
SCALE=${DEVICE_TRAIN_SCALE:-gpu}
BUNDLE=${DEVICE_BUNDLE:-.device}
OUT=${OUT:-/tmp/device_train_out}
SITE=${DEVICE_SITE:-/tmp/genai_jax_site}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false TF_CPP_MIN_LOG_LEVEL=2
# The MNIST classifier (class accuracy) is trained once into this cache; a carried one is reused.
# At --scale=cpu it is a 30-step one (a flow check), kept apart from the real cache.
if [ "$SCALE" = cpu ]; then
  export GENAI_JAX_CACHE=${DEVICE_CPU_CACHE:-/tmp/genai_jax_cache_cpu_scale} JAX_PLATFORMS=${JAX_PLATFORMS:-cpu}
else
  export GENAI_JAX_CACHE=${GENAI_JAX_CACHE:-/tmp/genai_jax_cache}
fi
mkdir -p "$GENAI_JAX_CACHE" && cp -n "$BUNDLE"/cache/*.npz "$GENAI_JAX_CACHE"/ 2>/dev/null

if [ ! -f "$BUNDLE/tfds/datasets.json" ]; then
  echo "device_train: no prepared datasets in $BUNDLE/tfds: run \`bash scripts/device_bundle.sh\` on a CPU machine first and carry $BUNDLE" >&2
  exit 2
fi

# Only the wheels whose distribution the image lacks: the image's jax/flax/protobuf stay in charge.
missing=()
for w in "$BUNDLE"/whl/*.whl; do
  dist=$(basename "$w" | cut -d- -f1)
  "$PY" -c "import importlib.metadata as m, sys; m.version(sys.argv[1])" "$dist" 2>/dev/null || missing+=("$w")
done
if [ ${#missing[@]} -gt 0 ]; then
  timeout 60 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "${missing[@]}" || { echo "device_train: installing the carried wheels failed" >&2; exit 1; }
fi
export PYTHONPATH=$PWD:$SITE

{
  date -u +"%Y-%m-%d %H:%M UTC"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$PY" -c "import sys, jax, flax, optax, orbax.checkpoint as o, tensorflow_datasets as t, array_record; print('python', sys.version.split()[0], '| jax', jax.__version__, '| flax', flax.__version__, '| optax', optax.__version__, '| orbax', o.__version__, '| tfds', t.__version__, '|', jax.devices()[0].device_kind, 'x', jax.device_count())"
  echo "installed from $BUNDLE/whl: $(printf '%s\n' "${missing[@]##*/}" | cut -d- -f1-2 | tr '\n' ' ')"
  "$PY" -c "import importlib.util; print('tensorflow importable:', importlib.util.find_spec('tensorflow') is not None)"
} 2>&1 | grep -v "^W0000\|^I0000\|absl::InitializeLog" | tee "$OUT/env.txt"

if [ "$SCALE" = cpu ]; then caps=(gan:600 vae:300 gpt:300 gpt2:200); else caps=(gan:160 vae:130 gpt:100 gpt2:70); fi
status=0
for cap in "${caps[@]}"; do
  model=${cap%%:*}; seconds=${cap##*:}
  echo "=== $model (at most ${seconds}s)"
  DEVICE_STAGE_SECONDS=$seconds timeout "$seconds" "$PY" scripts/device_train.py --model="$model" \
      --scale="$SCALE" --data_dir="$BUNDLE/tfds" --out="$OUT" 2>&1 \
    | grep -v "^W0000\|^I0000\|absl::InitializeLog" | tail -n 30
  rc=${PIPESTATUS[0]}
  [ "$rc" -ne 0 ] && { echo "=== $model FAILED (exit $rc; 124 = past its ${seconds}s cap)"; status=1; }
done
"$PY" scripts/device_train.py --table --out="$OUT"
exit $status
