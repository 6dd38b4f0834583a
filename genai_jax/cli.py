"""What every command-line entry point shares: flag errors as one line, quiet library logs."""

import contextlib
import importlib.abc
import importlib.util
import logging as py_logging
import os
import re
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: no C++ INFO lines

from genai_jax import host_memory

# The [aot] extra installs libtpu and the CUDA plugin to compile for accelerators; on a machine
# with neither device, JAX would probe both at start-up and print their failures. Only then, and
# only if the user has not chosen, run on the CPU (what JAX would end up using anyway).
if "JAX_PLATFORMS" not in os.environ and host_memory.no_accelerator_devices():
  os.environ["JAX_PLATFORMS"] = "cpu"

from absl import flags, logging

# What the native libraries print while they load, whatever TF_CPP_MIN_LOG_LEVEL says: their C++
# logging (absl) writes every line to stderr until absl::InitializeLog(), which Python never calls.
# jaxlib's CUDA plugin modules (the [aot] extra) report a missing driver when `import jax` and the
# first backend load them; TensorFlow announces oneDNN twice when imported.
NATIVE_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"
    r"|cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine, GPU will not be used\.$"
    r"|port\.cc:\d+\] oneDNN custom operations are on\. ")


@contextlib.contextmanager
def native_noise_dropped():
  """While the block runs, file descriptor 2 (native code's stderr, and Python's) goes to a
  temporary file; afterwards every line of it but ``NATIVE_NOISE`` is written to stderr, in order:
  anything else the block prints, a warning or a traceback, comes out, only later. (A process that
  dies inside the block without unwinding, a crash or ``os._exit``, loses those lines: hence the
  blocks are only imports.)"""
  sys.stderr.flush()
  try:
    saved, spool = os.dup(2), tempfile.TemporaryFile()
  except OSError:  # no stderr, or no temporary folder: leave it as it is
    yield
    return
  os.dup2(spool.fileno(), 2)
  try:
    yield
  finally:
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)
    spool.seek(0)
    kept = [line for line in spool.read().splitlines(keepends=True)
            if not NATIVE_NOISE.search(line.decode(errors="replace").rstrip())]
    spool.close()
    if kept:
      os.write(2, b"".join(kept))


class _QuietLoader(importlib.abc.Loader):
  """Runs a module's loader inside ``native_noise_dropped``; for ``jax``, also its first backend
  load (the plugin discovery, where the CUDA plugin's library is opened)."""

  def __init__(self, loader):
    self._loader = loader

  def __getattr__(self, name):  # resources, is_package, ...: the original loader's
    return getattr(self._loader, name)

  def create_module(self, spec):
    return self._loader.create_module(spec)

  def exec_module(self, module):
    with native_noise_dropped():
      self._loader.exec_module(module)
    if module.__name__ == "jax":
      from jax._src import xla_bridge
      discover = getattr(xla_bridge, "_discover_and_register_pjrt_plugins", None)
      if discover is not None:  # private to JAX: without it, one line more is all we lose
        def quiet_discover():
          with native_noise_dropped():
            discover()
        xla_bridge._discover_and_register_pjrt_plugins = quiet_discover


class _QuietNativeImports(importlib.abc.MetaPathFinder):
  """Imports ``jax`` and ``tensorflow`` (whoever imports them first) through ``_QuietLoader``."""

  NAMES = ("jax", "tensorflow")

  def __init__(self):
    self._finding = False

  def find_spec(self, fullname, path=None, target=None):
    if fullname not in self.NAMES or self._finding:
      return None
    self._finding = True
    try:
      spec = importlib.util.find_spec(fullname)  # the other finders (this one declines now)
    finally:
      self._finding = False
    if spec is not None and spec.loader is not None:
      spec.loader = _QuietLoader(spec.loader)
    return spec


def verbose_requested(argv) -> bool:
  """Whether the command line or the environment asks for library logs: ``--verbosity=N`` (or
  ``-v``/``--v``) with N >= 1, or ``GENAI_JAX_TRACEBACK=1`` (see ``errors.verbose``)."""
  if os.environ.get("GENAI_JAX_TRACEBACK", "") not in ("", "0"):
    return True
  for i, arg in enumerate(argv):
    name, eq, value = arg.partition("=")
    if name in ("--verbosity", "-v", "--v", "-verbosity"):
      value = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
      try:
        return int(value) >= 1
      except ValueError:
        return False
  return False


