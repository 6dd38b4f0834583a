"""Char-GPT train-step throughput (tokens/s) and MFU, ours beside a PyTorch reference of the same step.

  python -m benchmarks.lm_throughput [--layers 4 --heads 4 --width 256 --seq 128 --batch 16]
  python -m benchmarks.lm_throughput --preset baby_gpt        # nanoGPT's baby GPT geometry
  python -m benchmarks.lm_throughput --preset gpt125m --dtype bfloat16 --no-torch   # accelerators

Both sides run one full training step of the same model (pre-LN GPT, fused QKV, tanh GELU, tied
embeddings, no biases, same dropout): forward, cross-entropy, backward, global-norm clipping and
AdamW, reading the loss each step. PyTorch uses ``scaled_dot_product_attention(is_causal=True)``
and ``AdamW(foreach=True)``, as nanoGPT does on CPU. Rounds alternate so machine noise hits both;
the ratio is per round and the median is reported.

MFU = achieved FLOP/s / peak, with FLOPs per token 6 N + 12 L T d (nanoGPT's estimate); the peak
is ``--peak_tflops`` (default: 989 for H100 / 1979 for H200 bf16 dense, otherwise CPU: cores x
clock x float32 FLOP/cycle of the vector ISA: 64 with AVX-512, 32 with AVX2, stated in
the output). PyTorch is optional (``pip install torch==2.13.0``).
"""

import argparse
import os
import statistics

import jax
import numpy as np

from benchmarks import common


def model_config(a, vocab):
  from genai_jax.models import transformer
  return transformer.TransformerConfig(
      vocab_size=vocab, num_layers=a.layers, num_heads=a.heads, d_model=a.width, max_len=a.seq,
      dropout=a.dropout, use_bias=False, tie_embeddings=True, dtype=np.dtype(a.dtype))


def jax_runner(a, vocab):
  from experiments.configs import gpt_shakespeare
  from genai_jax.tasks import lm
  from genai_jax.train import sharding
  from genai_jax.train import state as state_lib
  c = gpt_shakespeare.get_config()
  c.unlock()
  c.batch_size = a.batch
  c.model.update(num_layers=a.layers, num_heads=a.heads, d_model=a.width, dropout=a.dropout,
                 dtype=a.dtype, use_bias=False)
  c.data.seq_len = a.seq
  c.sample.update(prompt_len=1, length=1)  # samples are not benchmarked
  # The task with a fixed vocabulary: the benchmark needs no dataset.
  orig = lm.text.vocabulary
  lm.text.vocabulary = lambda cfg: lm.text.Vocab(tuple(chr(32 + i) for i in range(vocab)))
  try:
    task = lm.make_task(c)
  finally:
    lm.text.vocabulary = orig
  mesh = sharding.make_mesh()
  spec = state_lib.sharded_init(task, mesh)
  state = spec.init(jax.random.PRNGKey(0))
  step = state_lib.compile_train_step(task, mesh, spec.shardings)
  rng = np.random.default_rng(0)
  data = sharding.global_batch(
      {"tokens": rng.integers(0, vocab, (a.batch, a.seq + 1)).astype(np.int32)}, mesh)
  box = [state, None]

  def run(n):
    for _ in range(n):
      box[0], metrics = step(box[0], data)
      if box[1] is not None:
        float(box[1]["loss"])  # the loop reads each step's loss one step late
      box[1] = metrics
    jax.block_until_ready(box[1])
  run.step, run.args = step, lambda: (box[0], data)  # for benchmarks.profile_step
  return run


