"""The README and docs/ pages: the README stays short, every page is linked from it, and every
relative link points at a file that exists (and, with a #fragment, at a heading of that page)."""

import importlib.util
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS, ROOT / "benchmarks" / "README.md"]

README_MAX_LINES = 150
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
  """The text without fenced code blocks and inline code, where brackets are not links."""
  text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
  return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
  """GitHub's anchor for a heading: lower case, punctuation (markup included) dropped except
  '-' and '_', spaces to '-'."""
  text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
  return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: pathlib.Path) -> set:
  """Every heading's anchor in a page; repeated headings get -1, -2, ... as on GitHub."""
  text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
  seen, out = {}, set()
  for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.M):
    base = slug(m.group(1))
    n = seen.get(base, 0)
    seen[base] = n + 1
    out.add(base if n == 0 else f"{base}-{n}")
  return out


def links(path: pathlib.Path) -> list:
  return [m.group(1) for m in LINK.finditer(prose(path.read_text()))]


def test_slug_follows_github():
  assert slug("Why DCGAN's convolutions look unusual") == "why-dcgans-convolutions-look-unusual"
  assert slug("Quickstart (fresh machine, Python 3.11)") == "quickstart-fresh-machine-python-311"
  assert slug("GAN recipes: few-shot faces") == "gan-recipes-few-shot-faces"
  assert slug("`fd_logmel`") == "fd_logmel"


def test_readme_is_short():
  n = len(README.read_text().splitlines())
  assert n <= README_MAX_LINES, f"README.md has {n} lines; keep it at most {README_MAX_LINES} " \
                                "and move the detail to a docs/ page"


def test_every_docs_page_is_linked_from_the_readme():
  linked = {(README.parent / t.split("#")[0]).resolve() for t in links(README)}
  missing = [p.name for p in DOCS if p.resolve() not in linked]
  assert DOCS and not missing, f"docs pages not linked from README.md: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
  bad = []
  for target in links(page):
    if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
      continue
    file, _, fragment = target.partition("#")
    dest = (page.parent / file).resolve() if file else page
    if not dest.exists():
      shown = dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest
      bad.append(f"{target}: no file {shown}")
    elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
      bad.append(f"{target}: no heading with anchor #{fragment} in {dest.name}")
  assert not bad, f"{page.relative_to(ROOT)}: broken links:\n  " + "\n  ".join(bad)


def test_architecture_layer_table_matches_the_layers_test():
  """docs/architecture.md's layer table lists LAYERS of tests/test_import_layers.py, in order."""
  spec = importlib.util.spec_from_file_location("layers", ROOT / "tests" / "test_import_layers.py")
  layers = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(layers)
  want = [[m.removeprefix("genai_jax.") for m in mods] for _, mods in layers.LAYERS]
  text = (ROOT / "docs" / "architecture.md").read_text().split("## Layers", 1)[1].split("\n## ")[0]
  rows = [line.split("|")[2] for line in text.splitlines()
          if line.startswith("| ") and "`" in line.split("|")[2]]
  got = [re.findall(r"`([^`]+)`", row) for row in rows]
  assert got == want, "update the layer table in docs/architecture.md (and README's Layout)"
