"""The seeds' own networks: parameter counts worked out by hand from each seed's layer list, output
shapes, the model registries (a setting the chosen model does not read is an error), the compute
dtype, and a short run of every tfds seed preset under mock data."""

from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments.configs import dcgan_celeba, gpt_shakespeare, seed_gans, vae_mnist
from genai_jax.errors import ConfigError
from genai_jax.models import registry
from genai_jax.tasks import gan, vae
from genai_jax.train.loop import train_and_evaluate
from tests.helpers import override


def _count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _gan(preset, **overrides):
  """(G params, D params, images [2, S, S, C], logits [2]) of a seed GAN preset."""
  config = override(seed_gans.get_config(preset), overrides)
  g, d = gan.make_models(config)
  z = jnp.zeros((2, config.model.z_dim))
  # Shapes only (no compute): eval_shape traces init and apply.
  g_vars = jax.eval_shape(lambda: g.init(jax.random.PRNGKey(1), z, train=False))
  images = jax.eval_shape(lambda v: g.apply(v, z, train=False), g_vars)
  d_vars = jax.eval_shape(lambda x: d.init(jax.random.PRNGKey(2), x, train=False), images)
  logits = jax.eval_shape(lambda v, x: d.apply(v, x, train=False), d_vars, images)
  return g_vars["params"], d_vars["params"], images, logits


def bn(c):  # a BatchNorm's trainable parameters: scale and offset per channel
  return 2 * c


def conv(k, cin, cout, bias=True):
  return k * k * cin * cout + (cout if bias else 0)


def dense(n_in, n_out):
  return n_in * n_out + n_out


# --- parameter counts from the seeds' layer lists ----------------------------------------------

@pytest.mark.parametrize("preset,c", [("seed_dcgan32", 3), ("seed_dcgan32_faces", 1)])
def test_seed_dcgan32_counts_and_shapes(preset, c):
  g, d, images, logits = _gan(preset)
  # G: ConvT 100->256 4x4 s1 p0, BN, ConvT 256->128, BN, ConvT 128->64, BN, ConvT 64->c; no biases.
  g_count = (conv(4, 100, 256, False) + bn(256) + conv(4, 256, 128, False) + bn(128)
             + conv(4, 128, 64, False) + bn(64) + conv(4, 64, c, False))
  # D: Conv c->64 (no BN), Conv 64->128, BN, Conv 128->256, BN, Conv 256->1 4x4 valid; no biases.
  d_count = (conv(4, c, 64, False) + conv(4, 64, 128, False) + bn(128) + conv(4, 128, 256, False)
             + bn(256) + conv(4, 256, 1, False))
  assert (_count(g), _count(d)) == (g_count, d_count)
  if c == 3:
    assert (g_count, d_count) == (1_068_928, 663_296)
  assert images.shape == (2, 32, 32, c) and logits.shape == (2,)


def test_seed_keras_conv_counts_and_shapes():
  g, d, images, logits = _gan("seed_keras_conv_mnist")
  # G: Dense 100->7*7*128, ConvT 128->128 5x5, BN(128), ConvT 128->128 5x5, Conv 128->1 7x7, biases.
  g_count = (dense(100, 7 * 7 * 128) + conv(5, 128, 128) + bn(128) + conv(5, 128, 128)
             + conv(7, 128, 1))
  # D: Conv 1->128 5x5 s2, Conv 128->128 5x5 s2 (28 -> 14 -> 7), Dense 7*7*128 -> 1.
  d_count = conv(5, 1, 128) + conv(5, 128, 128) + dense(7 * 7 * 128, 1)
  assert (_count(g), _count(d)) == (g_count, d_count) == (1_459_457, 419_329)
  assert images.shape == (2, 28, 28, 1) and logits.shape == (2,)  # 28x28: the seed's 14x14 fixed