def torch_runner(a, vocab):
  import torch
  from torch import nn
  import torch.nn.functional as F
  torch.manual_seed(0)
  d, L, H, T = a.width, a.layers, a.heads, a.seq

  class Block(nn.Module):
    def __init__(self):
      super().__init__()
      self.ln1, self.ln2 = nn.LayerNorm(d, bias=False), nn.LayerNorm(d, bias=False)
      self.qkv, self.out = nn.Linear(d, 3 * d, bias=False), nn.Linear(d, d, bias=False)
      self.fc, self.proj = nn.Linear(d, 4 * d, bias=False), nn.Linear(4 * d, d, bias=False)
      self.drop = nn.Dropout(a.dropout)

    def forward(self, x):
      b, t, _ = x.shape
      q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
      q, k, v = (z.view(b, t, H, d // H).transpose(1, 2) for z in (q, k, v))
      y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
      x = x + self.drop(self.out(y.transpose(1, 2).contiguous().view(b, t, d)))
      return x + self.drop(self.proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh")))

  class GPT(nn.Module):
    def __init__(self):
      super().__init__()
      self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(T, d)
      self.blocks = nn.ModuleList(Block() for _ in range(L))
      self.ln_f, self.drop = nn.LayerNorm(d, bias=False), nn.Dropout(a.dropout)
      for p in self.parameters():
        if p.dim() == 2:
          nn.init.normal_(p, 0.0, 0.02)

    def forward(self, idx):
      x = self.drop(self.wte(idx) + self.wpe(torch.arange(idx.shape[1])))
      for blk in self.blocks:
        x = blk(x)
      return self.ln_f(x) @ self.wte.weight.T  # tied head

  model = GPT()
  decay = [p for p in model.parameters() if p.dim() >= 2]
  no_decay = [p for p in model.parameters() if p.dim() < 2]
  opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                           {"params": no_decay, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.99),
                          foreach=True)
  g = torch.Generator().manual_seed(0)
  data = torch.randint(0, vocab, (a.batch, T + 1), generator=g)
  x, y = data[:, :-1], data[:, 1:]

  def run(n):
    for _ in range(n):
      logits = model(x)
      loss = F.cross_entropy(logits.view(-1, vocab), y.reshape(-1))
      opt.zero_grad(set_to_none=True)
      loss.backward()
      torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
      opt.step()
      loss.item()
  return run, torch.__version__, torch.get_num_threads()


def cpu_peak_tflops():
  """cores x max clock x float32 FLOP/cycle from the vector ISA: 2 FMA units x lanes x 2 (a
  multiply and an add), i.e. 64 with AVX-512 (16 lanes), 32 with AVX2 (8 lanes)."""
  ghz = None
  try:
    with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") as f:
      ghz = int(f.read()) / 1e6
  except OSError:
    pass
  flags = set()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("cpu MHz") and ghz is None:
          ghz = float(line.split(":")[1]) / 1e3
        elif line.startswith("flags") and not flags:
          flags = set(line.split(":")[1].split())
  except OSError:
    pass
  ghz = ghz or 2.0
  isa, per_cycle = ("AVX-512", 64) if "avx512f" in flags else ("AVX2 FMA", 32) if "fma" in flags else ("SSE", 8)
  cores = len(os.sched_getaffinity(0))
  return (cores * ghz * per_cycle / 1e3,
          f"{cores} cores x {ghz:.2f} GHz x {per_cycle} FLOP/cycle ({isa})")


PRESETS = {"small": dict(layers=4, heads=4, width=256, seq=128, batch=16),
           "baby_gpt": dict(layers=6, heads=6, width=384, seq=256, batch=64),
           "gpt125m": dict(layers=12, heads=12, width=768, seq=1024, batch=32)}


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--preset", default="small", choices=sorted(PRESETS))
  for k in ("layers", "heads", "width", "seq", "batch"):
    p.add_argument(f"--{k}", type=int, default=None)
  p.add_argument("--vocab", type=int, default=65)
  p.add_argument("--dropout", type=float, default=0.0)
  p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  p.add_argument("--steps", type=int, default=5, help="steps per timed round")
  p.add_argument("--rounds", type=int, default=5)
  p.add_argument("--peak_tflops", type=float, default=None)
  p.add_argument("--no-torch", action="store_true")
  common.add_machine_args(p)
  a = p.parse_args()
  others = common.check_machine(a.allow_busy)
  for k, v in PRESETS[a.preset].items():
    if getattr(a, k) is None:
      setattr(a, k, v)

  from genai_jax.models import transformer
  cfg = model_config(a, a.vocab)
  fpt = transformer.flops_per_token(cfg, a.seq)
  dev = jax.devices()[0]
  if a.peak_tflops:
    peak, peak_src = a.peak_tflops, "--peak_tflops"
  elif dev.platform == "gpu":
    peak = 1979.0 if "H200" in dev.device_kind else 989.0
    peak, peak_src = (peak if a.dtype == "bfloat16" else peak / 2), f"{dev.device_kind} dense {a.dtype}"
  else:
    peak, peak_src = cpu_peak_tflops()
  tokens = a.batch * a.seq
  print(f"GPT {a.layers}L {a.heads}H {a.width}d, context {a.seq}, batch {a.batch}, vocab {a.vocab}, "
        f"dropout {a.dropout}, {a.dtype}; {transformer.num_params(cfg) / 1e6:.2f}M params, "
        f"{fpt / 1e6:.1f} MFLOP/token; jax {jax.__version__} on {dev.platform} ({dev.device_kind}) "
        f"x{jax.device_count()}; peak {peak:.3g} TFLOP/s ({peak_src})", flush=True)
  ours = jax_runner(a, a.vocab)
  ours(2)  # compile + warm up
  ref = None
  if not a.no_torch:
    ref = common.torch_reference(lambda: torch_runner(a, a.vocab), warmup=2)

  def describe(seconds):
    rate = tokens * a.steps / seconds
    return (f"{rate:9.0f} tokens/s, {rate * fpt / 1e12:.3g} TFLOP/s, "
            f"MFU {100 * rate * fpt / (peak * 1e12):.1f}%")

  seconds = common.alternate_rounds(ours, ref, a.steps, a.rounds, describe,
                          others=others, allow_busy=a.allow_busy)
  print(f"median genai_jax: {describe(statistics.median(seconds)).strip()}", flush=True)


if __name__ == "__main__":
  main()
