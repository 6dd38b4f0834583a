"""The one place that turns config keys into command-line flags."""

import io

import pytest

from genai_jax import errors
from genai_jax.errors import ConfigError


def test_render_turns_named_keys_into_flags_and_leaves_the_rest():
  e = ConfigError("data.image_size=32 != model.image_size=64; set model.image_size and "
                  "data.image_size to one N (model.image_size_x is another key)",
                  keys=("model.image_size", "data.image_size"))
  assert errors.render(e) == (
      "--config.data.image_size=32 != --config.model.image_size=64; set "
      "--config.model.image_size and --config.data.image_size to one N "
      "(model.image_size_x is another key)")
  assert errors.render(ConfigError("no keys here")) == "no keys here"
  assert errors.render(errors.DataError("model.width")) == "model.width"


def test_friendly_prints_the_rendered_line_and_exits_1():
  out = io.StringIO()
  with pytest.raises(SystemExit) as exit_info:
    with errors.friendly(out):
      raise ConfigError("model.width=0 must be positive", keys=("model.width",))
  assert exit_info.value.code == 1
  assert out.getvalue() == "error: --config.model.width=0 must be positive\n"
