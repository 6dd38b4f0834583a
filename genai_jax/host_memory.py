"""Host memory for the CPU backend: make glibc's malloc keep freed memory and hand it out again.

Why. XLA:CPU allocates an executable's temporaries as one block per call (242 MB for the char-GPT
benchmark step, more for DCGAN) on one of its worker threads, and frees it when the call ends.
glibc serves a request over 64 MB (its per-thread heap size) from a worker thread's arena with a
fresh ``mmap`` and returns it with ``munmap`` on free, whatever ``M_MMAP_THRESHOLD`` says. So every
step touched ~60,000 (GPT) and ~115,000 (DCGAN) never-used pages, each a page fault and a zeroed
page, and the faults land inside the GEMMs and fusions that first write them: the GPT step's
GEMMs looked 1.3-2x slower in the step than alone. With this module the step reuses the same
pages: 0 faults a step, GPT 375-392 -> 280-295 ms, DCGAN ~8%, the VAE unchanged
(``benchmarks/README.md``).

How. Two settings, before JAX's first computation. (1) JAX runs a one-device CPU computation on
the calling thread (``jax_cpu_enable_async_dispatch=False``), which is the main thread, so the
block comes from glibc's main heap; the loop's overlap of host work with the step is worth
little on a CPU (the tiny VAE step: unchanged; ``make demo``: 199 -> 159 s). (2) ``mallopt``:
no ``mmap`` for large blocks and no trimming of the heap's free top (up to 2 GiB), so a freed
block is handed out again. The price is that the process keeps its peak heap (what PyTorch's and
TensorFlow's caching allocators do on purpose), so it is applied only when JAX runs on the CPU:
on GPU/TPU hosts the device allocator owns the big buffers. Forcing every thread onto the main
heap instead (``M_ARENA_MAX=1``) also removes the faults, but serialises XLA's multi-threaded
compiler on one malloc lock: the DCGAN step compiled in 20-22 s instead of 15-17 s. Only glibc
(Linux) has these knobs; elsewhere nothing changes ((1) alone would not help).
``GENAI_JAX_HOST_MALLOC=system`` turns both off (e.g. under jemalloc/tcmalloc via ``LD_PRELOAD``).
"""

import ctypes
import ctypes.util
import os

ENV = "GENAI_JAX_HOST_MALLOC"

# glibc's <malloc.h> parameter numbers.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1  # mallopt takes an int: trim only a free top above 2 GiB

_applied = None

# glibc's largest heap for a thread other than the main one (HEAP_MAX_SIZE, 64 MiB on 64-bit):
# a block that does not fit one is a fresh mmap there whatever mallopt says, so a computation
# with temporaries near that size must run on the main thread for them to be reused.
THREAD_HEAP_BYTES = 64 << 20


def _glibc():
  """The process's C library if it is glibc, else None."""
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.gnu_get_libc_version.restype = ctypes.c_char_p
    libc.gnu_get_libc_version()
    return libc
  except (OSError, AttributeError):
    return None


def reuse_freed_memory() -> bool:
  """Make a one-device CPU computation run on the calling thread and glibc's malloc keep and
  reuse freed memory (see the module docstring). Call it before JAX's first computation, when
  the run is on the CPU. Idempotent; returns whether it applied (False with
  ``GENAI_JAX_HOST_MALLOC=system`` or on a non-glibc platform)."""
  global _applied
  if _applied is None:
    libc = None if os.environ.get(ENV, "").lower() == "system" else _glibc()
    _applied = bool(libc) and all(libc.mallopt(param, value) == 1 for param, value in
                                  ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _INT_MAX)))
    if _applied:
      import jax
      jax.config.update("jax_cpu_enable_async_dispatch", False)
  return _applied


def no_accelerator_devices() -> bool:
  """Whether this machine has no GPU or TPU device files (so JAX can only run on its CPU)."""
  import glob
  return not any(glob.glob(p) for p in ("/dev/nvidia[0-9]*", "/dev/accel*", "/dev/vfio/[0-9]*"))


def configure_for_cpu() -> bool:
  """``reuse_freed_memory()`` when this process will run JAX on the CPU only: ``JAX_PLATFORMS``
  is 'cpu', or unset on a machine without accelerators. Returns whether it applied."""
  platforms = os.environ.get("JAX_PLATFORMS", "").strip().lower()
  if platforms == "cpu" or (not platforms and no_accelerator_devices()):
    return reuse_freed_memory()
  return False


def needs_calling_thread(temp_bytes: int) -> bool:
  """Whether a CPU computation with ``temp_bytes`` of temporaries must run on the calling (main)
  thread for its memory to be reused: when ``reuse_freed_memory`` applied and the temporaries
  exceed half a worker thread's heap. A computation runs on the calling thread only when its
  inputs are ready at dispatch; otherwise it runs later on whichever thread readies them (a
  batch passed as NumPy: the thread that copies it), which then maps and faults in the whole
  block every step (the Keras conv GAN's 569 MB: 130,000 page faults and 15% of the step)."""
  return bool(_applied) and temp_bytes > THREAD_HEAP_BYTES // 2
