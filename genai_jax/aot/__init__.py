"""Ahead-of-time compilation of a train step for Cloud TPU slices and GPU nodes, on a CPU machine.

  python -m genai_jax.aot --config=experiments/configs/dcgan_celeba.py --topology=v4-32

compiles the very train step ``train_and_evaluate`` would run there (``report.compile_step``) and
prints per-device memory against the chip's HBM, FLOPs, the roofline bound on step time and the
collectives, then ``fits`` or ``does not fit: ...`` (exit 2). ``topologies`` holds the chips'
spec-sheet figures. Needs the compile-only plugins: ``pip install -e '.[aot]'``.

This package imports nothing heavy at import time (``__main__`` must set ``JAX_PLATFORMS`` before
JAX loads).
"""
