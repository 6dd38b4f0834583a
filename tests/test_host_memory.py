"""genai_jax.host_memory: on the CPU, a step's large temporaries reuse freed pages instead of being
fresh (page-faulting) memory every call."""

import json
import os
import subprocess
import sys

import pytest

from genai_jax import host_memory

# Runs in a fresh process: the settings must precede JAX's first computation. The barriers
# keep both intermediates materialised: 2 x 64 MB of temporaries, over glibc's 64 MB per-thread
# heap, the case that used to be a fresh mmap every call (from an XLA worker thread).
_PROBE = r"""
import json, resource, sys
from genai_jax import host_memory
applied = host_memory.configure_for_cpu()
import jax, jax.numpy as jnp

@jax.jit
def f(x):
  a = jax.lax.optimization_barrier(jnp.sin(x))
  b = jax.lax.optimization_barrier(jnp.cos(x))
  return jnp.sum(a * b)

x = jnp.ones((4096, 4096), jnp.float32)
temp = f.lower(x).compile().memory_analysis().temp_size_in_bytes
faults = []
for _ in range(15):  # the first few calls may still grow the heap (fragmentation settling)
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  f(x).block_until_ready()
  faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"applied": applied, "temp_mb": temp / 2**20, "faults": faults,
                  "faults_per_call": sorted(faults[8:])[3]}))  # steady state: median of the last 7
"""


def _probe(**env):
  out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "JAX_PLATFORMS": "cpu", **env})
  assert out.returncode == 0, out.stderr[-2000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_large_temporaries_reuse_pages_on_cpu():
  if host_memory._glibc() is None:
    import pytest
    pytest.skip("glibc only")
  reused = _probe()
  fresh = _probe(**{host_memory.ENV: "system"})
  assert reused["applied"] and not fresh["applied"]
  assert reused["temp_mb"] >= 128, reused  # the probe exercises the > 64 MB case
  pages = reused["temp_mb"] * 2**20 / 4096
  # glibc's default: every call faults in the temporaries' pages again (32,768 pages here).
  assert fresh["faults_per_call"] > 0.5 * pages, (fresh, pages)
  assert reused["faults_per_call"] < 0.02 * pages, (reused, fresh)


def test_only_for_cpu_runs(monkeypatch):
  monkeypatch.setattr(host_memory, "reuse_freed_memory", lambda: True)
  monkeypatch.setenv("JAX_PLATFORMS", "tpu")
  assert not host_memory.configure_for_cpu()
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  assert host_memory.configure_for_cpu()
  monkeypatch.delenv("JAX_PLATFORMS")
  monkeypatch.setattr(host_memory, "no_accelerator_devices", lambda: False)
  assert not host_memory.configure_for_cpu()
