"""Diffusion U-Net train-step throughput (images/s), ours beside a PyTorch twin of the same network
and step.

  python -m benchmarks.unet_throughput [--rows demo:32,demo:64,cifar10_ddpm:4] [--steps 1]
                                       [--rounds 3]                          # make bench-unet
  python -m benchmarks.unet_throughput --allow-busy --rows demo:32 --rounds 1 --steps 1  # smoke

A row is PRESET:BATCH of experiments/configs/diffusion.py. Ours is the diffusion task's real
train step (genai_jax/tasks/diffusion.py), built, sharded and compiled as the loop does
(``common.jax_train_runner``). The twin (``torch_unet``) is models/unet.py layer for layer:
the same settings (the task's ``model_settings``, defaults filled in), the same blocks in the
same order, GroupNorm with gcd(32, C) groups and eps 1e-6, SiLU, scale-shift or additive time
embedding, single-scale self-attention (PyTorch's ``scaled_dot_product_attention``), dropout
inside the residual blocks, stride-2 conv down, nearest-neighbour + conv up, zero-initialised
last layers. Both sides print their parameter counts and the benchmark refuses to time nets
whose counts differ; tests/test_unet_bench.py also loads our weights into the twin and checks
that it computes our function. Convolutions are NCHW; the stride-2 one pads (1, 1) where flax's
'SAME' pads (0, 1): the same shapes and FLOPs. Other initialisers are each framework's default
(no effect on speed).

The step is the task's, on a fixed batch with fresh noise every step, dropout on: the preset's
objective (EDM's preconditioned denoiser and weighted loss for ``demo``, DDPM eps prediction on
the linear schedule for ``cifar10_ddpm``; also v-prediction and rectified flow), the mean loss,
backward, global-norm clipping at ``optimizer.grad_clip``, Adam with the linear warmup, then
the EMA update (r = min(decay, step / (10 + step))); PyTorch reads the loss every step.

Threads: XLA's CPU runtime uses one thread per usable core; PyTorch gets the same number
(``--torch-threads``, default the cores this process may use). Rounds alternate the two sides
so machine noise hits both; the median per-round ratio is reported, then each side's CPU
seconds a step. ``benchmarks.common``'s guard refuses a busy machine (``--allow-busy`` reports
anyway, marked); there, ``taskset -c 1 python -m benchmarks.unet_throughput --allow-busy``
pins both sides to one core (PyTorch on one thread), where PyTorch's threads cannot stall
waiting on each other (docs/results.md). When JAX sees a GPU, the twin runs on CUDA (a CUDA
build of torch needed). PyTorch is optional (``pip install torch==2.13.0``); without it only
our figures print.
"""

import argparse
import math
import os
import time

import jax
import numpy as np

from benchmarks import common

DEFAULT_ROWS = "demo:32,demo:64,cifar10_ddpm:4"


def row_config(preset: str, batch: int):
  """The diffusion preset ``preset`` at global batch ``batch``."""
  from experiments.configs import diffusion
  c = diffusion.get_config(preset)
  c.batch_size = batch
  return c


def fixed_batch(config, seed: int = 0) -> dict:
  """{'image': float32 [B, S, S, C] in [-1, 1] (NHWC), 'label': int32 [B] when conditional}."""
  rng = np.random.default_rng(seed)
  m, b = config.model, int(config.batch_size)
  shape = (b, m.image_size, m.image_size, m.channels)
  out = {"image": rng.uniform(-1, 1, shape).astype(np.float32)}
  if int(m.get("num_classes", None) or 0):
    out["label"] = (np.arange(b) % int(m.num_classes)).astype(np.int32)
  return out


def count_params(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def jax_runner(config):
  """(run(n steps), parameter count) of the diffusion task's compiled train step."""
  run = common.jax_train_runner(config, fixed_batch(config))
  state, _ = run.args()
  return run, count_params(state.params)


def flax_param_count(config) -> int:
  """Parameters of ``config``'s U-Net, from shapes only (nothing is computed)."""
  from genai_jax.tasks import diffusion as diffusion_task
  model = diffusion_task.make_model(config)
  m = config.model
  y = jax.ShapeDtypeStruct((2,), np.int32) if int(m.get("num_classes", None) or 0) else None
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                          jax.ShapeDtypeStruct((2, m.image_size, m.image_size, m.channels),
                                               np.float32),
                          jax.ShapeDtypeStruct((2,), np.float32), y)
  return count_params(shapes["params"])


