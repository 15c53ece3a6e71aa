"""The book's structure: generated notebooks match their MyST sources, and the table of contents resolves."""

import ast
import re
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

from mvf.book import colab

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "book" / "myst").glob("*.md"))


def _cells(notebook) -> list[tuple[str, str, list[str]]]:
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in notebook.cells]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_matches_its_myst_source(source):
    page = ROOT / "book" / f"{source.stem}.ipynb"
    assert page.exists(), f"{page} is missing: run `make notebooks`"
    generated = nbformat.read(page, as_version=4)
    assert _cells(generated) == _cells(jupytext.read(source)), (
        f"{page.name} has drifted from {source.relative_to(ROOT)}: edit the MyST source and run `make notebooks`"
    )
    stored = [i for i, c in enumerate(generated.cells) if c.get("outputs")]
    assert not stored, f"{page.name}: cells {stored} carry outputs; the headlines are stored in book/numbers/ instead"


def test_every_toc_entry_exists_and_every_chapter_is_listed():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    entries = [toc["root"]] + [chapter["file"] for chapter in toc["chapters"]]
    for entry in entries:
        assert any((ROOT / f"{entry}{ext}").exists() for ext in (".md", ".ipynb")), f"toc entry {entry} has no file"
    listed = {Path(entry).name for entry in entries}
    assert {p.stem for p in SOURCES} <= listed, "a chapter in book/myst is not in _toc.yml"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_chapter_opens_with_setup_and_parameters_cells(source):
    code = [c for c in jupytext.read(source).cells if c.cell_type == "code"]
    assert code[0].source.strip() == colab.SETUP_CELL, "the first code cell must be mvf.book.colab.SETUP_CELL, verbatim"
    assert "parameters" in code[1].metadata.get("tags", []), "the second code cell must be tagged `parameters`"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_no_page_asks_jupyter_book_to_execute_it_again(source):
    """mvf.book.execute executes every chapter once; a page forcing its own execution would run twice in every build."""
    page = nbformat.read(ROOT / "book" / f"{source.stem}.ipynb", as_version=4)
    assert "execution_mode" not in page.metadata.get("mystnb", {}) and "mystnb" not in jupytext.read(source).metadata


# MyST that Jupyter and Colab show as raw text: a role (``{glue:text}`x` ``), a directive fence or a colon fence.
MYST_ONLY = re.compile(r"\{[a-z][\w:-]*\}`|^(```|:::)\{", re.M)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_markdown_reads_the_same_in_jupyter_and_colab(source):
    """Sentences with computed numbers are Markdown outputs of hidden cells (mvf.book.numbers.say), not MyST roles."""
    page = nbformat.read(ROOT / "book" / f"{source.stem}.ipynb", as_version=4)
    raw = [(i, MYST_ONLY.search(c.source).group(0)) for i, c in enumerate(page.cells)
           if c.cell_type == "markdown" and MYST_ONLY.search(c.source)]  # fmt: skip
    assert not raw, f"{page.name}: markdown cells with MyST syntax that Colab shows raw (cell, syntax): {raw}"


def _names(source: str) -> tuple[set[str], set[str]]:
    """Names a cell defines and names it reads (shell escapes, ``!pip``, left out)."""
    tree = ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith("!")))
    defined, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (defined if isinstance(node.ctx, ast.Store) else read).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return defined, read


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_visible_code_uses_only_names_the_page_shows(source):
    """A reader cannot follow code that reads a name only a removed cell defines."""
    shown, hidden, unseen = set(), set(), []
    for cell in (c for c in jupytext.read(source).cells if c.cell_type == "code"):
        defined, read = _names(cell.source)
        removed = {"remove-cell", "remove-input"} & set(cell.metadata.get("tags", []))
        if not removed:
            unseen += [(name, cell.source.splitlines()[0][:50]) for name in sorted(read & hidden - shown - defined)]
        (hidden if removed else shown).update(defined)
    assert not unseen, f"{source.stem}: visible code reads names defined only in removed cells: {unseen}"
