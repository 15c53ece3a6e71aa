"""mvf.regression: sanitising, the round-off allowance, and diffs that show the old and new numbers."""

import nbformat
import pytest

from mvf import regression


def _page(*texts: str) -> nbformat.NotebookNode:
    cells = []
    for text in texts:
        cell = nbformat.v4.new_code_cell("print(result)", metadata={"tags": [regression.TAG]})
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        cells.append(cell)
    return nbformat.v4.new_notebook(cells=cells)


@pytest.mark.parametrize("old, new, same", [
    ("accuracy 0.607 at layer 10", "accuracy 0.608 at layer 10", True),   # round-off across a boundary
    ("accuracy 0.607 at layer 10", "accuracy 0.609 at layer 10", False),  # a result that moved
    ("accuracy 0.607 at layer 10", "accuracy 0.607 at layer 11", False),  # integers must match
    ("R2 0.9113427", "R2 0.9114999", True),                               # digits past the third are sanitised
    ("object at 0x7f3a2c", "object at 0x55d0e1", True),                   # memory addresses
])
def test_numbers_may_differ_by_round_off_only(old, new, same):
    assert (regression.differences(_page(old), _page(new), "page") == []) is same


def test_a_moved_result_is_reported_with_both_numbers():
    (diff,) = regression.differences(_page("circle patch 0.15", "full patch 0.77"),
                                     _page("circle patch 0.15", "full patch 0.46"), "interventions")
    assert "-full patch 0.77" in diff and "+full patch 0.46" in diff and "interventions cell 1" in diff


def test_stored_outputs_keep_only_text(tmp_path):
    page = _page("")
    page.cells[0].outputs = []
    path = tmp_path / "page.ipynb"
    nbformat.write(page, path)
    executed = _page("headline 0.42\n")
    executed.cells[0].outputs.append(nbformat.v4.new_output("display_data", data={"text/plain": "<Figure>",
                                                                                "image/png": "iVBOR"}))
    assert regression.store(path, executed) == 1
    stored = nbformat.read(path, as_version=4).cells[0]
    assert regression.cell_text(stored) == "headline 0.42\n<Figure>\n"
    assert all("image/png" not in output.get("data", {}) for output in stored.outputs)
