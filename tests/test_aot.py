"""AOT compilation for accelerator topologies (genai_jax.aot) on this CPU: libtpu and the CUDA
plugin (the `aot` extra) describe the devices; nothing runs on them. Each compile costs 10-30 s on
2 cores, so the compiled reports are module fixtures shared by several assertions."""

import dataclasses
import math
import os
import subprocess
import sys
from types import SimpleNamespace
from unittest import mock

import jax
import jax.numpy as jnp
import pytest

from tests.helpers import tiny_gan_config

pytest.importorskip("libtpu", reason="needs the compile-only plugins: pip install -e '.[aot]'")

from genai_jax.aot import report as report_lib  # noqa: E402
from genai_jax.aot import topologies  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOPS_CONFIG = {"model.width": 32, "batch_size": 64}  # wide enough that convolutions dominate


def dcgan_step_flops(image_size: int, width: int, channels: int, z_dim: int, batch: int) -> int:
  """Matmul/convolution FLOPs of one DCGAN train step (genai_jax.tasks.gan.train_step), by hand.

  Counts 2 x multiply-accumulates of every convolution and dense layer as the model computes them
  (genai_jax.models.dcgan with conv_impl='subpixel'), and nothing else (BatchNorm, activations,
  losses and Adam are elementwise, a few percent here). A 4x4 stride-2 convolution to an
  HxW output is 2*H*W*16*Cin*Cout per image; a 4x4 stride-2 transposed convolution from an hxw
  input is 2*h*w*16*Cin*Cout, except that the sub-pixel form for more than 16 output channels
  evaluates its 2x2 phase convolution on the (h+1)x(w+1) padded grid: 2*(h+1)*(w+1)*16*Cin*Cout.

  Per layer, backward = weight gradient + input gradient, each as many FLOPs as the forward. The
  step runs: G forward and backward (no input gradient for z); D forward and backward on the real
  and on the fake batch for the D loss (weight gradients; input gradients except the first
  layer's, which the images do not need); D forward on the fakes for the G loss with the input
  gradient only (D is not updated by it). So: 3 G - G_project + 8 D - 2 D_first.
  """
  stages = int(math.log2(image_size)) - 2
  feats = width * 2**(stages - 1)
  g_project = 2 * z_dim * 16 * feats  # z -> 4x4xfeats
  g, h = g_project, 4
  for cout in [width * 2**(stages - 2 - i) for i in range(stages - 1)] + [channels]:
    g += 2 * (h + 1)**2 * 16 * feats * cout if cout > 16 else 2 * h * h * 16 * feats * cout
    feats, h = cout, 2 * h
  d, h, cin, d_first = 0, image_size, channels, None
  for i in range(stages):
    layer = 2 * (h // 2)**2 * 16 * cin * (width * 2**i)
    d_first = layer if d_first is None else d_first
    d, h, cin = d + layer, h // 2, width * 2**i
  d += 2 * 16 * cin  # 4x4xC -> one logit
  return batch * (3 * g - g_project + 8 * d - 2 * d_first)


@pytest.fixture(scope="module")
def v4_dp():
  """Tiny DCGAN, data parallel on v4-8, with the public state builders spied on."""
  from genai_jax.train import state as state_lib
  with mock.patch.object(state_lib, "compile_train_step", wraps=state_lib.compile_train_step) as c, \
       mock.patch.object(state_lib, "sharded_init", wraps=state_lib.sharded_init) as i:
    report = report_lib.compile_step(tiny_gan_config(**FLOPS_CONFIG), "v4-8")
  return report, c, i


@pytest.fixture(scope="module")
def h100_fsdp():
  """Tiny DCGAN on 8 H100s with the state sharded 2 ways (FLOPs reference compile skipped)."""
  return report_lib.compile_step(tiny_gan_config(**{"mesh.fsdp": 2}), "h100x8",
                                 reference_cost=False)


@pytest.mark.slow
def test_v4_compiles_the_training_step_through_the_public_builders(v4_dp):
  report, compile_spy, init_spy = v4_dp
  assert report.fits, report_lib.verdict(report)
  assert report.mesh == {"data": 4, "fsdp": 1} and report.hosts == 1
  assert compile_spy.call_count == 1 and init_spy.call_count == 1
  mesh = compile_spy.call_args.args[1]
  assert {d.device_kind for d in mesh.devices.flat} == {"TPU v4"}
  # the state is donated, so XLA aliases it to the new state
  assert 0 < report.alias_bytes <= report.argument_bytes
  assert 0 < report.peak_bytes < topologies.CHIPS["v4"].hbm_bytes
  assert report.roofline_seconds > 0 and report.ceiling > 0
  assert report_lib.verdict(report) == "fits"


@pytest.mark.slow
def test_reported_flops_match_the_hand_count(v4_dp):
  report, _, _ = v4_dp
  c = tiny_gan_config(**FLOPS_CONFIG)
  hand = dcgan_step_flops(c.model.image_size, c.model.width, c.model.channels, c.model.z_dim,
                          c.batch_size)
  xla = report.flops * report.devices  # per device -> whole step (the batch is split 4 ways)
  assert abs(xla / hand - 1) < 0.10, (xla, hand)


@pytest.mark.slow
def test_data_parallel_all_reduces_fsdp_all_gathers(v4_dp, h100_fsdp):
  dp, _, _ = v4_dp
  assert dp.collectives["all-reduce"] > 0  # gradients and BatchNorm statistics
  assert dp.collectives["all-gather"] == 0  # replicated weights need no gathering
  assert h100_fsdp.mesh == {"data": 4, "fsdp": 2}
  assert h100_fsdp.collectives["all-gather"] > 0  # sharded weights gathered where used


@pytest.mark.slow
def test_h100_node_compiles_and_checks_memory_itself(h100_fsdp):
  r = h100_fsdp
  assert r.chip.name.startswith("NVIDIA H100") and r.devices == 8
  assert r.fits and r.oom is None
  assert r.flops is None  # XLA:GPU reports no cost analysis; the CLI compiles a TPU reference
  assert 0 < r.peak_bytes < r.chip.hbm_bytes
  r.temp_bytes += r.chip.hbm_bytes  # GPU compiles only warn on overflow: the report decides
  assert not r.fits and report_lib.verdict(r).startswith("does not fit: needs ")


def _cli(*args, timeout=240):
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([sys.executable, "-m", "genai_jax.aot", *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_absurd_batch_does_not_fit_and_exits_2():
  p = _cli("--config=experiments/configs/dcgan_celeba.py:demo", "--topology=v4-8",
           "--config.model.width=8", "--config.model.image_size=16", "--config.data.image_size=16",
           "--config.batch_size=4194304")
  assert p.returncode == 2, p.stderr[-2000:]
  verdict = p.stdout.strip().splitlines()[-1]
  assert verdict.startswith("does not fit: needs ") and "of 32.0 GiB HBM per device" in verdict
  assert "--config.batch_size" in verdict and "--config.mesh.fsdp" in verdict


@pytest.mark.slow
def test_unknown_topology_is_one_line_listing_the_valid_ones():
  p = _cli("--config=experiments/configs/dcgan_celeba.py:demo", "--topology=v9-8", timeout=60)
  assert p.returncode == 2
  err = [line for line in p.stderr.splitlines() if line.startswith("error:")]
  assert len(err) == 1 and "'v9-8'" in err[0]
  assert all(name in err[0] for name in ("v4-8", "v4-32", "v5e-8", "v5e-16", "v5p-8", "v6e-8",
                                         "h100x8"))


def test_topology_table_matches_libtpu():
  for name in ("v4-32", "v5e-8", "v5e-16", "v6e-8"):  # host counts decide the data split
    found = topologies.devices(name)
    topo = topologies.TOPOLOGIES[name]
    assert len(found) == topo.devices
    assert len({d.process_index for d in found}) == topo.hosts
    assert topologies.DEVICE_KINDS[found[0].device_kind] == topo.chip


def test_batch_spec_is_what_the_pipelines_yield(tfds_dir):
  from experiments.configs import gpt_shakespeare, vae_mnist
  from genai_jax.data import pipelines, specs
  for cfg, batch in ((vae_mnist.get_config("demo").data, 9),
                     (gpt_shakespeare.get_config("demo").data, 4)):
    spec = specs.batch_spec(cfg, batch)
    real = next(pipelines.batches(cfg, cfg.train_split, batch, train=True))
    assert {k: (v.shape, v.dtype) for k, v in spec.items()} == \
        {k: (v.shape, v.dtype) for k, v in real.items()}


def test_vocab_size_stands_in_for_a_missing_char_dataset(tfds_dir):
  from experiments.configs import gpt_shakespeare
  from genai_jax.data import text
  from genai_jax.errors import ConfigError, DatasetMissingError, render
  cfg = gpt_shakespeare.get_config().data  # tiny_shakespeare: not prepared here
  with pytest.raises(DatasetMissingError, match="state its vocabulary: data.vocab_size=N") as e:
    text.vocabulary(cfg)
  assert "--config.data.vocab_size=N" in render(e.value)  # the flag, at the command line
  cfg.vocab_size = 65
  assert text.vocabulary(cfg).size == 65
  demo = gpt_shakespeare.get_config("demo").data  # embedded: the size is checked
  real = text.vocabulary(demo).size
  demo.vocab_size = real + 1
  with pytest.raises(ConfigError, match=f"vocab_size={real}"):
    text.vocabulary(demo)


@pytest.mark.parametrize("start,limit", [(64, 3000), (1 << 20, 3000), (64, 4)])
def test_batch_sweep_brackets_the_largest_fitting_batch(monkeypatch, start, limit):
  # The search alone, over a fake compile that fits up to `limit` (real probes cost a compile each).
  def fake_compile(config, topology):
    return SimpleNamespace(fits=config.batch_size <= limit, batch_size=config.batch_size)
  monkeypatch.setattr(report_lib, "compile_step", fake_compile)
  config = tiny_gan_config(batch_size=start)
  q = report_lib.batch_quantum(config, "v4-8")
  assert q == 8  # lcm of 4 devices, 1 host and data.shards=8
  best, fail, probes = report_lib.batch_sweep(config, "v4-8", resolution=16)
  assert best % q == 0 and fail % q == 0 and best <= limit < fail
  assert fail - best <= max(q, best // 16)
  assert set(probes) >= {best, fail} - {0}
  assert len(probes) <= 2 * math.log2(max(start, limit) / q) + 6


def test_tpu_compile_traces_the_model_for_tpu():
  """Kernel choices that depend on the platform (the CPU-only attention formulation) follow the
  compile target, not this CPU host: a TPU report must count what a TPU run executes."""
  from experiments.configs import gpt_shakespeare
  from genai_jax.models import backend, transformer
  c = gpt_shakespeare.get_config("demo")
  c.data.update(name="tiny_shakespeare", vocab_size=65)  # absent here: shapes alone
  c.model.update(num_layers=1, d_model=32, num_heads=2)
  c.update(batch_size=8)
  seen = []
  real = transformer.attention_kernel
  with mock.patch.object(transformer, "attention_kernel",
                         side_effect=lambda *a: seen.append(backend.target()) or real(*a)):
    devices = topologies.devices("v4-8")
    report_lib.lower(c, devices)
  assert seen and set(seen) == {"tpu"}


@pytest.mark.slow
def test_a_step_with_a_while_loop_says_its_flops_are_a_lower_bound(v4_dp):
  """XLA's cost analysis counts a while loop's body once: the report must say so when the step
  has one, and say nothing when it has none (the tiny DCGAN step)."""
  loop = jax.jit(lambda x: jax.lax.while_loop(lambda c: c[1] < c[0].sum(),
                                              lambda c: (c[0] * 2, c[1] + 1), (x, 0))[0])
  straight = jax.jit(lambda x: x * 2)
  x = jnp.ones(3)
  assert report_lib.count_while_loops(loop.lower(x).compile().as_text()) == 1
  assert report_lib.count_while_loops(straight.lower(x).compile().as_text()) == 0
  report = v4_dp[0]
  assert report.while_loops == 0 and "at least" not in report_lib.table(report)
  looped = dataclasses.replace(report, while_loops=2)
  (flops_row,) = [l for l in report_lib.table(looped).splitlines() if "FLOPs" in l]
  assert "at least" in flops_row and "2 while loops once" in flops_row


def tiny_gpt_config(**overrides):
  """gpt125m shrunk to 2 layers of width 256 over 256 byte tokens, batch 8 (2 per v4-8 chip):
  small enough to compile in seconds, large enough that matmuls dominate the step's FLOPs."""
  from experiments.configs import gpt_shakespeare
  from tests.helpers import override
  c = gpt_shakespeare.get_config("gpt125m")
  c.model.update(num_layers=2, d_model=256, num_heads=4)
  c.data.seq_len = 256
  c.sample.length = 16
  c.batch_size = 8
  return override(c, overrides)


@pytest.fixture(scope="module")
def gpt_fsdp():
  """The tiny GPT on v4-8 (4 chips) as data parallel (fsdp=1) and as FSDP (fsdp=4)."""
  return {f: report_lib.compile_step(tiny_gpt_config(**{"mesh.fsdp": f}), "v4-8") for f in (1, 4)}


@pytest.mark.slow
@pytest.mark.parametrize("fsdp", [1, 4])
def test_transformer_flops_per_device_are_the_hand_count_over_the_devices(gpt_fsdp, fsdp):
  """Each device computes its share of the batch: XLA's per-device FLOPs within 15% of
  6N + 12LTd per token over the devices, whatever the fsdp axis (before FSDP gathered weights,
  fsdp=4 partitioned matmuls over the model width and did 1.5x the work on a v4-32)."""
  from genai_jax.models import transformer
  from genai_jax.tasks import lm
  r = gpt_fsdp[fsdp]
  assert r.mesh == {"data": 4 // fsdp, "fsdp": fsdp}
  cfg = lm.build(tiny_gpt_config()).model.cfg
  tokens = 8 * 256
  hand = (6 * transformer.num_params(cfg) + 12 * 2 * 256 * 256) * tokens / 4
  assert r.hand_flops == pytest.approx(hand)
  assert r.flops == pytest.approx(hand, rel=0.15), (r.flops, hand)
  (row,) = [l for l in report_lib.table(r).splitlines() if "hand count" in l]
  assert f"XLA / hand = {r.flops / r.hand_flops:.2f}x" in row


@pytest.mark.slow
def test_fsdp_shards_the_state_gathers_weights_and_reduce_scatters_gradients(gpt_fsdp):
  dp, fsdp = gpt_fsdp[1], gpt_fsdp[4]
  assert dp.collectives["all-gather"] == dp.collectives["reduce-scatter"] == 0
  assert fsdp.collectives["all-gather"] > 0
  assert fsdp.collectives["reduce-scatter"] + fsdp.windowed["reduce-scatter"] > 0
  # Params and both Adam moments in 4 slices: the donated state per chip falls about 4x.
  assert fsdp.alias_bytes < dp.alias_bytes / 3
  assert fsdp.peak_bytes < dp.peak_bytes


def test_tpu_reduce_scatter_fusions_and_windowed_einsums_are_counted():
  """XLA:TPU writes a reduce-scatter as an 'all-reduce-scatter' fusion around an all-reduce, and
  overlaps some with their matmul in a while loop (a windowed einsum)."""
  hlo = "\n".join([
      "%all-reduce-scatter.3 (input_0: bf16[8,8]) -> bf16[2,8] {",
      "  %all-reduce.1 = bf16[8,8]{1,0} all-reduce(%input_0), replica_groups={{0,1,2,3}}",
      "  ROOT %dynamic-slice.2 = bf16[2,8]{1,0} dynamic-slice(%all-reduce.1, %c, %c)",
      "}",
      "ENTRY %main (p: f32[8,8]) -> f32[8,8] {",
      "  %all-reduce.7 = f32[] all-reduce(%x), replica_groups={{0,1,2,3}}",
      "  %all-gather.2 = bf16[8,8] all-gather(%y), dimensions={0}",
      '  %while.1 = (bf16[2,8]) while(%t), condition=%c, body=%b, metadata={op_name='
      '"jit(train_step)/transpose(jvp(Transformer))/block_0/mlp/fc/dot_general"}',
      '  %while.2 = (bf16[2,8]) while(%t), condition=%c, body=%b, metadata={op_name='
      '"jit(train_step)/jvp(Transformer)/block_0/mlp/fc/dot_general"}',
      "}"])
  assert report_lib.count_collectives(hlo) == {"all-reduce": 1, "all-gather": 1,
                                               "reduce-scatter": 1}
  assert report_lib.count_windowed_einsums(hlo) == {"all-gather": 1, "reduce-scatter": 1}


def test_gpt_xl_does_not_fit_data_parallel_on_v4_32():
  """The 1.5B preset's float32 state alone is 23.6 GB: without FSDP it cannot fit a 32 GiB chip
  (mesh.fsdp=16 fits, at 19 GiB: the AOT table of docs/results.md; a minute's compile, not run
  here)."""
  from experiments.configs import gpt_shakespeare
  r = report_lib.compile_step(gpt_shakespeare.get_config("gpt_xl"), "v4-32")
  assert r.mesh == {"data": 16, "fsdp": 1} and not r.fits
  verdict = report_lib.verdict(r)
  assert verdict.startswith("does not fit: needs ") and "raise --config.mesh.fsdp" in verdict
