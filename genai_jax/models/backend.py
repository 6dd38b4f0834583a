"""The backend a model is traced for, so kernel choices (attention) follow the compile target.

``jax.default_backend()`` unless the AOT report is compiling for another platform from this host
(a TPU slice from a CPU): it wraps its tracing in ``compiling_for('tpu')``.
"""

import contextlib

import jax

_TARGETS: list = []  # innermost compiling_for() last


def target() -> str:
  """'cpu', 'gpu' or 'tpu': the platform the code being traced will run on."""
  return _TARGETS[-1] if _TARGETS else jax.default_backend()


@contextlib.contextmanager
def compiling_for(platform: str):
  """Within the block, ``target()`` is ``platform``."""
  _TARGETS.append(platform)
  try:
    yield
  finally:
    _TARGETS.pop()
