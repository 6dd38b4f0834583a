"""Real datasets that ship inside installed packages, exposed as tfds builders (no download), and
builders over archives a user places by hand.

Importing this package registers them with tfds; ``EMBEDDED`` maps name -> builder class (a
builder with configs is named ``name/config``, e.g. ``bach_chorales/tiny``); ``MANUAL`` maps
name -> builder class of the manual-download ones (``sc09``: prepared on first use from the
archive in tfds's manual dir, a one-line error naming where to put it when it is not there).
"""

from genai_jax.data.builders.bach_chorales import BachChorales, BachChoralesAudio
from genai_jax.data.builders.embedded_images import (SkimageLfwFaces, SkimageLfwFacesEdges,
                                                    SklearnDigits)
from genai_jax.data.builders.embedded_text import PydocTopics, PythonStdlibText
from genai_jax.data.builders.sc09 import Sc09

EMBEDDED = {b.name: b for b in (SkimageLfwFaces, SkimageLfwFacesEdges, SklearnDigits,
                                PythonStdlibText, PydocTopics, BachChorales, BachChoralesAudio)}
MANUAL = {b.name: b for b in (Sc09,)}
