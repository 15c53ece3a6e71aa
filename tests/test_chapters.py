"""The chapters as regression tests, on one execution each (the ``executed_chapters`` fixture).

That execution runs under ``MVF_PERTURB`` (:mod:`mvf.book.perturbation`, a seed
the tolerances were not measured with), standing in for another machine. Each
chapter's named numbers (:mod:`mvf.book.numbers`) must agree with those stored
in ``book/numbers/`` within their tolerances; a moved result fails here with
its name, the stored and the new value and the tolerance. No library may add a
progress widget, and a warm cache must show what a cold one showed.
"""

import nbformat
import pytest

from mvf.book import execute, numbers, regression

PAGES = execute.chapters()


def _executed(name: str) -> nbformat.NotebookNode:
    return nbformat.read(execute.EXECUTED / f"{name}.ipynb", as_version=4)


@pytest.mark.parametrize("page", [p for p in PAGES if p.stem != "results"], ids=lambda p: p.stem)
def test_chapter_reproduces_its_named_numbers(executed_chapters, page):
    """Every chapter but the results page, which gathers the others' records (their numbers are compared here)."""
    moved = numbers.compare(numbers.load(page.stem), numbers.read(_executed(page.stem)))
    assert not moved, ("named numbers left their tolerance (if intended, run `make outputs` and `make tolerances`, "
                       "and commit book/numbers/):\n" + "\n".join(moved))


@pytest.mark.parametrize("page", [p for p in PAGES if p.stem != "results"], ids=lambda p: p.stem)
def test_every_chapter_states_named_numbers(page):
    stored = numbers.load(page.stem)
    assert len(stored) >= 3, f"{page.stem} stores {len(stored)} named numbers: glue its headlines (mvf.book.numbers)"


def _widget_cells(nb: nbformat.NotebookNode) -> list[int]:
    return [i for i, cell in enumerate(nb.cells)
            if any(regression.WIDGET in output.get("data", {}) for output in cell.get("outputs", []))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_widgets_come_only_from_the_explorers(executed_chapters, page):
    nb = _executed(page.stem)
    stray = [i for i in _widget_cells(nb) if "widgets." not in nb.cells[i].source]
    assert not stray, f"{page.stem}: cells {stray} show a widget no explorer made (a library's progress bar?)"


def test_a_warm_cache_shows_what_a_cold_one_showed(executed_chapters, tmp_path):
    """The decomposition chapter, cold: its activations computed (the shard cache), the model converted from its GGUF
    by another chapter (the conversion cache); warm: both read back. The smallest chapter that reads both caches."""
    page = next(p for p in PAGES if p.stem == "decompose")
    if executed_chapters["cold"]:
        env = execute.threads_env() | executed_chapters["env"]
        cold = _executed(page.stem)
    else:  # the session's cache was warm (pytest run by hand, make test WARM=1): make a cold execution here
        env = execute.threads_env() | executed_chapters["env"] | {"MVF_CACHE": str(tmp_path / "cache")}
        cold = execute.execute_notebook(page, env=env)[0]
    warm, _ = execute.execute_notebook(page, env=env)
    rules = regression.sanitizers()
    for index, (before, after) in enumerate(zip(cold.cells, warm.cells)):
        text = [regression.sanitize(regression.cell_text(cell), rules) for cell in (before, after)]
        assert text[0] == text[1], f"cell {index} shows something else on a warm cache:\n{text[0]}\n---\n{text[1]}"
    assert _widget_cells(cold) == _widget_cells(warm)


@pytest.mark.parametrize("page", [p for p in PAGES if p.stem != "results"], ids=lambda p: p.stem)
def test_findings_are_markdown_a_plain_kernel_shows(executed_chapters, page):
    """Jupyter and Colab render a cell's text/markdown output; the findings are one, with every number pasted."""
    nb = _executed(page.stem)
    heading = next(i for i, cell in enumerate(nb.cells)
                   if cell.cell_type == "markdown" and "## What this chapter found" in f"\n{cell.source}")
    said = [output["data"]["text/markdown"] for cell in nb.cells[heading + 1 : heading + 3]
            for output in cell.get("outputs", []) if "text/markdown" in output.get("data", {})]  # fmt: skip
    assert said, f"{page.stem}: its findings are not a Markdown output (mvf.book.numbers.say)"
    assert not any("[[" in text or "{glue" in text for text in said), f"{page.stem}: a number was not pasted"
    unpasted = [cell.source[:80] for cell in nb.cells for output in cell.get("outputs", [])
                if numbers.NOT_COMPUTED in output.get("data", {}).get("text/markdown", "")]  # fmt: skip
    assert not unpasted, f"{page.stem}: a sentence pastes a value the chapter never glued (a typo?): {unpasted}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_executed_chapter_is_light_enough_for_colab(executed_chapters, page):
    """plotly.js stays out of the notebooks (mvf.plots.plotly_html) and figures are sized for the page."""
    size = (execute.EXECUTED / f"{page.stem}.ipynb").stat().st_size
    assert size < 2_000_000, f"{page.stem}: the executed notebook is {size / 1e6:.2f} MB (at most 2 MB)"
