"""Text read from the running interpreter's standard library: a real corpus, no network.

``python_stdlib_text``: the source of a fixed list of pure-Python standard-library modules that
exist in every CPython 3.11 and 3.12 install (read through ``os.__file__``'s directory), one
example per file. Splits by file, so no text is shared: ``validation`` = every 10th file of the
list, ``train`` = the rest. The files' contents vary slightly between Python patch releases, so
figures are comparable only on the same interpreter.
"""

import os

import tensorflow_datasets as tfds

# Stable, sizeable, pure-Python modules (no single-file -> package moves in 3.11/3.12).
FILES = (
    "argparse.py", "ast.py", "base64.py", "bdb.py", "bisect.py", "calendar.py", "cmd.py",
    "code.py", "codecs.py", "collections/__init__.py", "colorsys.py", "configparser.py",
    "contextlib.py", "copy.py", "csv.py", "dataclasses.py", "difflib.py", "dis.py", "doctest.py",
    "email/message.py", "enum.py", "filecmp.py", "fileinput.py", "fnmatch.py", "fractions.py",
    "ftplib.py", "functools.py", "getopt.py", "gettext.py", "glob.py", "gzip.py", "heapq.py",
    "hmac.py", "html/parser.py", "http/client.py", "imaplib.py", "inspect.py", "ipaddress.py",
    "json/decoder.py", "json/encoder.py", "keyword.py", "linecache.py", "locale.py",
    "logging/__init__.py", "mailbox.py", "mimetypes.py", "numbers.py", "operator.py",
    "optparse.py", "pickle.py", "pkgutil.py", "platform.py", "plistlib.py", "poplib.py",
    "posixpath.py", "pprint.py", "queue.py", "random.py", "reprlib.py", "sched.py", "secrets.py",
    "selectors.py", "shlex.py", "shutil.py", "smtplib.py", "socket.py", "statistics.py",
    "string.py", "subprocess.py", "tarfile.py", "tempfile.py", "textwrap.py", "threading.py",
    "timeit.py", "tokenize.py", "trace.py", "traceback.py", "typing.py", "unittest/case.py",
    "urllib/parse.py", "uuid.py", "warnings.py", "wave.py", "weakref.py",
)
VALIDATION_EVERY = 10  # file i goes to validation when i % 10 == 9


class PythonStdlibText(tfds.core.GeneratorBasedBuilder):
  """Source files of the Python standard library, one example per file."""
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "84 pure-Python stdlib modules; every 10th file is validation."}

  def _info(self):
    return self.dataset_info_from_configs(
        description="Source of 84 CPython standard-library modules (one example per file).",
        features=tfds.features.FeaturesDict({"text": tfds.features.Text(),
                                             "path": tfds.features.Text()}),
        homepage="https://github.com/python/cpython/tree/main/Lib",
        citation="Python Software Foundation, CPython Lib/, PSF License.")

  def _split_generators(self, dl_manager):
    root = os.path.dirname(os.__file__)
    missing = [f for f in FILES if not os.path.isfile(os.path.join(root, f))]
    if missing:
      raise FileNotFoundError(f"python_stdlib_text needs {missing} under {root}; "
                              "use a full CPython 3.11/3.12 install")
    val = [f for i, f in enumerate(FILES) if i % VALIDATION_EVERY == VALIDATION_EVERY - 1]
    train = [f for f in FILES if f not in val]
    return {"train": self._generate_examples(root, train),
            "validation": self._generate_examples(root, val)}

  def _generate_examples(self, root, files):
    for f in files:
      with open(os.path.join(root, f), encoding="utf-8") as fh:
        yield f, {"text": fh.read(), "path": f}


class PydocTopics(tfds.core.GeneratorBasedBuilder):
  """English prose from the standard library: the help topics of ``pydoc_data.topics`` (the
  Python Language Reference's sections that ``help('TOPIC')`` prints), one example per topic.

  A word-level corpus that ships with every CPython (about 79 topics, 465k characters, 119k words
  by ``text.WordVocab``'s tokeniser on 3.11). Splits by topic, stratified by size: with the topics
  ordered by length (longest first), ``validation`` = every 10th from the 5th (8 topics, about 9%
  of the words), ``train`` = the rest. As with ``python_stdlib_text``, the text varies slightly
  between Python releases.
  """
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "pydoc_data.topics.topics; every 10th topic by size is validation."}

  def _info(self):
    return self.dataset_info_from_configs(
        description="Help topics of the Python Language Reference (pydoc_data.topics), one per example.",
        features=tfds.features.FeaturesDict({"text": tfds.features.Text(),
                                             "topic": tfds.features.Text()}),
        homepage="https://docs.python.org/3/reference/",
        citation="Python Software Foundation, The Python Language Reference, PSF License.")

  def _split_generators(self, dl_manager):
    from pydoc_data import topics
    names = sorted(topics.topics, key=lambda t: (-len(topics.topics[t]), t))
    val = [t for i, t in enumerate(names) if i % VALIDATION_EVERY == 4]
    train = [t for t in names if t not in val]
    return {"train": self._generate_examples(topics.topics, train),
            "validation": self._generate_examples(topics.topics, val)}

  def _generate_examples(self, texts, names):
    for t in names:
      yield t, {"text": texts[t], "topic": t}
