"""The book's structure: generated notebooks match their MyST sources, and the table of contents resolves."""

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
