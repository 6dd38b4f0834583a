"""Will this config's train step fit on that slice, and how fast can it go? Compiled on this machine.

  python -m genai_jax.aot --config=experiments/configs/dcgan_celeba.py --topology=v4-32
  python -m genai_jax.aot --config=experiments/configs/gpt_shakespeare.py:gpt125m \
      --topology=v4-32 --config.mesh.fsdp=4
  python -m genai_jax.aot --config=experiments/configs/dcgan_celeba.py --topology=v5e-16 --batch_sweep

``--config`` takes any config file, ``:preset`` and ``--config.KEY=VALUE`` override that training
takes. Prints one table and a verdict line: ``fits`` (exit 0) or ``does not fit: needs X GiB of
Y GiB ...`` (exit 2); ``--batch_sweep`` then reports the largest global batch that fits. An
unknown topology or a bad override exits 2 with one line. Runs on CPU (``JAX_PLATFORMS=cpu`` is
set unless given): libtpu and the CUDA plugin only describe the target devices.
"""

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # before JAX loads: the local machine only compiles
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from genai_jax.aot import topologies  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, optionally with :preset.",
                                          lock_config=True)
_TOPOLOGY = flags.DEFINE_string("topology", None, f"One of: {', '.join(topologies.TOPOLOGIES)}.")
_SWEEP = flags.DEFINE_bool("batch_sweep", False, "Also search the largest global batch that fits "
                           "(one compile per probe).")


def _fail(message: str) -> None:
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(2)


def main(argv) -> None:
  if len(argv) > 1:
    _fail(f"unexpected arguments {argv[1:]}; pass settings as --config.KEY=VALUE")
  if _CONFIG.value is None:
    _fail("pass --config=experiments/configs/FILE.py[:preset]")
  if _TOPOLOGY.value not in topologies.TOPOLOGIES:
    _fail(f"unknown topology {_TOPOLOGY.value!r}; use one of: {', '.join(topologies.TOPOLOGIES)}")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  from genai_jax import errors
  from genai_jax.aot import report as report_lib
  config, topology = _CONFIG.value, _TOPOLOGY.value
  title = flags.FLAGS["config"].config_filename  # file:preset as given
  with errors.friendly():
    report = report_lib.compile_step(config, topology)
    print(report_lib.table(report, title), flush=True)
    print(f"  {_CITATION}", flush=True)
    line = report_lib.verdict(report, config)
    print(line, flush=True)
    if _SWEEP.value:
      def probe(r):
        state = "fits" if r.fits else "does not fit"
        peak = f" (peak {r.peak_bytes / topologies.GiB:.2f} GiB)" if r.peak_bytes else ""
        print(f"  batch {r.batch_size}: {state}{peak}", flush=True)
      best, fail, _ = report_lib.batch_sweep(config, topology, on_probe=probe)
      above = f"; {fail} does not" if fail else ""
      print(f"largest global batch that fits on {topology}: {best or 'none'}{above} "
            f"(multiples of {report_lib.batch_quantum(config, topology)})", flush=True)
  sys.exit(0 if report.fits else 2)


_CITATION = ("peaks: spec sheets (cloud.google.com/tpu/docs/v4|v5e|v5p|v6e; NVIDIA H100 datasheet, "
             "dense), see genai_jax/aot/topologies.py")


def _parse_flags(argv):
  try:
    return flags.FLAGS(argv)
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
    # e.g. --config.model.widht=3: one line naming the key, not a parser traceback.
    msg = " ".join(str(e).replace("\\n", " ").replace("\n", " ").replace("\\", "").split()).strip("'\"")
    _fail(f"bad flag or config override: {msg}; pass config keys as --config.KEY=VALUE")


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
