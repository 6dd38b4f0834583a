"""The loader's order (a fixed function of (seed, shard, position)) and the device prefetch."""

import threading
import time

import jax
import numpy as np
import pytest

from genai_jax.data import loader
from genai_jax.train import prefetch, sharding


def test_indices_across_epochs_are_each_epochs_own_permutation():
  n, positions = 7, np.arange(3, 40)  # six epochs
  got = loader.indices(n, positions, train=True, seed=4, shard=2)
  want = [loader.epoch_order(n, 4, int(p) // n, 2)[p % n] for p in positions]
  np.testing.assert_array_equal(got, want)
  np.testing.assert_array_equal(loader.indices(n, positions, train=False, seed=4, shard=2),
                                positions % n)


@pytest.mark.parametrize("train", [True, False])
def test_batch_index_is_the_per_shard_indices_concatenated_at_any_start(train):
  lengths, shards, per = (5, 7, 6), (2, 3, 4), 3
  offsets = np.cumsum((0,) + lengths[:-1])

  def want(step):
    positions = np.arange(step * per, (step + 1) * per)
    return np.concatenate([off + loader.indices(n, positions, train=train, seed=9, shard=s)
                           for n, s, off in zip(lengths, shards, offsets)])

  index = loader.BatchIndex(lengths, shards, per, train=train, seed=9, window=4)
  for step in range(11):  # across windows (of 4 batches) and epochs (of 5-7 positions)
    np.testing.assert_array_equal(index(step), want(step))
    np.testing.assert_array_equal(index.positions(step), np.tile(np.arange(per) + step * per, 3))
  resumed = loader.BatchIndex(lengths, shards, per, train=train, seed=9, window=4)
  for step in (6, 7, 2):  # a resume mid-window, and a step before the window
    np.testing.assert_array_equal(resumed(step), want(step))


def _mesh():
  return sharding.make_mesh()


def test_device_prefetch_yields_the_host_batches_as_sharded_global_arrays():
  mesh = _mesh()
  host = [{"image": np.full((8, 2, 2, 1), i, np.float32), "label": np.arange(8) + i}
          for i in range(5)]
  got = list(prefetch.DevicePrefetch(iter(host), mesh))
  assert len(got) == 5
  for h, d in zip(host, got):
    assert d.keys() == h.keys()
    for k in h:
      assert d[k].sharding == sharding.batch_sharding(mesh)
      assert d[k].dtype == jax.numpy.asarray(h[k]).dtype  # int64 -> int32, as device_put
      np.testing.assert_array_equal(np.asarray(d[k]), h[k])


def test_device_prefetch_raises_the_host_error_in_order_and_closes():
  def host():
    yield {"x": np.zeros(8, np.float32)}
    raise ValueError("damaged file")

  it = prefetch.DevicePrefetch(host(), _mesh())
  next(it)
  for _ in range(2):  # raised again if asked again
    with pytest.raises(ValueError, match="damaged file"):
      next(it)
  it.close()

  made = []
  def endless():
    while True:
      made.append(1)
      yield {"x": np.zeros(8, np.float32)}

  it = prefetch.DevicePrefetch(endless(), _mesh(), size=2)
  next(it)
  time.sleep(0.2)
  assert len(made) == 4  # the one taken, two ready, one in the making: no further
  t0 = time.perf_counter()
  it.close()
  assert time.perf_counter() - t0 < 1 and not any(
      t.name == "genai_jax-device-prefetch" and t.is_alive() for t in threading.enumerate())


def test_device_batches_hand_numpy_to_the_step_on_a_cpu_and_prefetch_elsewhere():
  from unittest import mock
  mesh = _mesh()
  host = [{"image": np.full((8, 2, 2, 1), i, np.float32)} for i in range(3)]
  closed = []

  def source():
    try:
      yield from host
    finally:
      closed.append(True)

  it = prefetch.device_batches(source(), mesh)
  assert isinstance(it, prefetch.HostBatches)  # CPU devices, one process: no copy thread
  first = next(it)
  assert first is host[0]
  step = jax.jit(lambda b: b["image"].sum(), in_shardings=(sharding.batch_sharding(mesh),))
  assert float(step(next(it))) == 8 * 4  # the compiled step places the NumPy batch itself
  it.close()
  assert closed == [True]  # the loader is closed with it (its threads stop)
  with mock.patch.object(jax, "process_count", return_value=2):
    other = prefetch.device_batches(iter(()), mesh)
  assert isinstance(other, prefetch.DevicePrefetch)  # several processes: global arrays, ahead
  other.close()


def test_host_batches_placed_for_a_step_with_big_temporaries(monkeypatch):
  """A step whose temporaries outgrow a worker thread's heap gets device batches, ready before
  it is called (so it runs on the calling thread); a small one keeps NumPy (and the overlap)."""
  from genai_jax import host_memory

  class Compiled:  # what for_step reads of a compiled step
    def __init__(self, temp):
      self.temp = temp

    def memory_analysis(self):
      return type("Analysis", (), {"temp_size_in_bytes": self.temp})()

  mesh = _mesh()
  big, small = host_memory.THREAD_HEAP_BYTES, host_memory.THREAD_HEAP_BYTES // 4
  monkeypatch.setattr(host_memory, "_applied", False)
  assert not host_memory.needs_calling_thread(10 * big)  # malloc left alone: nothing to reuse
  monkeypatch.setattr(host_memory, "_applied", True)
  assert host_memory.needs_calling_thread(big) and not host_memory.needs_calling_thread(small)

  host = [{"image": np.full((8, 2, 2, 1), i, np.float32)} for i in range(4)]
  it = prefetch.device_batches(iter(host), mesh)
  it.for_step(Compiled(small))
  assert next(it) is host[0]
  it.for_step(Compiled(big))
  placed = next(it)["image"]
  assert isinstance(placed, jax.Array) and placed.sharding == sharding.batch_sharding(mesh)
  assert placed.is_ready()  # copied before the step is called, not by its dispatch
  np.testing.assert_array_equal(np.asarray(placed), host[1]["image"])
  it.close()
