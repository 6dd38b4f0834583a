"""DCGAN on CelebA 64x64 (and the small MNIST GANs via presets); see the config's docstring.

  python -m experiments.dcgan_celeba --workdir=/tmp/dcgan
  python -m experiments.dcgan_celeba --config=experiments/configs/dcgan_celeba.py:demo --workdir=/tmp/demo
"""

from experiments import main

if __name__ == "__main__":
  main.run("experiments/configs/dcgan_celeba.py")
