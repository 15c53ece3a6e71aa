"""`pytest --nbval-lax` on a page: nbval runs its cells, and mvf.book.nbval_numbers compares what they glued."""

import subprocess
import sys

import nbformat
import pytest

from mvf.book import numbers


@pytest.fixture
def page(tmp_path):
    """A one-cell page that glues x = 0.5, with a folder of stored numbers beside it."""
    source = "from mvf.book import numbers\nnumbers.glue('x', 0.5)\nnumbers.glue('verdict', 'partly')"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), tmp_path / "page.ipynb")
    return tmp_path


def _store(folder, **values):
    numbers._save("page", {name: {"value": value, "n": None, "tolerance": None, "moved": 0.0}
                           for name, value in values.items()}, folder / "stored")  # fmt: skip


def _nbval(folder) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "mvf.book.nbval_numbers", "-p", "no:cacheprovider", "--nbval-lax",
         "--nbval-current-env", "--numbers", str(folder / "stored"), "-v", "page.ipynb"],
        cwd=folder, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_nbval_passes_a_page_whose_glued_numbers_match_and_fails_one_that_moved(page):
    _store(page, x=0.5, verdict="partly")
    run = _nbval(page)
    assert run.returncode == 0 and "named numbers PASSED" in run.stdout, run.stdout + run.stderr
    _store(page, x=0.6, verdict="partly")
    run = _nbval(page)
    assert run.returncode == 1 and "x: stored 0.6, now 0.5, tolerance 0.001" in run.stdout, run.stdout
    _store(page, x=0.5, verdict="matches", y=1.0)
    run = _nbval(page)
    assert "verdict: stored 'matches', now 'partly'" in run.stdout and "y: stored 1, now missing" in run.stdout


def test_a_page_with_no_stored_numbers_is_skipped_not_passed(page):
    run = _nbval(page)
    assert run.returncode == 0 and "named numbers SKIPPED" in run.stdout, run.stdout
