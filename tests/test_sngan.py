"""SNGAN ResNets, spectral normalisation, SAGAN self-attention and the class-conditional layers:
parameter counts derived from the layer lists, shapes, the normalised kernels' singular values
against numpy, the power-iteration state in training and in checkpoints, and label dependence."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genai_jax.errors import ConfigError
from genai_jax import tasks
from genai_jax.models import dcgan, layers_gan, sngan
from genai_jax.tasks import gan
from genai_jax.train import checkpoint as ckpt_lib
from genai_jax.train import sharding
from genai_jax.train import state as state_lib
from tests.helpers import tiny_gan_config


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _init_shapes(module, *args):
  return jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), *args, train=False))


# Parameter counts from the layer lists of Mimicry's SNGAN nets (PyTorch layers, all with biases).
def _conv(k, cin, cout):
  return k * k * cin * cout + cout


def _bn(c):
  return 2 * c  # gain and bias


def _g_block(cin, cout):  # b1(cin), c1 3x3 cin->cout, b2(cout), c2 3x3 cout->cout, c_sc 1x1
  return _bn(cin) + _conv(3, cin, cout) + _bn(cout) + _conv(3, cout, cout) + _conv(1, cin, cout)


def _d_block(cin, cout, shortcut):  # c1 3x3 cin->cout, c2 3x3 cout->cout[, c_sc 1x1]
  return _conv(3, cin, cout) + _conv(3, cout, cout) + (_conv(1, cin, cout) if shortcut else 0)


def _g_count(nz, chans):  # l1: nz -> 4*4*chans[0]; blocks chans[i] -> chans[i+1]; BN, conv -> RGB
  blocks = sum(_g_block(a, b) for a, b in zip(chans, chans[1:]))
  return nz * 16 * chans[0] + 16 * chans[0] + blocks + _bn(chans[-1]) + _conv(3, chans[-1], 3)


def _d_count(blocks):  # blocks: [(cin, cout, has shortcut conv)], the first one optimised
  return sum(_d_block(*b) for b in blocks) + blocks[-1][1] + 1  # + SN linear C -> 1


def test_sngan_cifar10_parameter_counts_match_the_published_nets():
  # SNGAN CIFAR-10 (Miyato et al. 2018, Mimicry's SNGANGenerator32/Discriminator32): nz 128,
  # G 256 channels: linear 128 -> 4x4x256, three up-blocks 256 -> 256, BN, conv3x3 -> 3:
  #   528,384 + 3 x 1,246,976 + 512 + 6,915 = 4,276,739 (Mimicry: 4.3M).
  # D 128 channels: optimised block 3 -> 128 (151,680), down-block 128 -> 128 with shortcut
  #   (311,680), two blocks 128 -> 128 without (295,168 each), linear 128 -> 1 (129) = 1,053,825.
  want_g = _g_count(128, [256, 256, 256, 256])
  want_d = _d_count([(3, 128, True), (128, 128, True), (128, 128, False), (128, 128, False)])
  assert (want_g, want_d) == (4_276_739, 1_053_825)  # the sums written out above
  g, d = sngan.ResNetGenerator(image_size=32), sngan.ResNetDiscriminator()
  assert _count(_init_shapes(g, jnp.zeros((2, 128)))["params"]) == want_g
  d_vars = _init_shapes(d, jnp.zeros((2, 32, 32, 3)))
  assert _count(d_vars["params"]) == want_d
  # One power-iteration vector per SN layer (5 convs, 2 shortcut convs, the linear).
  # One power-iteration vector per SN layer: 3 + 3 convs in the first two blocks (with shortcut),
  # 2 + 2 in the others, and the linear layer.
  assert len(_u_leaves(d_vars["batch_stats"])) == 3 + 3 + 2 + 2 + 1


@pytest.mark.parametrize("size", [64, 128])
def test_sngan_64_and_128_parameter_counts_follow_mimicry_layer_lists(size):
  w = 1024  # Mimicry's ngf = ndf = 1024 at 64 and 128 px
  g_chans = [w, w // 2, w // 4, w // 8, w // 16] if size == 64 else [w, w, w // 2, w // 4, w // 8, w // 16]
  d_blocks = [(3, w // 16, True), (w // 16, w // 8, True), (w // 8, w // 4, True),
              (w // 4, w // 2, True), (w // 2, w, True)] + ([(w, w, False)] if size == 128 else [])
  g, d = sngan.ResNetGenerator(image_size=size), sngan.ResNetDiscriminator()
  assert _count(_init_shapes(g, jnp.zeros((2, 128)))["params"]) == _g_count(128, g_chans)
  assert _count(_init_shapes(d, jnp.zeros((2, size, size, 3)))["params"]) == _d_count(d_blocks)


@pytest.mark.parametrize("size,width", [(32, 16), (64, 32), (128, 16)])
def test_sngan_shapes_and_dtypes(size, width):
  # Shapes only (the numbers are checked at 32px below): compiling these inits costs minutes.
  g = sngan.ResNetGenerator(width=width, image_size=size, channels=3)
  d = sngan.ResNetDiscriminator(d_width=width)
  z = jax.ShapeDtypeStruct((2, 16), jnp.float32)

  def run(z):
    gv = g.init(jax.random.PRNGKey(1), z, train=False)
    x, _ = g.apply(gv, z, train=True, mutable=["batch_stats"])
    dv = d.init(jax.random.PRNGKey(2), x, train=False)
    return x, d.apply(dv, x, train=False)
  x, logits = jax.eval_shape(run, z)
  assert (x.shape, x.dtype) == ((2, size, size, 3), jnp.float32)
  assert (logits.shape, logits.dtype) == ((2,), jnp.float32)


def test_sngan_bfloat16_compute_keeps_float32_params_stats_and_outputs():
  g = sngan.ResNetGenerator(width=16, image_size=32, num_classes=3, attention_res=16,
                            spectral_norm=True, dtype=jnp.bfloat16)
  d = sngan.ResNetDiscriminator(d_width=16, num_classes=3, attention_res=16, dtype=jnp.bfloat16)
  z, y = jax.ShapeDtypeStruct((2, 8), jnp.float32), jax.ShapeDtypeStruct((2,), jnp.int32)

  def run(z, y):
    gv = g.init(jax.random.PRNGKey(1), z, y, train=False)
    x, _ = g.apply(gv, z, y, train=True, mutable=["batch_stats"])
    dv = d.init(jax.random.PRNGKey(2), x, y, train=False)
    return gv, dv, x, d.apply(dv, x, y, train=True, mutable=["batch_stats"])[0]
  gv, dv, x, logits = jax.eval_shape(run, z, y)
  assert {leaf.dtype for leaf in jax.tree.leaves((gv, dv))} == {jnp.dtype(jnp.float32)}
  assert x.dtype == logits.dtype == jnp.float32


def _bn_train(x, eps=1e-5):
  mean, var = x.mean((0, 1, 2)), x.var((0, 1, 2))
  return (x - mean) / jnp.sqrt(var + eps)


def _conv_ref(x, p):
  y = jax.lax.conv_general_dilated(x, p["conv"]["kernel"], (1, 1), "SAME",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                   precision=jax.lax.Precision.HIGHEST)
  return y + p["conv"]["bias"]


def test_resblocks_compute_the_published_layer_order():
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 8, 8, 8))
  up = lambda t: jax.image.resize(t, (t.shape[0], 2 * t.shape[1], 2 * t.shape[2], t.shape[3]), "nearest")
  pool = lambda t: t.reshape(t.shape[0], t.shape[1] // 2, 2, t.shape[2] // 2, 2, -1).mean((2, 4))
  relu = jax.nn.relu
  # G: BN-ReLU-up-conv3x3-BN-ReLU-conv3x3 + conv1x1(up(x)); BN gains 1, biases 0 at init.
  gb = sngan.GBlock(16)
  v = gb.init(jax.random.PRNGKey(1), x, train=False)
  p = v["params"]
  got, _ = gb.apply(v, x, train=True, mutable=["batch_stats"])
  h = _conv_ref(up(relu(_bn_train(x))), p["c1"])
  h = _conv_ref(relu(_bn_train(h)), p["c2"])
  np.testing.assert_allclose(got, h + _conv_ref(up(x), p["c_sc"]), atol=2e-4, rtol=2e-4)
  # D: ReLU-conv3x3-ReLU-conv3x3-pool + pool(conv1x1(x)); the optimised block: conv-ReLU-conv-pool
  # + conv1x1(pool(x)). Without SN so the kernels are the parameters.
  for optimized in (False, True):
    db = sngan.DBlock(16, downsample=True, optimized=optimized, spectral_norm=False)
    p = db.init(jax.random.PRNGKey(2), x, train=False)["params"]
    got = db.apply({"params": p}, x, train=False)
    h = _conv_ref(x if optimized else relu(x), p["c1"])
    h = pool(_conv_ref(relu(h), p["c2"]))
    sc = _conv_ref(pool(x), p["c_sc"]) if optimized else pool(_conv_ref(x, p["c_sc"]))
    np.testing.assert_allclose(got, h + sc, atol=2e-4, rtol=2e-4)


def _u_leaves(stats):
  return {jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_leaves_with_path(stats)
          if jax.tree_util.keystr(k).endswith("/u']")}


def test_spectral_norm_makes_the_top_singular_value_one_and_advances_only_in_training():
  layer = layers_gan.SNDense(6, spectral_norm=True, use_bias=False,
                             kernel_init=jax.nn.initializers.normal(3.0))
  x = jnp.ones((2, 10))
  variables = layer.init(jax.random.PRNGKey(0), x, train=False)
  kernel = np.asarray(variables["params"]["dense"]["kernel"])
  top = np.linalg.svd(kernel, compute_uv=False)[0]
  assert top > 5  # as drawn (flax alone would store W / sigma), and far from 1
  # Evaluation neither changes the stats nor asks for them to be mutable.
  layer.apply(variables, x, train=False)
  stats = variables["batch_stats"]
  u0 = np.asarray(stats["sn"]["dense/kernel/u"])
  for i in range(30):  # one power iteration per training forward pass
    _, upd = layer.apply({"params": variables["params"], "batch_stats": stats}, x, train=True,
                         mutable=["batch_stats"])
    stats = upd["batch_stats"]
    if i == 0:
      assert not np.allclose(stats["sn"]["dense/kernel/u"], u0)
  # The layer's effective matrix is its input Jacobian: W / sigma; its top singular value is ~1.
  effective = jax.jacobian(lambda v: layer.apply({"params": variables["params"],
                                                  "batch_stats": stats}, v, train=False))(x[0])
  np.testing.assert_allclose(np.linalg.svd(np.asarray(effective), compute_uv=False)[0], 1.0,
                             rtol=1e-3)
  np.testing.assert_allclose(float(stats["sn"]["dense/kernel/sigma"]), top, rtol=1e-3)


def test_spectral_norm_of_a_conv_kernel_uses_its_fan_in_by_fan_out_matrix():
  layer = layers_gan.SNConv(5, 3, spectral_norm=True)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 6, 4))
  v = layer.init(jax.random.PRNGKey(1), x, train=False)
  stats = v["batch_stats"]
  for _ in range(40):
    _, upd = layer.apply({"params": v["params"], "batch_stats": stats}, x, train=True,
                         mutable=["batch_stats"])
    stats = upd["batch_stats"]
  kernel = np.asarray(v["params"]["conv"]["kernel"]).reshape(-1, 5)  # [3*3*4, 5]
  sigma = np.linalg.svd(kernel, compute_uv=False)[0]
  np.testing.assert_allclose(float(stats["sn"]["conv/kernel/sigma"]), sigma, rtol=1e-3)
  # The normalised conv is the plain conv with kernel / sigma.
  got = layer.apply({"params": v["params"], "batch_stats": stats}, x, train=False)
  p = {"conv": {"kernel": v["params"]["conv"]["kernel"] / sigma, "bias": v["params"]["conv"]["bias"]}}
  np.testing.assert_allclose(got, _conv_ref(x, p), atol=1e-4, rtol=1e-3)


def _sngan_task_config(**overrides):
  return tiny_gan_config(**{"model.name": "sngan_resnet", "model.image_size": 32,
                            "data.image_size": 32, "model.width": 16, "model.d_width": 16,
                            "model.z_dim": 16, "batch_size": 8, "objective.loss": "hinge",
                            **overrides})


@pytest.mark.slow
def test_sngan_power_iteration_state_trains_and_is_checkpointed(tmp_path):
  config = _sngan_task_config()
  shape = (8, 32, 32, config.model.channels)
  batch = {"image": np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)}
  mesh = sharding.make_mesh(devices=jax.devices()[:1])
  task = tasks.get_task(config)
  spec = state_lib.sharded_init(task, mesh)
  state = spec.init(jax.random.PRNGKey(config.seed))
  before = _u_leaves(jax.device_get(state.d_batch_stats))
  step_fn = state_lib.compile_train_step(task, mesh, spec.shardings)
  for _ in range(2):
    state, metrics = step_fn(state, sharding.global_batch(batch, mesh))
  assert np.isfinite(float(metrics["d_loss"]))
  after = _u_leaves(jax.device_get(state.d_batch_stats))
  assert len(after) == 11 and set(before) == set(after)  # every SN layer of D, in GANState
  assert all(not np.allclose(before[k], after[k]) for k in after)
  checkpoints = ckpt_lib.Checkpoints(str(tmp_path))
  checkpoints.save(2, state, force=True)
  checkpoints.wait()
  checkpoints.close()
  step, restored = state_lib.restore(config, str(tmp_path), mesh=mesh, task=task)
  assert step == 2
  chex.assert_trees_all_equal(jax.device_get(restored.d_batch_stats),
                              jax.device_get(state.d_batch_stats))


def test_self_attention_is_the_identity_at_init_and_matches_the_sagan_formula():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 4, 16))
  att = layers_gan.SelfAttention()
  v = att.init(jax.random.PRNGKey(1), x, train=False)
  p = v["params"]
  assert [p[k]["conv"]["kernel"].shape[-1] for k in "fghv"] == [2, 2, 8, 16]  # C/8, C/8, C/2, C
  np.testing.assert_array_equal(att.apply(v, x, train=False), x)  # gamma starts at 0
  p = {**p, "gamma": jnp.asarray(0.7)}
  got = att.apply({"params": p}, x, train=False)
  flat = np.asarray(x).reshape(2, 16, 16).astype(np.float64)
  k = {n: np.asarray(p[n]["conv"]["kernel"])[0, 0].astype(np.float64) for n in "fghv"}
  f, g, h = flat @ k["f"], flat @ k["g"], flat @ k["h"]
  s = np.einsum("bic,bjc->bji", f, g)  # s[b, j, i] = f(x_i) . g(x_j)
  beta = np.exp(s - s.max(-1, keepdims=True))
  beta /= beta.sum(-1, keepdims=True)  # softmax over the attended positions i
  want = flat + 0.7 * (np.einsum("bji,bic->bjc", beta, h) @ k["v"])
  np.testing.assert_allclose(np.asarray(got).reshape(2, 16, 16), want, atol=1e-4, rtol=1e-4)


def test_attention_res_places_one_block_in_g_and_in_d_and_bad_values_are_config_errors():
  g = sngan.ResNetGenerator(width=16, image_size=32, attention_res=16)
  d = sngan.ResNetDiscriminator(d_width=16, attention_res=16)
  gv = _init_shapes(g, jnp.zeros((2, 8)))
  dv = _init_shapes(d, jnp.zeros((2, 32, 32, 3)))
  assert "attention" in gv["params"] and "attention" in dv["params"]
  assert sngan.attention_resolutions(32) == [8, 16]
  assert sngan.attention_resolutions(128) == [8, 16, 32, 64]
  with pytest.raises(ConfigError, match="attention_res"):
    _init_shapes(sngan.ResNetGenerator(width=16, image_size=32, attention_res=32),
                 jnp.zeros((2, 8)))


@pytest.mark.slow
def test_conditional_outputs_depend_on_y_and_unconditional_models_accept_y_none():
  z = jax.random.normal(jax.random.PRNGKey(0), (4, 8))
  y0, y1 = jnp.zeros((4,), jnp.int32), jnp.array([1, 2, 3, 1], jnp.int32)
  g = sngan.ResNetGenerator(width=16, image_size=32, num_classes=4)
  gv = g.init(jax.random.PRNGKey(1), z, y0, train=False)
  assert gv["params"]["block0"]["b1"]["gain"]["embedding"].shape == (4, 16)
  # At init every class has gain 1 and bias 0; give the classes their own, as training does.
  leaves, treedef = jax.tree_util.tree_flatten_with_path(gv["params"])
  gv = {**gv, "params": jax.tree_util.tree_unflatten(treedef, [
      leaf + jax.random.normal(jax.random.PRNGKey(i), leaf.shape)
      if jax.tree_util.keystr(path).endswith("['embedding']") else leaf
      for i, (path, leaf) in enumerate(leaves)])}
  x0, x1 = (g.apply(gv, z, y, train=False) for y in (y0, y1))
  chex.assert_shape(x0, (4, 32, 32, 3))
  assert float(jnp.abs(x0 - x1).max()) > 1e-3 and float(jnp.abs(x0).max()) <= 1.0
  d = sngan.ResNetDiscriminator(d_width=16, num_classes=4)
  dv = d.init(jax.random.PRNGKey(2), x0, y0, train=False)
  l0, l1 = (d.apply(dv, x0, y, train=False) for y in (y0, y1))
  assert float(jnp.abs(l0 - l1).max()) > 1e-4
  # The projection term is <embed(y), h>: the same y gives the same logits for both calls.
  np.testing.assert_array_equal(d.apply(dv, x0, y0, train=False), l0)
  with pytest.raises(ConfigError, match="num_classes"):
    g.apply(gv, z, train=False)  # conditional without labels
  # Unconditional: y=None is accepted (as keyword too), labels are refused.
  gu, du = sngan.ResNetGenerator(width=16, image_size=32), sngan.ResNetDiscriminator(d_width=16)
  guv = gu.init(jax.random.PRNGKey(3), z, y=None, train=False)
  xu = gu.apply(guv, z, y=None, train=False)
  du.apply(du.init(jax.random.PRNGKey(4), xu, train=False), xu, y=None, train=False)
  with pytest.raises(ConfigError, match="num_classes"):
    gu.apply(guv, z, y0, train=False)
  dc = dcgan.Discriminator(width=4)
  with pytest.raises(ConfigError, match="unconditional"):
    dc.init(jax.random.PRNGKey(0), jnp.zeros((2, 16, 16, 3)), y0[:2], train=False)


def test_dcgan_spectral_norm_drops_d_batchnorm_and_keeps_the_kernels():
  x = jnp.zeros((2, 64, 64, 3))
  plain = _init_shapes(dcgan.Discriminator(width=64), x)
  sn = _init_shapes(dcgan.Discriminator(width=64, spectral_norm=True), x)
  bn_params = 2 * (128 + 256 + 512)  # D's three BatchNorms (gain, bias)
  assert _count(sn["params"]) == _count(plain["params"]) - bn_params == 2_765_568 - bn_params
  assert len(_u_leaves(sn["batch_stats"])) == 5  # four convs and the logit layer
  assert not any("mean" in k for k in map(str, jax.tree_util.tree_leaves_with_path(sn["batch_stats"])))


def test_registry_builds_sngan_and_refuses_keys_a_model_does_not_read():
  g, d = gan.make_models(_sngan_task_config(**{"model.num_classes": 10, "model.attention_res": 8}))
  assert (g.width, g.num_classes, g.attention_res, g.spectral_norm) == (16, 10, 8, False)
  assert (d.d_width, d.num_classes, d.spectral_norm) == (16, 10, True)
  g, d = gan.make_models(_sngan_task_config(**{"model.width": None, "model.d_width": None}))
  assert sngan.widths(32, g.width, d.d_width) == (256, 128)
  _, d = gan.make_models(tiny_gan_config(**{"model.spectral_norm": True}))
  assert d.spectral_norm
  with pytest.raises(ConfigError, match="num_classes"):
    gan.make_models(tiny_gan_config(**{"model.num_classes": 10}))  # dcgan is unconditional
  with pytest.raises(ConfigError, match="multiple of 16"):
    sngan.widths(64, 24, None)
  with pytest.raises(ConfigError, match="image_size"):
    sngan.widths(48, None, None)


@pytest.mark.slow
def test_shared_embedding_cbn_starts_unconditional_and_one_step_conditions_it():
  """BigGAN's shared class embedding: at init every class sees the same BN (gain 1, bias 0);
  one Adam step on a class-dependent target makes the classes differ by about E times the
  learning rate, where per-class tables move by about the learning rate."""
  x = jax.random.normal(jax.random.PRNGKey(0), (8, 4, 4, 16))
  y = jnp.arange(8) % 4
  spreads = {}
  for shared in (0, 32):
    g = sngan.ResNetGenerator(width=16, image_size=32, channels=1, num_classes=4,
                              shared_embedding=shared)
    z = jax.random.normal(jax.random.PRNGKey(1), (8, 8))
    variables = jax.jit(lambda k: g.init(k, z, y, train=False))(jax.random.PRNGKey(2))
    params, stats = variables["params"], variables["batch_stats"]
    # jitted: one compile per model instead of op-by-op dispatch (the test's cost on a CPU)
    out = jax.jit(lambda p, labels: g.apply({"params": p, "batch_stats": stats}, z, labels,
                                            train=True, mutable=["batch_stats"])[0])
    chex.assert_trees_all_close(out(params, y), out(params, jnp.zeros_like(y)), atol=1e-6)
    if shared:
      assert params["shared"]["embedding"].shape == (4, shared)
      assert params["block0"]["b1"]["gain"]["kernel"].shape == (shared, 16)
    else:
      assert params["block0"]["b1"]["gain"]["embedding"].shape == (4, 16)
    # One Adam step (lr 1e-3) pushing class 1's images up: how far apart do the classes move?
    loss = lambda p: -jnp.mean(out(p, y) * (y == 1)[:, None, None, None])
    tx = optax.adam(1e-3)
    updates, _ = tx.update(jax.jit(jax.grad(loss))(params), tx.init(params), params)
    new = optax.apply_updates(params, updates)
    spreads[shared] = float(jnp.abs(out(new, jnp.ones_like(y)) - out(new, jnp.zeros_like(y))).mean())
  assert spreads[0] > 0 and spreads[32] > 5 * spreads[0], spreads
