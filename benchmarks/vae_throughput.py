"""MLP VAE (784-500-20) train-step throughput (steps/s), ours beside a PyTorch reference of the same step.

  python -m benchmarks.vae_throughput [--batch 128] [--steps 200] [--rounds 5] [--torch-threads N]

Both sides run the same step on a fixed batch of 0/1 28x28 images: encoder Dense(500)-ReLU to
mean and a soft-bounded log-variance (10 tanh(x/10)), z = mean + sigma * eps, decoder
Dense(500)-ReLU-Dense(784) logits, loss = mean over the batch of the summed Bernoulli negative
log-likelihood plus the closed-form KL, Adam(1e-3); each step's loss is read back. Rounds
alternate between the two so machine noise hits both; the ratio is per round, and the median is
reported. On a busy machine PyTorch's default intra-op threads (one per core) can spin against
other processes; ``--torch-threads 1`` shows its best single-thread figure. PyTorch is optional (``pip install torch==2.13.0``); without it only our figure prints.
"""

import argparse

import jax
import numpy as np

from benchmarks import common


def _binary_images(batch, seed=0):
  return (np.random.default_rng(seed).uniform(size=(batch, 28, 28, 1)) < 0.13).astype(np.float32)


def jax_runner(batch, hidden, latent):
  from experiments.configs import vae_mnist
  from genai_jax import tasks
  from genai_jax.train import sharding
  from genai_jax.train import state as state_lib
  c = vae_mnist.get_config()
  c.batch_size = batch
  c.model.update(hidden=(hidden,), latent_size=latent)
  mesh = sharding.make_mesh()
  task = tasks.get_task(c)
  spec = state_lib.sharded_init(task, mesh)
  state = spec.init(jax.random.PRNGKey(0))
  step = state_lib.compile_train_step(task, mesh, spec.shardings)
  data = sharding.global_batch({"image": _binary_images(batch) * 2 - 1}, mesh)  # pixels in [-1, 1]
  box = [state]

  def run(n):
    for _ in range(n):
      box[0], metrics = step(box[0], data)
      float(metrics["loss"])  # read back every step, as the reference does
  return run


def torch_runner(batch, hidden, latent, threads=0):
  import torch
  from torch import nn
  torch.manual_seed(0)
  if threads:
    torch.set_num_threads(threads)

  class VAE(nn.Module):
    def __init__(self):
      super().__init__()
      self.hidden_enc, self.mean, self.logvar = nn.Linear(784, hidden), nn.Linear(hidden, latent), nn.Linear(hidden, latent)
      self.hidden_dec, self.out = nn.Linear(latent, hidden), nn.Linear(hidden, 784)

    def forward(self, x):
      h = torch.relu(self.hidden_enc(x))
      mean, logvar = self.mean(h), 10.0 * torch.tanh(self.logvar(h) / 10.0)
      z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
      return self.out(torch.relu(self.hidden_dec(z))), mean, logvar

  model = VAE()
  opt = torch.optim.Adam(model.parameters(), lr=1e-3)
  x = torch.from_numpy(_binary_images(batch).reshape(batch, 784))
  bce = nn.BCEWithLogitsLoss(reduction="none")

  def step():
    logits, mean, logvar = model(x)
    recon = bce(logits, x).sum(dim=1)
    kl = 0.5 * (logvar.exp() + mean.pow(2) - 1.0 - logvar).sum(dim=1)
    loss = (recon + kl).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()

  def run(n):
    for _ in range(n):
      step()
  return run, torch.__version__, torch.get_num_threads()


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--batch", type=int, default=128)
  p.add_argument("--hidden", type=int, default=500)
  p.add_argument("--latent", type=int, default=20)
  p.add_argument("--steps", type=int, default=200, help="steps per timed round")
  p.add_argument("--rounds", type=int, default=5)
  p.add_argument("--torch-threads", type=int, default=0, help="PyTorch intra-op threads (0: its default)")
  p.add_argument("--no-torch", action="store_true")
  common.add_machine_args(p)
  a = p.parse_args()
  others = common.check_machine(a.allow_busy)

  print(f"MLP VAE 784-{a.hidden}-{a.latent}, batch {a.batch}, {a.steps} steps x {a.rounds} rounds; "
        f"jax {jax.__version__} on {jax.devices()[0].platform} x{jax.device_count()}", flush=True)
  ours = jax_runner(a.batch, a.hidden, a.latent)
  ours(5)  # compile + warm up
  ref = None
  if not a.no_torch:
    ref = common.torch_reference(
        lambda: torch_runner(a.batch, a.hidden, a.latent, a.torch_threads), warmup=5)
  common.alternate_rounds(ours, ref, a.steps, a.rounds, lambda t: f"{a.steps / t:8.1f} steps/s",
                          others=others, allow_busy=a.allow_busy)


if __name__ == "__main__":
  main()
