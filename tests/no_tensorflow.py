"""Run Python code where ``import tensorflow`` raises ImportError, as on a machine without it.

    python -m tests.no_tensorflow -c "import genai_jax.data.pipelines"
    python -m tests.no_tensorflow -m experiments.dcgan_celeba --workdir=...

The path finder is wrapped so it does not see ``tensorflow`` or its submodules: ``import
tensorflow`` raises ModuleNotFoundError and ``importlib.util.find_spec('tensorflow')`` is None,
exactly as where it is not installed. (``sys.modules['tensorflow'] = None`` would not do: tfds and
etils test ``'tensorflow' in sys.modules`` and then fail; a finder that raises breaks etils'
``find_spec`` probe.)
"""

import importlib.abc
import importlib.machinery
import runpy
import sys

BLOCKED = "tensorflow"


class _Hide(importlib.abc.MetaPathFinder):
  """``importlib.machinery.PathFinder`` minus ``tensorflow``."""

  def find_spec(self, name, path=None, target=None):
    if name == BLOCKED or name.startswith(BLOCKED + "."):
      return None
    return importlib.machinery.PathFinder.find_spec(name, path, target)

  def invalidate_caches(self):
    importlib.machinery.PathFinder.invalidate_caches()


def install() -> None:
  """Blocks ``import tensorflow`` in this process (idempotent); call before anything imports it."""
  if BLOCKED in sys.modules:
    raise RuntimeError("tensorflow is already imported; install the blocker first")
  sys.meta_path[:] = [_Hide() if f is importlib.machinery.PathFinder else f for f in sys.meta_path]


def main(argv) -> None:
  """``-c CODE [ARGS]`` or ``-m MODULE [ARGS]``, as the python command."""
  install()
  if len(argv) < 2 or argv[0] not in ("-c", "-m"):
    raise SystemExit("usage: python -m tests.no_tensorflow (-c CODE | -m MODULE) [ARGS...]")
  flag, target, rest = argv[0], argv[1], argv[2:]
  if flag == "-c":
    sys.argv = ["-c", *rest]
    exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
  else:
    sys.argv = [target, *rest]
    runpy.run_module(target, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
  main(sys.argv[1:])
