"""Joining a multi-process (multi-host) JAX job: every host runs the same program.

``initialize()`` must run before any JAX computation; the experiment entry point calls it.
It connects when the environment describes a job and is a no-op on a single machine:

* explicit: ``JAX_COORDINATOR_ADDRESS`` (host:port of process 0), ``JAX_NUM_PROCESSES`` and
  ``JAX_PROCESS_ID`` (CPU clusters, GPU nodes under SLURM via launch/slurm_gpu.sbatch, tests);
* Cloud TPU slices with several hosts (``TPU_WORKER_HOSTNAMES`` lists them): JAX finds the
  coordinator itself.
"""

import os

import jax

from genai_jax import multihost
from genai_jax.errors import ConfigError

_ENV = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def initialize() -> None:
  if jax.distributed.is_initialized():
    return
  if os.environ.get(_ENV[0]):
    try:
      num, pid = int(os.environ[_ENV[1]]), int(os.environ[_ENV[2]])
    except (KeyError, ValueError):
      raise ConfigError(f"{_ENV[0]} is set, so {_ENV[1]} and {_ENV[2]} must be set to integers "
                        f"too; set all three or none") from None
    # CPU processes need a collectives backend to talk to each other (GPU/TPU ignore this).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(os.environ[_ENV[0]], num_processes=num, process_id=pid)
  elif "," in os.environ.get("TPU_WORKER_HOSTNAMES", ""):
    jax.distributed.initialize()
  else:
    return
  multihost.connected()