def torch_unet(config):
  """The PyTorch twin of ``config``'s U-Net (NCHW), built from the task's resolved settings."""
  from genai_jax.tasks import diffusion as diffusion_task
  entry, s = diffusion_task.model_settings(config)
  if entry is not diffusion_task.MODELS["unet"]:
    raise SystemExit(f"model.name={config.model.name!r}: this benchmark times the U-Net only")
  if s.get("dtype") not in (None, "float32"):
    raise SystemExit(f"model.dtype={s.get('dtype')!r}: the twin runs float32 only")
  return _torch_classes()["UNet"](
      channels=int(s["channels"]), image_size=int(s["image_size"]), width=int(s["width"]),
      channel_mult=tuple(s["channel_mult"]), num_res_blocks=int(s["num_res_blocks"]),
      attention_res=tuple(s["attention_res"]), dropout=float(s["dropout"]),
      num_heads=int(s["num_heads"]), num_classes=int(s.get("num_classes") or 0),
      scale_shift=bool(s["scale_shift"]))


def _torch_classes() -> dict:
  """The twin's modules (defined here so that importing this file does not need torch)."""
  import torch
  from torch import nn
  import torch.nn.functional as F

  def norm(c):
    return nn.GroupNorm(math.gcd(32, c), c, eps=1e-6)  # flax's GroupNorm epsilon

  def zero(module):
    nn.init.zeros_(module.weight)
    nn.init.zeros_(module.bias)
    return module

  def timestep_embedding(t, dim, max_period=10_000.0):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)

  class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb_dim, dropout, scale_shift):
      super().__init__()
      self.scale_shift = scale_shift
      self.norm1, self.conv1 = norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
      self.emb = nn.Linear(emb_dim, 2 * cout if scale_shift else cout)
      self.norm2, self.drop = norm(cout), nn.Dropout(dropout)
      self.conv2 = zero(nn.Conv2d(cout, cout, 3, padding=1))
      self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, emb):
      h = self.conv1(F.silu(self.norm1(x)))
      e = self.emb(F.silu(emb))[:, :, None, None]
      if self.scale_shift:
        scale, shift = e.chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
      else:
        h = self.norm2(h + e)
      h = self.conv2(self.drop(F.silu(h)))
      return (x if self.skip is None else self.skip(x)) + h

  class Attention(nn.Module):
    def __init__(self, c, heads):
      super().__init__()
      self.heads, self.norm = heads, norm(c)
      self.qkv, self.proj = nn.Linear(c, 3 * c), zero(nn.Linear(c, c))

    def forward(self, x):
      b, c, h, w = x.shape
      t = self.norm(x).flatten(2).transpose(1, 2)  # [B, HW, C]
      # [B, HW, 3, heads, d] as ours, then [3, B, heads, HW, d]
      q, k, v = self.qkv(t).view(b, h * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
      out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, h * w, c)
      return x + self.proj(out).transpose(1, 2).reshape(b, c, h, w)

  class Block(nn.Module):
    """A residual block, then attention at the resolutions that have it."""

    def __init__(self, cin, cout, emb_dim, dropout, scale_shift, attention, heads):
      super().__init__()
      self.res = ResBlock(cin, cout, emb_dim, dropout, scale_shift)
      self.attn = Attention(cout, heads) if attention else None

    def forward(self, x, emb):
      h = self.res(x, emb)
      return h if self.attn is None else self.attn(h)

  class Down(nn.Module):
    def __init__(self, c):
      super().__init__()
      self.conv = nn.Conv2d(c, c, 3, stride=2, padding=1)

    def forward(self, x, emb):
      return self.conv(x)

  class Up(nn.Module):
    def __init__(self, c):
      super().__init__()
      self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x, emb):
      return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))

  class UNet(nn.Module):
    """models/unet.py's UNet: (x [B, C, S, S], noise_label [B], y [B] or None) -> [B, C, S, S]."""

    def __init__(self, channels, image_size, width, channel_mult, num_res_blocks, attention_res,
                 dropout, num_heads, num_classes, scale_shift):
      super().__init__()
      emb_dim, self.width = 4 * width, width
      block = lambda cin, cout, res: Block(cin, cout, emb_dim, dropout, scale_shift,
                                           res in attention_res, num_heads)
      self.time = nn.Sequential(nn.Linear(width, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
      self.classes = nn.Embedding(num_classes + 1, emb_dim) if num_classes else None
      self.conv_in = nn.Conv2d(channels, width, 3, padding=1)
      ch, res, skips = width, image_size, [width]
      self.down = nn.ModuleList()
      for level, mult in enumerate(channel_mult):
        for _ in range(num_res_blocks):
          self.down.append(block(ch, width * mult, res))
          ch = width * mult
          skips.append(ch)
        if level != len(channel_mult) - 1:
          self.down.append(Down(ch))
          res //= 2
          skips.append(ch)
      self.mid1 = ResBlock(ch, ch, emb_dim, dropout, scale_shift)
      self.mid_attn = Attention(ch, num_heads)
      self.mid2 = ResBlock(ch, ch, emb_dim, dropout, scale_shift)
      self.up = nn.ModuleList()
      for level, mult in reversed(list(enumerate(channel_mult))):
        for _ in range(num_res_blocks + 1):
          self.up.append(block(ch + skips.pop(), width * mult, res))
          ch = width * mult
        if level:
          self.up.append(Up(ch))
          res *= 2
      self.norm_out, self.conv_out = norm(ch), zero(nn.Conv2d(ch, channels, 3, padding=1))

    def forward(self, x, noise_label, y=None):
      emb = self.time(timestep_embedding(noise_label, self.width))
      if self.classes is not None:
        emb = emb + self.classes(y)
      h = self.conv_in(x)
      skips = [h]
      for m in self.down:
        h = m(h, emb)
        skips.append(h)
      h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
      for m in self.up:
        h = m(torch.cat([h, skips.pop()], dim=1) if isinstance(m, Block) else h, emb)
      return self.conv_out(F.silu(self.norm_out(h)))

  return {"UNet": UNet}


def torch_runner(config, threads: int = 0, device: str = "cpu"):
  """The task's train step in PyTorch on the twin: (run(n steps), version, threads, parameters).
  ``device``: 'cpu' or 'cuda' (the loss read every step synchronises)."""
  import torch
  from genai_jax.objectives import diffusion as diff
  if device == "cuda" and not torch.cuda.is_available():
    raise SystemExit("JAX runs on a GPU but this PyTorch has no CUDA: install a CUDA build of "
                     "torch, or set JAX_PLATFORMS=cpu to compare on the CPU")
  torch.manual_seed(0)
  torch.set_num_threads(threads or len(os.sched_getaffinity(0)))  # XLA: one per usable core
  torch.set_default_device(device)  # the noise, the labels and the twin's parameters
  net = torch_unet(config).train()  # dropout on
  params = list(net.parameters())
  o, opt_cfg = config.objective, config.optimizer
  num_classes = int(config.model.get("num_classes", None) or 0)
  opt = torch.optim.Adam(params, lr=opt_cfg.learning_rate, betas=(opt_cfg.b1, opt_cfg.b2))
  warmup, lr = max(int(opt_cfg.warmup or 0), 1), float(opt_cfg.learning_rate)
  clip = opt_cfg.get("grad_clip", None)
  decay = float(config.ema.decay)
  ema = [p.detach().clone() for p in params] if decay else []
  batch = fixed_batch(config)
  x0 = torch.from_numpy(batch["image"]).permute(0, 3, 1, 2).contiguous().to(device)
  labels = torch.from_numpy(batch["label"]).long().to(device) if num_classes else None
  b, sd = x0.shape[0], float(o.sigma_data)
  if o.name.startswith("ddpm"):
    alpha_bar = torch.tensor(diff.alpha_bar_schedule(o.schedule, int(o.timesteps), o.beta_start,
                                                     o.beta_end), dtype=torch.float32)
  col = lambda a: a.view(-1, 1, 1, 1)
  mse = lambda a, c: (a - c).square().mean(dim=(1, 2, 3))

  def loss_fn():
    eps = torch.randn_like(x0)
    y = labels
    if num_classes and float(o.label_dropout):
      y = torch.where(torch.rand(b) < float(o.label_dropout), num_classes, labels)
    if o.name.startswith("ddpm"):
      t = torch.randint(0, int(o.timesteps), (b,))
      ab = col(alpha_bar[t])
      out = net(ab.sqrt() * x0 + (1 - ab).sqrt() * eps, t.float(), y)
      target = eps if o.name == "ddpm_eps" else ab.sqrt() * eps - (1 - ab).sqrt() * x0
      return mse(out, target).mean()
    if o.name == "edm":
      sigma = torch.exp(o.p_mean + o.p_std * torch.randn(b))
      total = sigma.square() + sd ** 2
      x = x0 + col(sigma) * eps
      out = net(col(total.rsqrt()) * x, 250.0 * sigma.log() / 4.0, y)
      denoised = col(sd ** 2 / total) * x + col(sigma * sd * total.rsqrt()) * out
      return (total / (sigma * sd).square() * mse(denoised, x0)).mean()
    t = torch.rand(b)
    out = net((1 - col(t)) * x0 + col(t) * eps, 1000.0 * t, y)
    return mse(out, eps - x0).mean()

  count = [0]

  def step():
    for group in opt.param_groups:  # optax.linear_schedule(0, lr, warmup) at this update
      group["lr"] = lr * min(count[0] / warmup, 1.0)
    loss = loss_fn()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
      torch.nn.utils.clip_grad_norm_(params, float(clip))
    opt.step()
    if decay:
      rate = min(decay, count[0] / (10.0 + count[0]))
      with torch.no_grad():
        torch._foreach_lerp_(ema, params, 1.0 - rate)  # ema <- rate ema + (1 - rate) params
    count[0] += 1
    return loss.item()  # read every step, as a training loop does

  def run(n):
    """n steps; the last loss."""
    for _ in range(n):
      loss = step()
    return loss
  run.net = net
  n_params = sum(p.numel() for p in params)
  return run, torch.__version__, torch.get_num_threads(), n_params


def cpu_timed(run):
  """(run', [CPU seconds]): run' is ``run`` adding the process's CPU time (user + system, all
  threads) it takes to the one-element list. On a busy machine wall time is shared with other
  jobs, CPU time much less (but threads that spin while waiting count)."""
  total = [0.0]

  def wrapped(n):
    t0 = time.process_time()
    out = run(n)
    total[0] += time.process_time() - t0
    return out
  return wrapped, total


def _describe_row(config) -> str:
  m, o = config.model, config.objective
  return (f"{m.image_size}x{m.image_size}x{m.channels} width {m.width} mult "
          f"{tuple(m.channel_mult)} x{m.num_res_blocks} attn {tuple(m.attention_res)} dropout "
          f"{m.dropout}, {o.name}, batch {config.batch_size}")


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--rows", default=DEFAULT_ROWS, help="comma-separated PRESET:BATCH")
  p.add_argument("--steps", type=int, default=1, help="steps per timed round")
  p.add_argument("--rounds", type=int, default=3)
  p.add_argument("--torch-threads", type=int, default=0,
                 help="PyTorch intra-op threads (0: one per usable core, as XLA's CPU runtime)")
  p.add_argument("--no-torch", action="store_true")
  common.add_machine_args(p)
  a = p.parse_args()
  from experiments.configs import diffusion
  rows = []
  for item in a.rows.split(","):
    preset, _, batch = item.partition(":")
    if not batch.isdigit() or preset not in diffusion.PRESETS:
      p.error(f"--rows item {item!r}: write PRESET:BATCH, e.g. demo:64; presets: "
              f"{', '.join(k for k in diffusion.PRESETS if k)}")
    rows.append((preset, int(batch)))
  others = common.check_machine(a.allow_busy)
  platform = jax.devices()[0].platform
  torch_device = "cuda" if platform == "gpu" else "cpu"  # the twin runs where ours does
  print(f"jax {jax.__version__} on {platform} x{jax.device_count()}, {a.steps} steps x "
        f"{a.rounds} rounds a row", flush=True)

  for preset, batch in rows:
    c = row_config(preset, batch)
    print(f"== {preset}: {_describe_row(c)} ==", flush=True)
    ours, n_ours = jax_runner(c)
    print(f"parameters: genai_jax {n_ours:,}", flush=True)
    ours(1)  # compile + warm up
    ref = None
    if not a.no_torch:
      def make():
        run, version, threads, n_ref = torch_runner(c, a.torch_threads, torch_device)
        if n_ref != n_ours:
          raise SystemExit(f"parameters: PyTorch twin {n_ref:,} != ours {n_ours:,}: fix "
                           f"benchmarks/unet_throughput.py's torch_unet before timing")
        print(f"parameters: PyTorch   {n_ref:,} (same as ours)", flush=True)
        return run, version, threads
      ref = common.torch_reference(make, warmup=1)
    ours, ours_cpu = cpu_timed(ours)
    ref, ref_cpu = cpu_timed(ref) if ref is not None else (None, None)
    common.alternate_rounds(ours, ref, a.steps, a.rounds,
                            lambda t: f"{batch * a.steps / t:8.1f} images/s",
                            others=others, allow_busy=a.allow_busy)
    n = a.steps * a.rounds
    line = f"CPU seconds a step (this process, all threads): genai_jax {ours_cpu[0] / n:.2f}"
    if ref is not None:
      line += (f" | PyTorch {ref_cpu[0] / n:.2f} | ratio {ref_cpu[0] / ours_cpu[0]:.2f}x "
               f"(spin-waiting threads count too: trust it with one thread a side)")
    print(line, flush=True)


if __name__ == "__main__":
  main()
