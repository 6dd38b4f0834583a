"""experiments/class_accuracy.py: digit-classifier scores of a generator's samples (per-class
accuracy, classes present, FCD beside the real-vs-real floor) on short digits runs."""

import numpy as np
import pytest

from tests.helpers import tiny_gan_config


def _quick_classifier(monkeypatch, tmp_path):
  from genai_jax.eval import classifier
  monkeypatch.setenv("GENAI_JAX_CACHE", str(tmp_path / "cache"))
  train = classifier.train
  monkeypatch.setattr(classifier, "train", lambda data_cfg, **kw: train(data_cfg, steps=60))


def _train(config, workdir):
  from genai_jax.train.loop import train_and_evaluate
  train_and_evaluate(config, workdir)
  return workdir


@pytest.mark.slow
def test_scores_of_a_conditional_digits_gan(tfds_dir, tmp_path, monkeypatch):
  from experiments import class_accuracy
  _quick_classifier(monkeypatch, tmp_path)
  digits = {"data.name": "sklearn_digits", "data.center_crop": False, "data.random_flip": False,
            "num_steps": 2, "eval_every": 100, "checkpoint_every": 2,
            "model.image_size": 32, "data.image_size": 32}
  cond = _train(tiny_gan_config(**digits, **{"model.name": "sngan_resnet", "model.num_classes": 10,
                                             "model.d_width": 8, "data.labels": True}),
                str(tmp_path / "cond"))
  s = class_accuracy.score(cond, per_class=10, num_reference=200)
  assert s.step == 2 and s.num_samples == 100 and s.num_reference == 200
  assert s.per_class_accuracy.shape == (10,) and np.all((0 <= s.per_class_accuracy) & (s.per_class_accuracy <= 1))
  np.testing.assert_allclose([s.class_share.sum(), s.real_class_share.sum()], [1, 1])
  # The classifier sees every class among real test digits; two steps of a GAN are far from them.
  assert s.present(s.real_class_share) == 10
  assert 0 < s.fcd_real < s.fcd / 3
  text = class_accuracy.report(s)
  assert "per-class accuracy" in text and "the floor" in text and f"{s.fcd:.2f}" in text


@pytest.mark.slow
def test_scores_of_an_unconditional_vae(tfds_dir, tmp_path, monkeypatch):
  """VAEs draw through Task.generate like unconditional GANs: no per-class accuracy, the rest."""
  from experiments import class_accuracy
  from experiments.configs import vae_mnist
  from tests.helpers import override
  _quick_classifier(monkeypatch, tmp_path)
  config = override(vae_mnist.get_config("demo"), {"num_steps": 2, "checkpoint_every": 2,
                                                   "eval_every": 100, "batch_size": 24})
  config.eval_gen.update(at_end=False)
  u = class_accuracy.score(_train(config, str(tmp_path / "vae")), per_class=10, num_reference=200)
  assert u.step == 2 and u.per_class_accuracy is None and "per-class" not in class_accuracy.report(u)
  np.testing.assert_allclose(u.class_share.sum(), 1)
  assert 0 < u.fcd_real < u.fcd  # two steps of a VAE: far from real digits


def test_a_run_on_other_data_gets_one_line(tmp_path):
  from experiments import class_accuracy
  from genai_jax.errors import ConfigError
  from genai_jax.train import workdir as workdir_lib
  workdir = str(tmp_path / "faces")
  workdir_lib.save_config(tiny_gan_config(), workdir)  # the faces demo: no digit classifier
  with pytest.raises(ConfigError, match="1-channel run on one of"):
    class_accuracy.score(workdir)
