"""Real datasets that ship inside installed packages, exposed as tfds builders (no download).

Importing this package registers them with tfds; ``EMBEDDED`` maps name -> builder class (a
builder with configs is named ``name/config``, e.g. ``bach_chorales/tiny``).
"""

from genai_jax.data.builders.bach_chorales import BachChorales, BachChoralesAudio
from genai_jax.data.builders.embedded_images import (SkimageLfwFaces, SkimageLfwFacesEdges,
                                                    SklearnDigits)
from genai_jax.data.builders.embedded_text import PydocTopics, PythonStdlibText

EMBEDDED = {b.name: b for b in (SkimageLfwFaces, SkimageLfwFacesEdges, SklearnDigits,
                                PythonStdlibText, PydocTopics, BachChorales, BachChoralesAudio)}
