"""Runs Python as on a machine without TensorFlow (the JAX images of TPU and GPU VMs), in a venv
that has it (building datasets needs it).

``run(["-m", "experiments.vae_mnist", ...])`` starts a Python subprocess in which TensorFlow
cannot be found: ``import tensorflow`` raises ``ModuleNotFoundError`` and
``importlib.util.find_spec("tensorflow")`` is None, as when it is not installed. Every Python
process started below it (data-loader workers, ``spawn``) is the same: a ``sitecustomize`` on its
``PYTHONPATH`` hides it at start-up. Each import that was tried is reported on stderr as one
``no_tensorflow: import tensorflow from FILE:LINE`` line (``attempts`` parses them), so a module
that tries TensorFlow and falls back is caught too.

Hiding is done by wrapping the meta-path finders, not by ``sys.modules["tensorflow"] = None``:
tfds and etils take ``"tensorflow" in sys.modules`` to mean it is installed and then fail.
"""

import os
import re
import subprocess
import sys
import tempfile
import traceback

HIDDEN = "tensorflow"  # and its submodules; tensorflow_datasets etc. are other packages
_LINE = "no_tensorflow: import tensorflow from "
_TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(_TESTS)


def _hidden(name: str) -> bool:
  return name == HIDDEN or name.startswith(HIDDEN + ".")


def _importer() -> str:
  """FILE:LINE of the code that asked for the module (outside importlib and this file), and
  ``via FILE:LINE`` of the innermost project frame above it when that is another file (a
  library importing TensorFlow on the project's behalf)."""
  stack = [f for f in traceback.extract_stack()
           if "importlib" not in f.filename and f.filename != __file__]
  if not stack:
    return "?"
  where = f"{stack[-1].filename}:{stack[-1].lineno}"
  project = [f for f in stack if f.filename.startswith(os.path.join(REPO, "genai_jax") + os.sep)
             or f.filename.startswith(os.path.join(REPO, "experiments") + os.sep)]
  if project and project[-1] is not stack[-1]:
    where += f" via {project[-1].filename}:{project[-1].lineno}"
  return where


class _Hiding:
  """Wraps one meta-path finder: TensorFlow's modules are not found, the rest is delegated."""

  def __init__(self, finder):
    self._finder = finder

  def find_spec(self, name, path=None, target=None):
    if _hidden(name):
      probe = any(f.filename == "<frozen importlib.util>" or  # importlib.util.find_spec: a
                  f.filename.endswith(os.path.join("importlib", "util.py"))  # check, not an import
                  for f in traceback.extract_stack())
      first = next(f for f in sys.meta_path if isinstance(f, _Hiding))  # (a finder may precede)
      if not probe and self is first:  # report each import once, not once per finder
        print(f"{_LINE}{_importer()}", file=sys.stderr, flush=True)
      return None
    find = getattr(self._finder, "find_spec", None)
    return find(name, path, target) if find is not None else None

  def __getattr__(self, attr):  # invalidate_caches, find_distributions, ...
    return getattr(self._finder, attr)


def hide() -> None:
  """Makes TensorFlow unfindable in this process (idempotent)."""
  if not any(isinstance(f, _Hiding) for f in sys.meta_path):
    sys.meta_path[:] = [_Hiding(f) for f in sys.meta_path]
  for name in [m for m in sys.modules if _hidden(m)]:
    del sys.modules[name]


def _site_dir() -> str:
  """A directory holding a ``sitecustomize`` that calls ``hide`` in every process started with it
  on PYTHONPATH."""
  d = os.path.join(tempfile.gettempdir(), f"genai_jax_no_tensorflow_{os.getuid()}")
  os.makedirs(d, exist_ok=True)
  text = (f"import sys\nsys.path.insert(0, {_TESTS!r})\nimport no_tensorflow\n"
          f"sys.path.remove({_TESTS!r})\nno_tensorflow.hide()\n")
  path = os.path.join(d, "sitecustomize.py")
  if not os.path.exists(path) or open(path).read() != text:
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as f:
      f.write(text)
    os.replace(tmp, path)
  return d


def env(extra=None) -> dict:
  """os.environ for a TensorFlow-free subprocess run from the repository root."""
  paths = [_site_dir(), REPO] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
  return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "JAX_PLATFORMS": "cpu",
          **(extra or {})}


def run(args, timeout: float = 600, extra_env=None, **kwargs) -> subprocess.CompletedProcess:
  """``python ARGS`` without TensorFlow, from the repository root; text output captured."""
  return subprocess.run([sys.executable, *args], cwd=REPO, env=env(extra_env),
                        capture_output=True, text=True, timeout=timeout, **kwargs)


def attempts(stderr: str) -> list:
  """Every import of TensorFlow a run tried, from its stderr: ``FILE:LINE`` or
  ``FILE:LINE via PROJECT_FILE:LINE``."""
  return re.findall(re.escape(_LINE) + r"(\S+(?: via \S+)?)", stderr)


if __name__ == "__main__":  # python tests/no_tensorflow.py -m MODULE ARGS | -c CODE | SCRIPT ARGS
  sys.exit(subprocess.call([sys.executable, *sys.argv[1:]], env=env()))
