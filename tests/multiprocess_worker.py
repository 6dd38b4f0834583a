"""One process of a multi-process CPU run (started by tests/test_multiprocess.py and
tests/test_reliability.py).

usage: python -m tests.multiprocess_worker PROCESS_ID NUM_PROCESSES PORT WORKDIR NUM_STEPS [JSON]

JSON: optional config overrides ({"checkpoint_every": 1000}) for ``tiny_gan_config``.
"""

import json
import os
import sys

pid, nprocs, port, workdir, steps = sys.argv[1:6]
overrides = json.loads(sys.argv[6]) if len(sys.argv) > 6 else {}
os.environ.update(JAX_PLATFORMS="cpu", JAX_COORDINATOR_ADDRESS=f"localhost:{port}",
                  JAX_NUM_PROCESSES=nprocs, JAX_PROCESS_ID=pid)

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8 // int(nprocs))

from genai_jax import errors  # noqa: E402
from genai_jax.train import distributed  # noqa: E402
from genai_jax.train.loop import train_and_evaluate  # noqa: E402
from tests.helpers import tiny_gan_config  # noqa: E402

with errors.friendly():
  distributed.initialize()
  assert jax.process_count() == int(nprocs) and jax.device_count() == 8, jax.devices()
  train_and_evaluate(tiny_gan_config(num_steps=int(steps), **overrides), workdir)
