"""Files on a local disk or in a bucket (``gs://``) alike, without TensorFlow: ``etils.epath``
(which tfds and Orbax use too), plus an append-mode file that object stores lack and a one-line
check that a ``gs://`` path can be reached before anything is written.

etils reads ``gs://`` through ``gcsfs`` (or, where TensorFlow happens to be installed, through
TensorFlow's gfile); local paths go through ``os``.
"""

import functools
import importlib.util
import io
import os
from typing import Iterator

from etils import epath

from genai_jax.errors import UserError


def is_remote(path: str) -> bool:
  """Whether ``path`` names an object store (``gs://``, ``s3://``, ...), not a local file."""
  return "://" in str(path)


def _adc_file() -> str:
  """Where ``gcloud auth application-default login`` writes its credentials."""
  root = os.environ.get("CLOUDSDK_CONFIG") or (
      os.path.join(os.environ.get("APPDATA", ""), "gcloud") if os.name == "nt"
      else os.path.expanduser("~/.config/gcloud"))
  return os.path.join(root, "application_default_credentials.json")


_DMI_PRODUCT = "/sys/class/dmi/id/product_name"


def _on_google_cloud() -> bool:
  """Whether this machine is a Google Cloud VM (TPU VM, GCE, GKE node), whose metadata server
  hands out credentials. Read from the DMI product name, as google-auth does when the metadata
  server does not answer: no network, so a machine without a route to it does not wait."""
  if os.environ.get("GCE_METADATA_HOST") or os.environ.get("GCE_METADATA_IP"):
    return True
  try:
    with open(_DMI_PRODUCT) as f:
      return "Google" in f.read()
  except OSError:
    return False


@functools.lru_cache(maxsize=None)
def _check_gcs(bucket: str) -> None:
  where = f"gs://{bucket}"
  if importlib.util.find_spec("gcsfs") is None and importlib.util.find_spec("tensorflow") is None:
    raise UserError(f"{where}: reading and writing gs:// needs gcsfs; pip install "
                    f"'genai_jax[gcs]' (or pass a local path)")
  keyfile = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS", "")
  if keyfile and not os.path.isfile(keyfile):
    raise UserError(f"{where}: GOOGLE_APPLICATION_CREDENTIALS={keyfile} is not a file; point it "
                    f"at a service-account key (JSON) or unset it and run `gcloud auth "
                    f"application-default login`")
  # Without any of these, gcsfs falls back to anonymous access and every write then retries for
  # minutes; TensorFlow's gfile probes the metadata server for as long.
  if not (keyfile or os.path.isfile(_adc_file()) or _on_google_cloud()):
    raise UserError(f"{where}: no Google Cloud credentials on this machine; run `gcloud auth "
                    f"application-default login` or set GOOGLE_APPLICATION_CREDENTIALS to a "
                    f"service-account key file")


def check_reachable(path: str) -> None:
  """Raises a one-line ``UserError`` naming the fix when ``path`` is in a bucket this machine
  cannot reach (no gs:// support installed, no credentials). Fast and writes nothing: local
  checks only, once per bucket. Local paths pass."""
  path = str(path)
  if path.startswith("gs://"):
    _check_gcs(path[len("gs://"):].split("/", 1)[0])


def _path(path) -> epath.Path:
  check_reachable(path)
  return epath.Path(path)


def exists(path: str) -> bool:
  return _path(path).exists()


def isdir(path: str) -> bool:
  return _path(path).is_dir()


def listdir(path: str) -> list:
  """The names in directory ``path`` (no trailing slashes)."""
  return sorted(p.name for p in _path(path).iterdir())


def makedirs(path: str) -> None:
  _path(path).mkdir(parents=True, exist_ok=True)


def rmtree(path: str) -> None:
  _path(path).rmtree()


def walk(path: str) -> Iterator:
  """(directory, subdirectory names, file names) under ``path``, as ``os.walk``."""
  path = str(path)
  for root, dirs, files in _path(path).walk():
    root = os.fspath(root)
    if is_remote(path) and not is_remote(root):  # fsspec gives bucket paths without the scheme
      root = f"{path.split('://', 1)[0]}://{root.lstrip('/')}"
    yield root, list(dirs), list(files)


def copy(src: str, dst: str) -> None:
  _path(src).copy(_path(dst), overwrite=True)


def read_text(path: str) -> str:
  return _path(path).read_text()


def write_bytes(data: bytes, path: str) -> None:
  """Writes ``data`` to ``path``, creating its directory."""
  p = _path(path)
  p.parent.mkdir(parents=True, exist_ok=True)
  p.write_bytes(data)


def write_text_atomic(text: str, path: str) -> None:
  """Writes ``path`` through a temporary file and a rename, so a reader never sees half of it
  (object stores replace an object whole anyway)."""
  p = _path(path)
  p.parent.mkdir(parents=True, exist_ok=True)
  tmp = _path(path + ".tmp")
  tmp.write_text(text)
  tmp.replace(p)


class AppendFile:
  """A binary file opened for appending (``write``, ``flush``, ``close``). Local: an ordinary
  append. In a bucket, whose objects cannot be appended to: the whole content is kept and the
  object rewritten on each ``flush``, as TensorFlow's gfile does (the files written this way,
  metrics and events, are small)."""

  def __init__(self, path: str):
    self.path = str(path)
    p = _path(self.path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if is_remote(self.path):
      self._buffer = io.BytesIO(p.read_bytes() if p.exists() else b"")
      self._buffer.seek(0, io.SEEK_END)
      self._file = None
    else:
      self._file = open(self.path, "ab")

  def write(self, data: bytes) -> None:
    (self._file or self._buffer).write(data)

  def flush(self) -> None:
    if self._file is not None:
      self._file.flush()
    elif self._buffer is not None:
      _path(self.path).write_bytes(self._buffer.getvalue())

  def close(self) -> None:
    self.flush()
    if self._file is not None:
      self._file.close()
    self._file = self._buffer = None
