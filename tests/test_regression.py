"""mvf.book.regression: what differs between two executions on one machine is sanitised away, and nothing else."""

import nbformat
import pytest

from mvf.book import regression


def _cell(text: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("print(result)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text),
                    nbformat.v4.new_output("display_data", data={"text/plain": "<Figure>", "image/png": "iVBOR"})]
    return cell


@pytest.mark.parametrize("old, new, same", [
    ("object at 0x7f3a2c", "object at 0x55d0e1", True),                      # memory addresses
    ("took 3.2 s", "took 4.1 s", True),                                      # durations
    ("wrote /tmp/a/b/results/x.json", "wrote /home/u/results/x.json", True),  # paths
    ("accuracy 0.607 at layer 10", "accuracy 0.608 at layer 10", False),     # a number that moved
    ("accuracy 0.607 at layer 10", "accuracy 0.607 at layer 11", False),
])
def test_only_what_varies_on_one_machine_is_sanitised(old, new, same):
    rules = regression.sanitizers()
    texts = [regression.sanitize(regression.cell_text(_cell(text)), rules) for text in (old, new)]
    assert (texts[0] == texts[1]) is same


def test_a_cell_text_is_its_standard_output_and_plain_results():
    assert regression.cell_text(_cell("headline 0.42\n")) == "headline 0.42\n<Figure>\n"
