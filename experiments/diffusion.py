"""Diffusion and flow matching with a U-Net; see the config's docstring for presets.

  python -m experiments.diffusion --config=experiments/configs/diffusion.py:demo --workdir=/tmp/diff
  python -m experiments.diffusion --config=experiments/configs/diffusion.py:digits_cond --workdir=/tmp/diff_digits
"""

from experiments import main

if __name__ == "__main__":
  main.run("experiments/configs/diffusion.py")
