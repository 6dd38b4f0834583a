"""Attention models (char GPT on tiny_shakespeare, masked LM, GRU baseline); see the config.

  python -m experiments.gpt_shakespeare --workdir=/tmp/gpt
  python -m experiments.gpt_shakespeare --config=experiments/configs/gpt_shakespeare.py:demo --workdir=/tmp/lm_demo
"""

from experiments import main

if __name__ == "__main__":
  main.run("experiments/configs/gpt_shakespeare.py")
