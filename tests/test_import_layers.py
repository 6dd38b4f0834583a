"""The package's layers, from the ground up, and the rule that imports only point down.

A module may import modules of its own layer or of a layer below it, never one above; and no
set of modules imports itself in a circle. Every import counts, also the ones inside functions
(a lazy import is still a dependency). ``python -m pytest tests/test_import_layers.py -q`` prints
the arrows that break the rule.
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "genai_jax"

# Lowest first. A module belongs to the layer of its longest listed prefix.
LAYERS = (
    ("ground: errors, files, processes, wheels, small pure helpers",
     ("genai_jax.errors", "genai_jax.host_memory", "genai_jax.music", "genai_jax.generate",
      "genai_jax.outputs",
      "genai_jax.storage", "genai_jax.wheels", "genai_jax.multihost", "genai_jax.augment",
      "genai_jax.cli", "genai_jax.config_utils")),
    ("blocks: networks, losses, datasets, sample kinds",
     ("genai_jax.models", "genai_jax.objectives", "genai_jax.data", "genai_jax.samples")),
    ("training: sharding, state, checkpoints, the loop",
     ("genai_jax.train",)),
    ("families: one task per model family, the family table",
     ("genai_jax.tasks",)),
    ("the loop: one training loop over any family; evaluation reaches it as hooks",
     ("genai_jax.train.loop",)),
    ("evaluation: metrics, evaluators, the eval CLI",
     ("genai_jax.eval",)),
    ("tools: ahead-of-time reports, continuation and sampling CLIs",
     ("genai_jax.aot", "genai_jax.continuation", "genai_jax.sample_lm", "genai_jax.sample")),
)

def module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(ROOT).with_suffix("").parts
  if parts[-1] == "__init__":
    parts = parts[:-1]
  return ".".join(parts)


def modules() -> dict:
  return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str, path: pathlib.Path, known: dict) -> set:
  """The package's modules that ``name`` imports, anywhere in the file."""
  out = set()
  package = name if path.name == "__init__.py" else name.rpartition(".")[0]
  for node in ast.walk(ast.parse(path.read_text(), str(path))):
    if isinstance(node, ast.Import):
      targets = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
      # `from pkg import mod` imports the module pkg.mod when there is one.
      targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                 for a in node.names]
    else:
      continue
    for t in targets:
      while t and t not in known:
        t = t.rpartition(".")[0]
      if t.startswith("genai_jax") and t != name and t != "genai_jax":
        out.add(t)
  return out


def layer_of(name: str) -> int:
  best, best_len = None, -1
  for i, (_, prefixes) in enumerate(LAYERS):
    for p in prefixes:
      if (name == p or name.startswith(p + ".")) and len(p) > best_len:
        best, best_len = i, len(p)
  assert best is not None, f"{name} is in no layer: add it to LAYERS in {__file__}"
  return best


def graph() -> dict:
  known = modules()
  return {name: imports_of(name, path, known) for name, path in known.items()}


def test_every_module_has_a_layer():
  for name in modules():
    if name != "genai_jax":
      layer_of(name)


def test_imports_point_down_or_sideways():
  upward = set()
  for name, targets in graph().items():
    if name == "genai_jax":
      continue
    for t in targets:
      if layer_of(t) > layer_of(name):
        upward.add((name, t))
  assert not upward, "imports that point up a layer:\n" + "\n".join(
      f"  {a} -> {b}" for a, b in sorted(upward))


def test_no_import_circles():
  g = graph()
  # Package faces (__init__) that only hand names on would make every subpackage a circle with
  # its own modules; leave the arrows from a package to its own children out.
  edges = {n: {t for t in ts if not t.startswith(n + ".")} for n, ts in g.items()}
  state, stack, circles = {}, [], []

  def visit(n):
    state[n] = 1
    stack.append(n)
    for t in sorted(edges.get(n, ())):
      if state.get(t) == 1:
        circles.append(stack[stack.index(t):] + [t])
      elif t not in state:
        visit(t)
    stack.pop()
    state[n] = 2

  for n in sorted(edges):
    if n not in state:
      visit(n)
  assert not circles, "import circles:\n" + "\n".join("  " + " -> ".join(c) for c in circles)
