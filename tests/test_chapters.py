"""The chapters as regression tests, on one execution each (the ``executed_chapters`` fixture).

Each chapter's headline cells (tagged ``nbval-check-output``) must reproduce
the outputs stored in its page, after ``book/sanitize.cfg``; a change that
moves a result fails here with the old and new text. No library may add a
progress widget, and a warm cache must show what a cold one showed.
"""

import nbformat
import pytest

from mvf import execute, regression

PAGES = execute.chapters()


def _executed(name: str) -> nbformat.NotebookNode:
    return nbformat.read(execute.EXECUTED / f"{name}.ipynb", as_version=4)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_chapter_reproduces_its_stored_outputs(executed_chapters, page):
    stored = nbformat.read(page, as_version=4)
    diffs = regression.differences(stored, _executed(page.stem), page.stem)
    assert not diffs, "headline outputs changed (if intended, run `make outputs` and commit the pages):\n" + "\n".join(diffs)


@pytest.mark.parametrize("page", [p for p in PAGES if regression.tagged(nbformat.read(p, as_version=4))],
                         ids=lambda p: p.stem)
def test_every_tagged_cell_has_a_stored_output(page):
    stored = nbformat.read(page, as_version=4)
    empty = [i for i in regression.tagged(stored) if not regression.cell_text(stored.cells[i]).strip()]
    assert not empty, f"{page.name}: tagged cells {empty} store no output, so they test nothing: run `make outputs`"


def _widget_cells(nb: nbformat.NotebookNode) -> list[int]:
    return [i for i, cell in enumerate(nb.cells)
            if any(regression.WIDGET in output.get("data", {}) for output in cell.get("outputs", []))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_widgets_come_only_from_the_explorers(executed_chapters, page):
    nb = _executed(page.stem)
    stray = [i for i in _widget_cells(nb) if "widgets." not in nb.cells[i].source]
    assert not stray, f"{page.stem}: cells {stray} show a widget no explorer made (a library's progress bar?)"


def test_a_warm_cache_shows_what_a_cold_one_showed(executed_chapters, tmp_path):
    """The circles chapter, cold: its activations computed, the GGUF converted by it or by the chapter beside it."""
    page = next(p for p in PAGES if p.stem == "circles")
    if executed_chapters["cold"]:
        env = execute.threads_env() | {"MVF_CACHE": str(executed_chapters["cache"])}
        cold = _executed(page.stem)
    else:  # the session's cache was warm (pytest run by hand, make test WARM=1): make a cold execution here
        env = execute.threads_env() | {"MVF_CACHE": str(tmp_path / "cache")}
        cold = execute.execute_notebook(page, env=env)[0]
    warm, _ = execute.execute_notebook(page, env=env)
    rules = regression.sanitizers()
    for index, (before, after) in enumerate(zip(cold.cells, warm.cells)):
        text = [regression.sanitize(regression.cell_text(cell), rules) for cell in (before, after)]
        assert text[0] == text[1], f"cell {index} shows something else on a warm cache:\n{text[0]}\n---\n{text[1]}"
    assert _widget_cells(cold) == _widget_cells(warm)
