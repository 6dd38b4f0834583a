"""VAEs (MLP and conv) on binarized MNIST, and on the embedded digits; see the config's docstring.

  python -m experiments.vae_mnist --workdir=/tmp/vae
  python -m experiments.vae_mnist --config=experiments/configs/vae_mnist.py:demo --workdir=/tmp/vae_demo
"""

from experiments import main

if __name__ == "__main__":
  main.run("experiments/configs/vae_mnist.py")
