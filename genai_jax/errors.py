"""Errors a user can cause. Each message is one line that names the fix; the command-line entry
points print it without a traceback (``friendly``); ``--verbosity=1`` or ``GENAI_JAX_TRACEBACK=1``
adds the traceback."""

import contextlib
import os
import re
import sys
import traceback


class UserError(Exception):
  """Base class: a mistake in config, data or environment, not a bug.

  The library names config keys plainly (``model.image_size=64 must be ...``) and lists them in
  ``keys``; only ``render`` (the command-line entry points) turns them into ``--config.KEY``
  flags, so models, data and tasks speak no CLI.
  """

  def __init__(self, message: str = "", keys=()):
    super().__init__(message)
    self.keys = tuple(keys)


class ConfigError(UserError, ValueError):
  """A config value that cannot work (unknown key or name, inconsistent sizes)."""


def render(error: BaseException) -> str:
  """One line for the user: a ConfigError's keys become ``--config.KEY`` where the message names
  them (``model.width=3`` -> ``--config.model.width=3``); other errors pass through unchanged."""
  text = str(error)
  for key in sorted(getattr(error, "keys", ()), key=len, reverse=True):
    # A whole key only: not inside a longer dotted name, and not already a flag.
    text = re.sub(rf"(?<![\w.-]){re.escape(key)}(?![\w])", f"--config.{key}", text)
  return text


class DatasetMissingError(UserError, RuntimeError):
  """The requested dataset is not prepared and may not be downloaded here."""


class DataError(UserError, RuntimeError):
  """A prepared dataset cannot be read (a damaged file)."""


class NonFiniteLossError(UserError, FloatingPointError):
  """A loss or eval metric became NaN or infinite."""


class CheckpointError(UserError, RuntimeError):
  """A checkpoint in the workdir cannot be restored or written."""


class WeightsMissingError(UserError, RuntimeError):
  """Pretrained evaluation weights (the FID Inception network) are not available here."""


def verbose() -> bool:
  """Whether the user asked for tracebacks (``GENAI_JAX_TRACEBACK=1`` or ``--verbosity>=1``)."""
  if os.environ.get("GENAI_JAX_TRACEBACK", "") not in ("", "0"):
    return True
  from absl import logging
  return logging.get_verbosity() >= 1


@contextlib.contextmanager
def friendly(stream=None):
  """Turns a UserError into ``error: <message>`` on stderr and exit status 1, and a Ctrl-C
  that reaches here (before training could checkpoint) into one line and status 130."""
  stream = stream or sys.stderr
  try:
    yield
  except UserError as e:
    if verbose():
      traceback.print_exc()
    print(f"error: {render(e)}", file=stream, flush=True)
    sys.exit(1)
  except KeyboardInterrupt:
    if verbose():
      traceback.print_exc()
    print("interrupted (Ctrl-C) before anything needed saving", file=stream, flush=True)
    sys.exit(130)
