"""WaveGAN train-step throughput (clips/s and audio samples/s), ours beside a PyTorch reference of
the same network and step.

  python -m benchmarks.wavegan_throughput                        # make bench-wavegan: the demo's step
  python -m benchmarks.wavegan_throughput --width 64 --layers 5 --batch 64 --post-filter 0 --steps 1  # paper
  python -m benchmarks.wavegan_throughput --allow-busy --rounds 1 --steps 1             # smoke run

The step is the GAN task's WGAN-GP step with ``n_dis`` D steps per G step (WaveGAN: 5), each D
step on its own real batch of ``--batch`` clips and freshly generated fakes, gradient penalty
(weight 10) on random interpolates, Adam(1e-4, 0.5, 0.9) on both networks; the last D step and
the G step share one generator forward. D uses phase shuffle (n = 2) in every training forward,
the penalty's included. Default sizes are ``chorales_demo``'s (d = 16, 4 layers: 4,096-sample
clips, D batch 8, a 512-tap post-filter before G's tanh): a full-size step (d = 64, 5 layers, 16,384 samples, batch 64) is about 2.4
TFLOP, tens of seconds on two CPU cores. Both sides print their parameter counts, so a drift
between the two networks shows.

The PyTorch reference is the usual port of WaveGAN (ConvTranspose1d(k 25, s 4, padding 11,
output_padding 1), Conv1d(k 25, s 4, padding 11)); PyTorch is optional
(``pip install torch==2.13.0``; without it, ours only). Rounds alternate the two sides so machine
noise hits both; the median per-round ratio is reported only on an idle machine
(``benchmarks.common``), or with ``--allow-busy``, marked as such.
"""

import argparse

import jax
import numpy as np

from benchmarks import common

Z_DIM, KERNEL, STRIDE, SHUFFLE = 100, 25, 4, 2


def wavegan_config(width: int, layers: int, batch: int, n_dis: int, post_filter: int):
  """The GAN config of this benchmark's step: wavegan_sc09 at the given sizes."""
  from experiments.configs import wavegan
  c = wavegan.get_config("wavegan_sc09")
  c.model.update(width=width, layers=layers, post_filter=post_filter)
  c.data.length = 16 * STRIDE ** layers
  c.update(n_dis=n_dis, batch_size=n_dis * batch)
  return c


def _count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def jax_runner(width: int, layers: int, batch: int, n_dis: int, post_filter: int):
  """(run(n steps), (G parameters, D parameters)) of our compiled train step."""
  from genai_jax import tasks
  from genai_jax.train import sharding
  from genai_jax.train import state as state_lib
  c = wavegan_config(width, layers, batch, n_dis, post_filter)
  mesh = sharding.make_mesh()
  task = tasks.get_task(c)
  spec = state_lib.sharded_init(task, mesh)
  state = spec.init(jax.random.PRNGKey(0))
  counts = (_count(spec.abstract.g_params), _count(spec.abstract.d_params))
  step = state_lib.compile_train_step(task, mesh, spec.shardings)
  rng = np.random.default_rng(0)
  data = sharding.global_batch(
      {"audio": rng.uniform(-0.5, 0.5, (c.batch_size, c.data.length, 1)).astype(np.float32)}, mesh)
  box = [state]

  def run(n):
    for _ in range(n):
      box[0], metrics = step(box[0], data)
    jax.block_until_ready(metrics)
  return run, counts


