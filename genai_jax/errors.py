"""Errors a user can cause. Each message is one line that names the fix; the experiment entry
points print it without a traceback (``friendly``)."""

import contextlib
import sys


class UserError(Exception):
  """Base class: a mistake in config, data or environment, not a bug."""


class ConfigError(UserError, ValueError):
  """A config value that cannot work (unknown key or name, inconsistent sizes)."""


class DatasetMissingError(UserError, RuntimeError):
  """The requested dataset is not prepared and may not be downloaded here."""


class NonFiniteLossError(UserError, FloatingPointError):
  """A loss became NaN or infinite."""


class CheckpointError(UserError, RuntimeError):
  """A checkpoint in the workdir cannot be restored."""


class WeightsMissingError(UserError, RuntimeError):
  """Pretrained evaluation weights (the FID Inception network) are not available here."""


@contextlib.contextmanager
def friendly(stream=None):
  """Turns a UserError into ``error: <message>`` on stderr and exit status 1."""
  try:
    yield
  except UserError as e:
    print(f"error: {e}", file=stream or sys.stderr, flush=True)
    sys.exit(1)