def test_seed_keras_bn_momentum_is_the_running_average_decay():
  """Keras momentum 0.8: running = 0.8 * running + 0.2 * batch statistic (flax's meaning too; a
  PyTorch momentum of 0.8 would keep 0.8 of the batch statistic instead)."""
  z = jax.random.normal(jax.random.PRNGKey(0), (4, 100))

  def running_mean(momentum):
    g, _ = gan.make_models(override(seed_gans.get_config("seed_keras_conv_digits"),
                                    {"model.bn_momentum": momentum}))
    variables = g.init(jax.random.PRNGKey(1), z, train=False)
    _, upd = g.apply(variables, z, train=True, mutable=["batch_stats"])
    return np.asarray(upd["batch_stats"]["BatchNorm_0"]["mean"])  # from an initial 0

  batch_mean = running_mean(0.0)
  assert np.abs(batch_mean).max() > 1e-3
  np.testing.assert_allclose(running_mean(0.8), 0.2 * batch_mean, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("preset,g_layers,d_layers,out", [
    ("seed_mlp_gan", (100, 128, 64, 784), (784, 128, 1), "sigmoid"),
    ("seed_mlp_gan_relu", (100, 128, 256, 784), (784, 128, 256, 1), "tanh"),
])
def test_seed_mlp_gan_counts_and_shapes(preset, g_layers, d_layers, out):
  g, d, images, logits = _gan(preset)
  pairs = lambda layers: zip(layers[:-1], layers[1:])
  assert _count(g) == sum(dense(a, b) for a, b in pairs(g_layers))
  assert _count(d) == sum(dense(a, b) for a, b in pairs(d_layers))
  assert images.shape == (2, 28, 28, 1) and logits.shape == (2,)
  assert seed_gans.get_config(preset).model.output == out


def test_sigmoid_generator_is_the_seeds_network_on_unit_pixels():
  """output='sigmoid': G(z) = 2 sigmoid(.) - 1 in the pipeline's range, and D sees (x + 1) / 2, so
  D(G(z)) is exactly the seed's D on the seed's sigmoid output."""
  config = seed_gans.get_config("seed_mlp_gan_digits")
  g, d = gan.make_models(config)
  z = jax.random.normal(jax.random.PRNGKey(0), (3, 100))
  gp = g.init(jax.random.PRNGKey(1), z)["params"]
  dp = d.init(jax.random.PRNGKey(2), jnp.zeros((3, 28, 28, 1)))["params"]
  relu = jax.nn.relu
  h = relu(z @ gp["Dense_0"]["kernel"] + gp["Dense_0"]["bias"])
  h = relu(h @ gp["Dense_1"]["kernel"] + gp["Dense_1"]["bias"])
  unit = jax.nn.sigmoid(h @ gp["Dense_2"]["kernel"] + gp["Dense_2"]["bias"])  # the seed's pixels
  images = g.apply({"params": gp}, z)
  np.testing.assert_allclose(images.reshape(3, -1), 2 * unit - 1, atol=1e-5)
  seed_d = (relu(unit @ dp["Dense_0"]["kernel"] + dp["Dense_0"]["bias"]) @ dp["Dense_1"]["kernel"]
            + dp["Dense_1"]["bias"])[:, 0]
  np.testing.assert_allclose(d.apply({"params": dp}, images), seed_d, atol=1e-4)


@pytest.mark.parametrize("preset,enc,dec,latent", [
    ("seed_tf_vae", (784, 128, 64), (100, 128, 64, 784), 100),
    ("seed_torch_vae", (784, 128), (20, 128, 784), 20),
])
def test_seed_vae_counts_and_shapes(preset, enc, dec, latent):
  config = vae_mnist.get_config(preset)
  model = vae.make_model(config)
  x = jnp.zeros((2, 28, 28, 1))
  params = model.init(jax.random.PRNGKey(0), x)["params"]
  pairs = lambda layers: zip(layers[:-1], layers[1:])
  # Encoder hidden layers, then the mean and log-variance heads (= one Dense to 2 x latent).
  enc_count = sum(dense(a, b) for a, b in pairs(enc)) + dense(enc[-1], 2 * latent)
  dec_count = sum(dense(a, b) for a, b in pairs(dec))
  assert _count(params["encoder"]) == enc_count
  assert _count(params["decoder"]) == dec_count
  mean, logvar = model.apply({"params": params}, x, method="encode")
  assert mean.shape == logvar.shape == (2, latent)
  out = model.apply({"params": params}, jnp.zeros((5, 2, latent)), method="decode")
  assert out.shape == (5, 2, 28, 28, 1)  # one logit / sigmoid pre-activation per pixel


# --- registries and dtype ----------------------------------------------------------------------

def test_configs_declare_exactly_the_registries_keys():
  from genai_jax.tasks import lm
  assert set(dcgan_celeba.get_config().model.keys()) == registry.all_keys(gan.MODELS, gan.SHARED_KEYS)
  assert set(vae_mnist.get_config().model.keys()) == registry.all_keys(vae.MODELS, vae.SHARED_KEYS)
  assert set(gpt_shakespeare.get_config().model.keys()) | {"name"} == registry.all_keys(
      lm.MODELS, lm.SHARED_KEYS)  # the LM's model is chosen by config.task


@pytest.mark.parametrize("overrides,match", [
    ({"model.width": 32}, r"model.width=32 does not apply to the GAN model 'mlp' \(it reads "),
    ({"model.kernel_size": 3}, "model.kernel_size=3 does not apply to the GAN model 'mlp'"),
    ({"model.name": "vit"}, r"set model.name to one of \['conv', 'dcgan', 'keras_conv'"),
    ({"model.dtype": "float16x"}, r"unknown model.dtype 'float16x'; set model.dtype to "
                                  r"one of \['float32', 'bfloat16', 'float16'\]"),
    ({"model.activation": "swishy"}, "unknown activation 'swishy'"),
    ({"model.output": "softmax"}, r"unknown model.output 'softmax'.*\['tanh', 'sigmoid'\]"),
])
def test_gan_settings_that_do_not_apply_are_errors(overrides, match):
  with pytest.raises(ConfigError, match=match):
    _gan("seed_mlp_gan_digits", **overrides)


def test_vae_settings_that_do_not_apply_are_errors():
  config = override(vae_mnist.get_config("seed_torch_vae"), {"model.width": 8})
  with pytest.raises(ConfigError, match="model.width=8 does not apply to the VAE model 'mlp'"):
    vae.make_model(config)
  # Switching the model from the command line keeps working: unset keys take the model's default.
  conv = vae.make_model(override(vae_mnist.get_config(), {"model.name": "conv"}))
  assert conv.encoder.width == 32


@pytest.mark.parametrize("preset", ["seed_dcgan32", "seed_keras_conv_mnist", "seed_mlp_gan"])
def test_every_gan_model_computes_in_the_configured_dtype(preset):
  g, d, images, logits = _gan(preset, **{"model.dtype": "bfloat16"})
  assert {x.dtype for x in jax.tree.leaves((g, d))} == {jnp.dtype(jnp.float32)}  # params stay f32
  assert images.dtype == logits.dtype == jnp.float32  # outputs are float32
  gen, disc = gan.make_models(override(seed_gans.get_config(preset), {"model.dtype": "bfloat16"}))
  z = jnp.zeros((2, 100))
  g_jaxpr = jax.make_jaxpr(lambda p: gen.apply({"params": p}, z, train=False,
                                               mutable=["batch_stats"]))(g)
  d_jaxpr = jax.make_jaxpr(lambda p: disc.apply({"params": p}, jnp.zeros(images.shape),
                                                train=False, mutable=["batch_stats"]))(d)
  # the matmuls / convolutions run in bfloat16
  assert "bf16[2," in str(g_jaxpr) and "bf16[2," in str(d_jaxpr)


@pytest.mark.parametrize("preset,overrides,match", [
    ("gru_demo", {"model.d_model": 64}, "model.d_model=64 does not apply to the LM model 'gru_lm'"),
    ("demo", {"model.gru_hidden": 64}, "model.gru_hidden=64 does not apply to the LM model 'causal_lm'"),
    ("demo", {"task": "rnn_lm"}, r"set task to one of \['causal_lm', 'gru_lm', 'masked_lm'\]"),
])
def test_lm_settings_that_do_not_apply_are_errors(preset, overrides, match):
  from genai_jax.tasks import lm
  config = override(gpt_shakespeare.get_config(preset), overrides)
  with pytest.raises(ConfigError, match=match):
    registry.settings("LM", lm.MODELS, config.model, lm.SHARED_KEYS, name=config.task,
                      name_key="task")


def test_gru_lm_computes_in_the_configured_dtype():
  from genai_jax.tasks import lm
  config = override(gpt_shakespeare.get_config("gru_demo"), {"model.dtype": "bfloat16"})
  entry, settings = registry.settings("LM", lm.MODELS, config.model, lm.SHARED_KEYS,
                                      name=config.task)
  model = entry.build({**settings, "kind": "gru_lm", "vocab_size": 11, "seq_len": 8})
  tokens = jnp.zeros((2, 8), jnp.int32)
  params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), tokens))
  assert {x.dtype for x in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
  logits, _ = jax.eval_shape(lambda p: model.apply(p, tokens), params)
  assert logits.shape == (2, 8, 11) and logits.dtype == jnp.float32
  assert "bf16[2,8,256]" in str(jax.make_jaxpr(lambda p: model.apply(p, tokens))(params))


# --- the tfds seed presets run under mock data -------------------------------------------------

TFDS_PRESETS = [(seed_gans.get_config, "seed_dcgan32"), (seed_gans.get_config, "seed_keras_conv_mnist"),
                (seed_gans.get_config, "seed_mlp_gan"), (seed_gans.get_config, "seed_mlp_gan_relu"),
                (vae_mnist.get_config, "seed_tf_vae"), (vae_mnist.get_config, "seed_torch_vae")]


def _mock_tfds(num_examples=16):
  # mock_data fakes the records but not the "prepared" marker files, so say they are there.
  return tfds.testing.mock_data(num_examples=num_examples), \
      mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", return_value=True)


@pytest.mark.parametrize("config_fn,preset", TFDS_PRESETS)
def test_tfds_seed_presets_read_their_dataset_and_trace_a_step(tfds_dir, config_fn, preset):
  """Each tfds preset reads the seed's dataset into batches its exact network takes (the train
  step traced on the mocked batch, without compiling the big ones)."""
  from genai_jax import tasks
  from genai_jax.data import pipelines
  config = config_fn(preset)
  assert config.data.name in ("celeb_a", "mnist")  # the seed's own dataset
  mock_data, prepared = _mock_tfds()
  with mock_data, prepared:
    batch = next(pipelines.image_batches(config.data, config.data.train_split, 8, train=True, seed=0))
  size, c = config.model.image_size, config.model.channels
  assert batch["image"].shape == (8, size, size, c) and batch["image"].dtype == np.float32
  task = tasks.get_task(config)
  state = jax.eval_shape(task.init, jax.random.PRNGKey(0))
  _, metrics = jax.eval_shape(task.train_step, state, {"image": batch["image"]})
  assert all(m.shape == () for m in jax.tree.leaves(metrics))


@pytest.mark.parametrize("config_fn,preset", [  # the GAN in the slow tier: fast tier under 3 min
    pytest.param(seed_gans.get_config, "seed_mlp_gan", marks=pytest.mark.slow),
    (vae_mnist.get_config, "seed_torch_vae")])
def test_tfds_seed_presets_train_under_mock_data(tfds_dir, tmp_path, config_fn, preset):
  config = config_fn(preset)
  # Two steps of the exact network on 8 fake devices; only the schedule is shortened.
  config.update(batch_size=8, num_steps=2, log_every=1, eval_every=2, checkpoint_every=2,
                eval_batches=1, num_samples=4)
  if config.task == "vae":
    config.objective.iw_samples = 2
  mock_data, prepared = _mock_tfds()
  with mock_data, prepared:
    result = train_and_evaluate(config, str(tmp_path))
  assert any(k.startswith("eval/") for k in result), result
  assert all(np.isfinite(v) for v in result.values()), result


def test_a_bad_dtype_fails_in_config_validation_before_any_data():
  from genai_jax import tasks
  config = override(dcgan_celeba.get_config(), {"model.dtype": "float16x"})  # CelebA not prepared
  with pytest.raises(ConfigError, match=r"unknown model.dtype 'float16x'; set model.dtype"):
    tasks.validate(config)
