"""The seeds' own GAN networks, exactly: see experiments/configs/seed_gans.py for the presets."""

from experiments import main

if __name__ == "__main__":
  main.run("experiments/configs/seed_gans.py")
