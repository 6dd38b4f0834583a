"""Drawing a task's samples for evaluation: ``Task.generate`` jitted once, called in batches.

The task says how to draw N samples and what kind they are (``genai_jax.samples``); nothing here
knows one family from another.
"""

import jax

from genai_jax import samples as samples_lib
from genai_jax.errors import ConfigError


def sample_shape(task, n: int = 1):
  """``task.generate``'s output for ``n`` samples as shapes (``jax.ShapeDtypeStruct`` leaves of
  its kind); no compute."""
  if task.generate is None:
    raise ConfigError("this task cannot draw samples (its Task has no generate); drop the "
                      "eval_gen block or set eval_gen.every=0", keys=("eval_gen.every",))
  abstract = jax.eval_shape(task.init, jax.random.PRNGKey(0))
  return jax.eval_shape(lambda s, k: task.generate(s, k, n), abstract, jax.random.PRNGKey(0))


def sample_kind(task) -> type:
  """The kind (``samples.Images``, ...) ``task.generate`` returns; shapes only, no compute."""
  return type(sample_shape(task))


def make_sampler(task, mesh=None):
  """Jitted ``(state, key, n) -> kind`` of ``task.generate`` (n static), output replicated on
  ``mesh``. Build once and reuse: each call of this function is a new jit cache entry."""
  if mesh is None:
    return jax.jit(task.generate, static_argnums=2)
  from genai_jax.train import sharding
  return jax.jit(task.generate, static_argnums=2, out_shardings=sharding.replicated(mesh))


def generate(task, state, num: int, seed: int = 0, batch_size: int = 64, sampler=None):
  """``num`` samples of ``task`` (host numpy, in its kind), drawn ``batch_size`` at a time with
  keys ``fold_in(PRNGKey(seed), i)``; ``sampler`` from ``make_sampler`` (default: built here)."""
  one = sampler or make_sampler(task)
  key = jax.random.PRNGKey(seed)
  parts = [jax.device_get(one(state, jax.random.fold_in(key, i), int(batch_size)))
           for i in range(-(-num // int(batch_size)))]
  return samples_lib.take(samples_lib.concatenate(parts), num)