def torch_runner(width: int, layers: int, batch: int, n_dis: int, post_filter: int):
  """The same network and step in PyTorch: (run, version, threads, (G params, D params))."""
  import torch
  from torch import nn
  import torch.nn.functional as F
  torch.manual_seed(0)
  length = 16 * STRIDE ** layers
  g_widths = [width * 2 ** k for k in range(layers - 2, -1, -1)] + [1]
  d_widths = [1] + [width * 2 ** i for i in range(layers)]

  class G(nn.Module):
    def __init__(self):
      super().__init__()
      self.c0 = 2 * g_widths[0]
      self.fc = nn.Linear(Z_DIM, 16 * self.c0)
      ins = [self.c0] + g_widths[:-1]
      self.ups = nn.ModuleList([nn.ConvTranspose1d(a, b, KERNEL, STRIDE, padding=11,
                                                   output_padding=1) for a, b in zip(ins, g_widths)])
      self.post = (nn.Conv1d(1, 1, post_filter, padding="same", bias=False) if post_filter
                   else None)

    def forward(self, z):
      x = F.relu(self.fc(z).view(-1, self.c0, 16))
      for i, up in enumerate(self.ups):
        x = up(x)
        if i < len(self.ups) - 1:
          x = F.relu(x)
      if self.post is not None:
        x = self.post(x)
      return torch.tanh(x)

  def phase_shuffle(x):
    b, c, t = x.shape
    shifts = torch.randint(-SHUFFLE, SHUFFLE + 1, (b,))
    padded = F.pad(x, (SHUFFLE, SHUFFLE), mode="reflect")
    idx = torch.arange(t)[None, :] + (SHUFFLE - shifts)[:, None]
    return torch.gather(padded, 2, idx[:, None, :].expand(b, c, t))

  class D(nn.Module):
    def __init__(self):
      super().__init__()
      self.convs = nn.ModuleList([nn.Conv1d(a, b, KERNEL, STRIDE, padding=11)
                                  for a, b in zip(d_widths, d_widths[1:])])
      self.fc = nn.Linear(d_widths[-1] * (length // STRIDE ** layers), 1)

    def forward(self, x):
      for i, conv in enumerate(self.convs):
        x = F.leaky_relu(conv(x), 0.2)
        if i < len(self.convs) - 1:
          x = phase_shuffle(x)
      return self.fc(x.flatten(1)).view(-1)

  net_g, net_d = G(), D()
  counts = tuple(sum(p.numel() for p in net.parameters()) for net in (net_g, net_d))
  opt_g = torch.optim.Adam(net_g.parameters(), lr=1e-4, betas=(0.5, 0.9))
  opt_d = torch.optim.Adam(net_d.parameters(), lr=1e-4, betas=(0.5, 0.9))
  reals = torch.rand(n_dis, batch, 1, length) - 0.5

  def d_step(real, fake):
    opt_d.zero_grad()
    eps = torch.rand(batch, 1, 1)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(net_d(x_hat).sum(), x_hat, create_graph=True)
    gp = 10.0 * ((grad.flatten(1).pow(2).sum(1) + 1e-12).sqrt() - 1).pow(2).mean()
    err_d = net_d(fake).mean() - net_d(real).mean() + gp
    err_d.backward()
    opt_d.step()
    return err_d

  def step():
    for i in range(n_dis - 1):
      with torch.no_grad():
        fake = net_g(torch.randn(batch, Z_DIM))
      d_step(reals[i], fake)
    fake = net_g(torch.randn(batch, Z_DIM))
    err_d = d_step(reals[-1], fake.detach())
    opt_g.zero_grad()
    err_g = -net_d(fake).mean()
    err_g.backward()
    opt_g.step()
    return err_d.item(), err_g.item()  # losses read every step, as a training loop does

  def run(n):
    for _ in range(n):
      step()
  return run, torch.__version__, torch.get_num_threads(), counts


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--width", type=int, default=16, help="d (the paper: 64)")
  p.add_argument("--layers", type=int, default=4, help="clips of 16 * 4**layers samples (paper: 5)")
  p.add_argument("--batch", type=int, default=8, help="clips per D step (the paper: 64)")
  p.add_argument("--post-filter", type=int, default=512, help="G's post-filter taps (paper: 0)")
  p.add_argument("--n-dis", type=int, default=5)
  p.add_argument("--steps", type=int, default=3, help="G steps per timed round")
  p.add_argument("--rounds", type=int, default=3)
  p.add_argument("--no-torch", action="store_true")
  common.add_machine_args(p)
  a = p.parse_args()
  others = common.check_machine(a.allow_busy)
  length = 16 * STRIDE ** a.layers
  clips = a.batch * a.n_dis  # real clips consumed per G step
  print(f"WaveGAN d={a.width}, {a.layers} layers ({length} samples), post-filter "
        f"{a.post_filter}, WGAN-GP, n_dis {a.n_dis}, "
        f"D batch {a.batch} ({clips} real clips per G step), {a.steps} steps x {a.rounds} rounds; "
        f"jax {jax.__version__} on {jax.devices()[0].platform} x{jax.device_count()}", flush=True)
  ours, counts = jax_runner(a.width, a.layers, a.batch, a.n_dis, a.post_filter)
  print(f"parameters: genai_jax G {counts[0]:,} D {counts[1]:,}", flush=True)
  ours(1)  # compile + warm up
  ref = None
  if not a.no_torch:
    def make():
      run, version, threads, ref_counts = torch_runner(a.width, a.layers, a.batch, a.n_dis,
                                                       a.post_filter)
      same = "same as ours" if ref_counts == counts else "DIFFERENT from ours: fix the reference"
      print(f"parameters: PyTorch   G {ref_counts[0]:,} D {ref_counts[1]:,} ({same})", flush=True)
      return run, version, threads
    ref = common.torch_reference(make, warmup=1)
  common.alternate_rounds(
      ours, ref, a.steps, a.rounds,
      lambda t: f"{clips * a.steps / t:7.1f} clips/s ({clips * a.steps * length / t / 1e3:8.1f}k samples/s)",
      others=others, allow_busy=a.allow_busy)


if __name__ == "__main__":
  main()
