"""CycleGAN (unpaired translation) on horse2zebra, or the embedded faces <-> edges demo; see the
config's docstring.

  python -m experiments.cyclegan --workdir=/tmp/horse2zebra
  python -m experiments.cyclegan --config=experiments/configs/cyclegan.py:faces_edges_demo --workdir=/tmp/cyclegan_demo
"""

from experiments import main

if __name__ == "__main__":
  main.run("experiments/configs/cyclegan.py")