def quiet_native_imports() -> None:
  """From now on, the first ``import jax`` and ``import tensorflow`` (and JAX's first backend
  load) drop ``NATIVE_NOISE`` from stderr (idempotent; no effect on modules already loaded)."""
  if not any(isinstance(f, _QuietNativeImports) for f in sys.meta_path):
    sys.meta_path.insert(0, _QuietNativeImports())


# Every entry point imports this module before JAX or TensorFlow loads.
if not verbose_requested(sys.argv[1:]):
  quiet_native_imports()


def flag_error_message(e: BaseException) -> str:
  """One line from an absl/ml_collections flag error; a config file's own exception (e.g. an
  unknown preset) is reduced to its message, not the flattened traceback around it."""
  text = str(e)
  typo = re.search(r'Did you mean "([\w.]+)" instead of "([\w.]+)"', text)
  if typo:
    return f"no config key {typo.group(2)!r} (did you mean {typo.group(1)!r}?)"
  if "Traceback (most recent call last)" in text:
    last = [line for line in text.replace("\\n", "\n").splitlines() if line.strip()]
    for line in reversed(last):  # the exception line: "ValueError: unknown preset ..."
      head, sep, rest = line.strip().partition(": ")
      if sep and head.replace(".", "").isidentifier() and head[:1].isupper():
        return rest.strip()
  text = " ".join(text.replace("\\n", " ").replace("\\", "").split()).strip("'\"")
  return f"no config key {text!r}" if re.fullmatch(r"[\w.]+", text) else text


def _bad_flag(e: BaseException, hint: str):
  print(f"error: bad flag or config override: {flag_error_message(e)}. {hint}",
        file=sys.stderr, flush=True)
  sys.exit(2)


def define_config(default: str, help_text: str, hint: str):
  """``config_flags.DEFINE_config_file('config', default)``, locked. With a default file,
  ml_collections applies ``--config.KEY`` overrides while defining the flag, so a misspelt key
  fails here: it becomes the same one-line error as at parse time."""
  from ml_collections import config_flags
  try:
    return config_flags.DEFINE_config_file("config", default, help_text, lock_config=True)
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
    _bad_flag(e, hint)


def flags_parser(hint: str):
  """An ``app.run(flags_parser=...)`` that prints ``error: ... hint`` and exits 2 on bad flags."""
  def parse(argv):
    try:
      return flags.FLAGS(argv)
    except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
      _bad_flag(e, hint)
  return parse


class _DropLibraryTracebacks(py_logging.Filter):
  """Orbax logs every failure of a background save with a traceback, many times over; the
  run reports it once, as an ``error:`` line, so those records are dropped unless verbose."""

  def filter(self, record):
    return not (record.levelno >= py_logging.ERROR and _from_orbax(record))


def _from_orbax(record) -> bool:
  """Whether Orbax logged the record or its exception was raised in Orbax code: asyncio's
  "Task/_GatheringFuture exception was never retrieved" for an Orbax write is logged by asyncio,
  naming Orbax only in its message (a Task) or only in its traceback (a gathering future)."""
  if "/orbax/" in (record.pathname or "") or "/orbax/" in str(record.msg):
    return True
  tb = record.exc_info[2] if record.exc_info else None
  while tb is not None:
    if "/orbax/" in tb.tb_frame.f_code.co_filename:
      return True
    tb = tb.tb_next
  return False


def _quiet_unraisable(previous):
  """After a failed checkpoint save, tensorstore's I/O threads keep completing futures whose
  asyncio loop Orbax has closed; each reports 'RuntimeError: Event loop is closed' as an
  unraisable exception, with a traceback, dozens of times. The failure itself is reported once as
  an ``error:`` line, so only that RuntimeError is dropped; the rest goes to the previous hook."""
  def hook(u):
    if isinstance(u.exc_value, RuntimeError) and str(u.exc_value) == "Event loop is closed":
      return
    previous(u)
  return hook


def setup_run() -> None:
  """What every entry point's ``main`` does first, before any JAX computation: quiet logs
  (``setup_logging``) and, on the CPU, step temporaries that reuse freed memory instead of
  faulting in fresh pages every step (``host_memory``: the char-GPT step 1.3x faster)."""
  setup_logging()
  host_memory.configure_for_cpu()


def setup_logging() -> None:
  """WARNING and above by default (Orbax logs every save at INFO); ``--verbosity`` overrides."""
  from genai_jax import errors
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  if not errors.verbose():
    logging.get_absl_handler().addFilter(_DropLibraryTracebacks())
    py_logging.getLogger().addFilter(_DropLibraryTracebacks())
    sys.unraisablehook = _quiet_unraisable(sys.unraisablehook)

