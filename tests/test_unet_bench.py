"""benchmarks/unet_throughput.py: the PyTorch twin is our U-Net's size and, given our weights,
computes our function; both sides' train steps run.

PyTorch is optional (not in CI): without it these skip."""

import numpy as np
import pytest

from benchmarks import unet_throughput as bench

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("preset", ["demo", "digits_cond", "cifar10_ddpm"])
def test_twin_has_our_parameter_count(preset):
  c = bench.row_config(preset, 8)
  twin = sum(p.numel() for p in bench.torch_unet(c).parameters())
  assert twin == bench.flax_param_count(c) > 0


@pytest.mark.slow  # one U-Net train step compiled: ~12 s on the shared 2 cores
def test_one_step_of_each_side_trains():
  # The demo step (EDM, dropout, clipping, warmup, EMA) on the smallest U-Net (one level: the
  # middle res-attention-res and one up block): compile time. Step 0 of the warmup has learning
  # rate 0 and the output conv starts at zero (so only it moves at first), hence two steps and
  # the output conv checked.
  c = bench.row_config("demo", 8)
  c.model.update(image_size=8, channel_mult=(1,), num_res_blocks=0, attention_res=())
  c.data.image_size = 8
  c.optimizer.warmup = 1
  ours, n_ours = bench.jax_runner(c)
  ours(2)
  state = ours.args()[0]
  assert int(state.step) == 2
  convs = sorted((k for k in state.params if k.startswith("Conv_")), key=lambda k: int(k[5:]))
  assert np.abs(np.asarray(state.params[convs[-1]]["kernel"])).max() > 0

  threads = torch.get_num_threads()
  try:
    run, _, _, n_ref = bench.torch_runner(c, threads=1)
    assert n_ref == n_ours
    assert not run.net.conv_out.weight.any()
    assert np.isfinite(run(2))
    assert run.net.conv_out.weight.any()
  finally:
    torch.set_num_threads(threads)  # the runner sets it process-wide


def _load_flax_params(net, params):
  """Copies our U-Net's params (flax names, made in creation order) into the twin."""
  count = {"ResBlock": 0, "Attention": 0, "Conv": 1}  # Conv_0 is the input conv

  def put(module, leaf, kind):
    with torch.no_grad():
      if kind == "conv":
        module.weight.copy_(torch.from_numpy(np.asarray(leaf["kernel"])).permute(3, 2, 0, 1))
      elif kind == "dense":
        module.weight.copy_(torch.from_numpy(np.asarray(leaf["kernel"])).T)
      else:  # GroupNorm
        module.weight.copy_(torch.from_numpy(np.asarray(leaf["scale"])))
      module.bias.copy_(torch.from_numpy(np.asarray(leaf["bias"])))

  def take(name):
    i = count[name]
    count[name] += 1
    return params[f"{name}_{i}"]

  def res(module, p):
    put(module.norm1, p["GroupNorm_0"], "norm")
    put(module.conv1, p["Conv_0"], "conv")
    put(module.emb, p["Dense_0"], "dense")
    put(module.norm2, p["GroupNorm_1"], "norm")
    put(module.conv2, p["Conv_1"], "conv")
    if module.skip is not None:
      put(module.skip, p["skip"], "conv")

  def attn(module, p):
    put(module.norm, p["GroupNorm_0"], "norm")
    put(module.qkv, p["Dense_0"], "dense")
    put(module.proj, p["Dense_1"], "dense")

  def block(m):
    if hasattr(m, "res"):
      res(m.res, take("ResBlock"))
      if m.attn is not None:
        attn(m.attn, take("Attention"))
    else:  # Down / Up: one conv
      put(m.conv, take("Conv"), "conv")

  put(net.time[0], params["Dense_0"], "dense")
  put(net.time[2], params["Dense_1"], "dense")
  if net.classes is not None:
    with torch.no_grad():
      net.classes.weight.copy_(torch.from_numpy(np.asarray(params["Embed_0"]["embedding"])))
  put(net.conv_in, params["Conv_0"], "conv")
  for m in net.down:
    block(m)
  res(net.mid1, take("ResBlock"))
  attn(net.mid_attn, take("Attention"))
  res(net.mid2, take("ResBlock"))
  for m in net.up:
    block(m)
  put(net.norm_out, params["GroupNorm_0"], "norm")
  put(net.conv_out, take("Conv"), "conv")
  assert count["ResBlock"] == sum(k.startswith("ResBlock_") for k in params)
  assert count["Attention"] == sum(k.startswith("Attention_") for k in params)
  assert count["Conv"] == sum(k.startswith("Conv_") for k in params)


@pytest.mark.slow  # 4 s with torch installed: the fast tier is at its 3-minute limit
@pytest.mark.parametrize("scale_shift,num_classes", [(True, 0), (False, 10)])
def test_twin_computes_our_function(scale_shift, num_classes):
  # One level (no stride-2 conv: the twin pads it (1, 1) where 'SAME' pads (0, 1)), a block with
  # attention and skip convs in the decoder; every parameter random (the zero inits would hide
  # the layers behind them).
  import jax
  from genai_jax.tasks import diffusion as diffusion_task
  c = bench.row_config("digits_cond" if num_classes else "demo", 2)
  c.model.update(image_size=8, channels=2, width=32, channel_mult=(1,), num_res_blocks=1,
                 attention_res=(8,), num_heads=2, scale_shift=scale_shift)
  model = diffusion_task.make_model(c)
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 8, 8, 2)).astype(np.float32)
  t = np.array([3.0, 400.0], np.float32)
  y = np.array([1, num_classes], np.int32) if num_classes else None
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), x, t, y)["params"]
  params = jax.tree.map(lambda s: (0.2 * rng.normal(size=s.shape)).astype(np.float32), shapes)
  ours = np.asarray(model.apply({"params": params}, x, t, y))

  net = bench.torch_unet(c).eval()
  _load_flax_params(net, params)
  with torch.no_grad():
    twin = net(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(t),
               None if y is None else torch.from_numpy(y).long())
  np.testing.assert_allclose(twin.permute(0, 2, 3, 1).numpy(), ours, rtol=1e-4,
                             atol=1e-4 * np.abs(ours).max())
