"""Host batches to global device arrays ahead of the step that uses them (``device_batches``).

On an accelerator the loop dispatches step N asynchronously and then needs batch N+1: fetched
from the loader and copied to the devices here, in a background thread, while step N runs, so
the step never waits for the host-to-device copy (on a GPU about 0.3 ms for a 64x64x3 batch of
128, a tenth of a DCGAN step at 50k images/s).

On a CPU backend there is nothing to overlap: the step runs synchronously on every core
(``host_memory``: async dispatch off), so a thread that copies batches only takes cores from the
step, and its work runs several times slower among the step's threads than alone. There the
loader's NumPy batches go straight into the compiled step, whose C++ dispatch copies them
(``HostBatches``); the loader's own threads still decode ahead. Measured on the MLP VAE row of
``make bench-accel`` (2-core CPU, idle, 5 alternating runs of ``--rounds=5 --min_round_s=2``):
the loop at a median 0.97 (0.91-0.97) of the bare step's rate, against 0.91 (0.90-0.94) through
the thread (docs/results.md). A step with big temporaries gets its batches placed and ready
instead (``HostBatches.for_step``): given NumPy it would run on the thread that copies them,
where its temporaries are fresh pages every step (the Keras conv GAN's loop ran at 0.85 of its
step).
"""

import queue
import threading
from typing import Iterator, Mapping

import jax
import numpy as np

from genai_jax.train import sharding

_END = object()


def _to_devices(batch: Mapping[str, np.ndarray], mesh, to) -> dict:
  """``sharding.global_batch(batch, mesh)``; on one process, where the batch is all local, each
  array's device shards sliced from it directly (``make_array_from_callback`` with ``to``, the
  batch sharding: the same arrays in about half the host time of ``device_put`` or
  ``make_array_from_process_local_data``, ~60 vs ~110 us a [128, 28, 28, 1] float32 batch on a
  2-core CPU)."""
  if jax.process_count() > 1:
    return sharding.global_batch(batch, mesh)
  out = {}
  for k, v in batch.items():
    v = np.asarray(v)
    out[k] = jax.make_array_from_callback(v.shape, to, v.__getitem__)
  return out


def device_batches(host_batches: Iterator[Mapping[str, np.ndarray]], mesh, size: int = 2):
  """The loop's train batches from ``host_batches``: ``HostBatches`` (NumPy, copied by the
  step's dispatch) on one process whose devices are CPUs, else ``DevicePrefetch`` (global device
  arrays, ``size`` ahead). Either iterates and has ``for_step(compiled)`` (call it once the
  train step is compiled) and ``close()``."""
  if jax.process_count() == 1 and all(d.platform == "cpu" for d in mesh.devices.flat):
    return HostBatches(host_batches, mesh)
  return DevicePrefetch(host_batches, mesh, size)


class HostBatches:
  """``host_batches`` as they are (``{key: np.ndarray}``, the global batch on one process), for a
  compiled step that places them itself; ``close()`` closes the loader (its threads stop).

  A step given NumPy returns before it runs (its input copy is pending), which overlaps the next
  batch's gathering with it, and runs on the thread that finishes the copy. That thread's heap
  cannot hold big temporaries (``host_memory.needs_calling_thread``): for such a step
  (``for_step``) each batch is placed on the devices and waited for here, so the step runs on
  the calling thread and reuses its memory."""

  def __init__(self, host_batches: Iterator[Mapping[str, np.ndarray]], mesh):
    self._it = iter(host_batches)
    self._mesh = mesh
    self._to = None  # the batch sharding, once batches are placed here

  def for_step(self, compiled) -> None:
    """Places the batches from now on if ``compiled``'s temporaries need the calling thread."""
    from genai_jax import host_memory
    analysis = compiled.memory_analysis()
    if analysis is not None and host_memory.needs_calling_thread(analysis.temp_size_in_bytes):
      self._to = sharding.batch_sharding(self._mesh)

  def __iter__(self):
    return self

  def __next__(self):
    batch = next(self._it)
    if self._to is None:
      return batch
    return jax.block_until_ready(_to_devices(batch, self._mesh, self._to))

  def close(self) -> None:
    if hasattr(self._it, "close"):  # a generator: its finally blocks stop the loader's threads
      self._it.close()


class DevicePrefetch:
  """Iterates ``{key: jax.Array}`` global batches (``sharding.global_batch``) of ``host_batches``,
  ``size`` ready ahead and one more in the making. An exception of the host iterator (a damaged
  file) is raised by ``next`` in the order it happened. ``close()`` stops the thread (batches
  read ahead are dropped: the data order is a function of the step, so nothing needs to be put
  back).

  The hand-over is two C-level ``SimpleQueue``s (the batches, and a token per free place)
  rather than a ``queue.Queue``, whose Python-level condition variables cost the thread tens of
  microseconds a batch, a visible share of a small step (the MLP VAE's 7 ms on 2 CPU cores)."""

  def __init__(self, host_batches: Iterator[Mapping[str, np.ndarray]], mesh, size: int = 2):
    self._items = queue.SimpleQueue()
    self._free = queue.SimpleQueue()  # one token per batch the thread may make
    for _ in range(size + 1):
      self._free.put(None)
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._fill, args=(host_batches, mesh),
                                    name="genai_jax-device-prefetch", daemon=True)
    self._thread.start()

  def _wait_for_room(self) -> bool:
    while not self._stop.is_set():
      try:
        self._free.get(timeout=0.1)
        return True
      except queue.Empty:
        continue
    return False

  def _fill(self, host_batches, mesh) -> None:
    to = sharding.batch_sharding(mesh)
    try:
      batches = iter(host_batches)
      while self._wait_for_room():
        batch = next(batches, _END)
        self._items.put(_END if batch is _END else _to_devices(batch, mesh, to))
        if batch is _END:
          return
    except BaseException as e:  # handed to the consumer, raised there
      self._items.put(e)

  def __iter__(self):
    return self

  def __next__(self) -> dict:
    item = self._items.get()
    if item is _END:
      self._items.put(_END)
      raise StopIteration
    if isinstance(item, BaseException):
      self._items.put(item)  # raised again if asked again
      raise item
    self._free.put(None)
    return item

  def for_step(self, compiled) -> None:
    """Nothing to adapt: the batches are device arrays already."""

  def close(self) -> None:
    self._stop.set()
    self._thread.join(timeout=10)
