"""Input-pipeline throughput: per-example decode + preprocess rates on one thread, and the
loader's batches/s on the demo preset, so a user can size a machine's input side.

  python -m benchmarks.loader_throughput [--seconds 2] [--batch 128] [--steps 60]

Per thread (one Python thread, serial; images per second of the thread's CPU time, so a busy
machine does not deflate it; the median of 3 passes): the demo's stored LFW
faces (25x25 grayscale PNG records read from ArrayRecord -> 32x32, ``pipelines.image_batches``'
decode: read, PNG decode, resize, flip, scale); and, from images encoded in memory, the same
decode for MNIST-size (28x28 grayscale PNG -> 28x28), the faces at 64x64 RGB (JPEG -> 64x64) and
CelebA size (218x178 RGB JPEG -> centre crop, 64x64). Then the loader (``pipelines.batches``,
train, flips on) on the demo preset with 1 thread and with one per core, with its decoded-example
cache (the default: 90 faces fit) and without it: batches/s and images/s.
Reading needs no TensorFlow; the first run prepares the embedded faces (that needs it).
"""

import argparse
import io
import os
import statistics
import tempfile
import time

import numpy as np
from PIL import Image


def _rate(fn, items, seconds: float) -> float:
  """Items per second of this thread's CPU time (``time.thread_time``: what a core gives, even on
  a busy machine) of ``fn`` over ``items`` (cycled), the median of 3 passes of ~``seconds`` / 3
  of CPU time."""
  rates = []
  for _ in range(3):
    n, t0 = 0, time.thread_time()
    while time.thread_time() - t0 < seconds / 3:
      for x in items:
        fn(x)
      n += len(items)
    rates.append(n / (time.thread_time() - t0))
  return statistics.median(rates)


def _encoded(images, fmt: str) -> list:
  out = []
  for im in images:
    buf = io.BytesIO()
    Image.fromarray(im.squeeze(-1) if im.shape[-1] == 1 else im).save(buf, format=fmt, quality=95)
    out.append(buf.getvalue())
  return out


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--seconds", type=float, default=2.0, help="time per figure")
  p.add_argument("--batch", type=int, default=128)
  p.add_argument("--steps", type=int, default=60, help="batches timed per loader figure")
  p.add_argument("--data_dir", default="", help="tfds data dir (default: $TFDS_DATA_DIR or a temp dir)")
  args = p.parse_args(argv)
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  from experiments.configs import dcgan_celeba
  from genai_jax.data import loader, pipelines, preprocess, reader
  cfg = dcgan_celeba.get_config("demo").data
  cfg.data_dir = args.data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.join(
      tempfile.gettempdir(), "genai_jax_bench_tfds")
  builder = pipelines.get_builder(cfg)
  shard = reader.open_shard(builder, "train", "image", name=cfg.name)
  load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
  print(f"decode + preprocess, per thread (images per CPU second; {loader.default_threads()} cores "
        f"here, load average {load:.1f}):")

  def demo(i):
    enc = shard[i]["image"]
    preprocess.preprocess_image(preprocess.decode_image(enc, 1), cfg,
                                preprocess.uniform(0, 0, i, 0) < 0.5)
  rate = _rate(demo, range(len(shard)), args.seconds)
  print(f"  {'demo LFW faces, 25x25 gray PNG record -> 32x32:':47s} {rate:8,.0f} images/s")

  faces = np.stack([preprocess.decode_image(shard[i]["image"], 1) for i in range(len(shard))])
  def like(size, rgb):  # the faces at another size, as uint8 [n, size, size, C]
    out = np.stack([np.clip(preprocess.resize(f.astype(np.float32), size), 0, 255) for f in faces])
    return np.rint(np.repeat(out, 3, -1) if rgb else out).astype(np.uint8)
  cases = [("MNIST size, 28x28 gray PNG -> 28x28", _encoded(like(28, False), "PNG"), 28, 1, 1),
           ("64x64 RGB JPEG -> 64x64", _encoded(like(64, True), "JPEG"), 64, 3, 3),
           ("CelebA size, 218x178 RGB JPEG -> crop, 64x64",
            _encoded([np.rint(np.clip(preprocess.resize(f.astype(np.float32), 218), 0, 255))
                      .astype(np.uint8)[:, 20:198].repeat(3, -1) for f in faces], "JPEG"), 64, 3, 3)]
  for name, encs, size, c_in, c_out in cases:
    c = dcgan_celeba.get_config("demo").data
    c.update(image_size=size, channels=c_out)
    decode = lambda e, c=c, c_in=c_in: preprocess.preprocess_image(  # noqa: E731
        preprocess.decode_image(e, c_in), c, True)
    print(f"  {name + ':':47s} {_rate(decode, encs, args.seconds):8,.0f} images/s")

  print(f"loader on the demo preset (batch {args.batch}, train, random flips; wall clock):")
  cfg.unlock()  # data.threads and data.cache_mb are optional (one thread per core; 1024 MiB)
  for cache_mb, what in ((1024, "decoded once, cached"), (0, "decoded every time (cache_mb=0)")):
    for threads in sorted({1, loader.default_threads()}):
      cfg.update(threads=threads, cache_mb=cache_mb)
      it = pipelines.batches(cfg, "train", args.batch, train=True, seed=0)
      next(it)  # opens the shards, starts the threads
      t0 = time.perf_counter()
      for _ in range(args.steps):
        next(it)
      rate = args.steps / (time.perf_counter() - t0)
      it.close()
      print(f"  {what}, {threads} thread(s): {rate:7.1f} batches/s = {rate * args.batch:8,.0f} "
            f"images/s")


if __name__ == "__main__":
  main()
