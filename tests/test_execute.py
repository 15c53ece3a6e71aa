"""The guarded notebook client: a missed socket wake-up costs one slice, not the cell timeout."""

import asyncio
import datetime
import time
from queue import Empty

import nbformat
import pytest

from mvf.book import execute


class _LateChannel:
    """A channel whose poll is never woken: a message sent at ``sent`` is found only when a wait times out."""

    def __init__(self, sent: datetime.datetime | None):
        self.sent = sent
        self.timeouts = []

    async def get_msg(self, timeout=None):
        self.timeouts.append(timeout)
        await asyncio.sleep(timeout)
        if self.sent:
            return {"msg_id": "reply", "header": {"date": self.sent}}
        raise Empty


def test_a_missed_wakeup_costs_one_slice_and_the_message_counts_as_late(monkeypatch):
    monkeypatch.setattr(execute, "SLICE_S", 0.05)
    monkeypatch.setattr(execute, "LATE", datetime.timedelta(seconds=0.02))
    missed = []
    started = time.monotonic()
    sent = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=0.01)  # sent during the poll
    message = asyncio.run(execute._SlicedChannel(_LateChannel(sent), "shell", missed).get_msg(timeout=600))
    assert message["msg_id"] == "reply" and time.monotonic() - started < 1
    assert missed == ["shell"]


def test_a_message_delivered_on_time_or_waiting_before_the_poll_is_not_counted(monkeypatch):
    monkeypatch.setattr(execute, "SLICE_S", 0.05)
    monkeypatch.setattr(execute, "LATE", datetime.timedelta(seconds=0.02))
    missed = []
    now = datetime.datetime.now(datetime.timezone.utc)
    for sent in (now + datetime.timedelta(seconds=1), now - datetime.timedelta(seconds=5)):
        asyncio.run(execute._SlicedChannel(_LateChannel(sent), "shell", missed).get_msg(timeout=600))
    assert missed == []


def test_no_message_waits_the_whole_timeout_in_slices(monkeypatch):
    monkeypatch.setattr(execute, "SLICE_S", 0.05)
    late, missed = _LateChannel(sent=None), []
    with pytest.raises(Empty):
        asyncio.run(execute._SlicedChannel(late, "iopub", missed).get_msg(timeout=0.3))
    assert len(late.timeouts) >= 5 and max(late.timeouts) <= 0.05 and not missed


def test_executes_a_notebook_in_its_folder_with_the_given_environment(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import os; print(os.getcwd(), os.environ['MVF_CACHE'])"),
        nbformat.v4.new_code_cell("6 * 7"),
    ])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    page = tmp_path / "page.ipynb"
    nbformat.write(nb, page)
    executed, timing = execute.execute_notebook(page, env={"MVF_CACHE": "/elsewhere"})
    assert executed.cells[0].outputs[0].text.split() == [str(tmp_path), "/elsewhere"]
    assert executed.cells[1].outputs[0].data["text/plain"] == "42"
    assert timing["seconds"] > 0


def test_a_failing_cell_names_its_error(tmp_path):
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise ValueError('no such layer')")])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "bad.ipynb")
    with pytest.raises(CellExecutionError, match="no such layer"):
        execute.execute_notebook(tmp_path / "bad.ipynb")


def test_a_zero_timeout_still_polls_once():
    sent = datetime.datetime.now(datetime.timezone.utc)
    message = asyncio.run(execute._SlicedChannel(_LateChannel(sent), "shell", []).get_msg(timeout=0))
    assert message["msg_id"] == "reply"


def test_variants_get_their_own_parameters_an_empty_namespace_and_their_own_errors(tmp_path):
    page = tmp_path / "page.ipynb"
    parameters = nbformat.v4.new_code_cell("X = 0")
    parameters.metadata["tags"] = ["parameters"]
    cells = [parameters, nbformat.v4.new_code_cell("assert 'LEFTOVER' not in dir()\nLEFTOVER = 1\nassert X != 2\nprint(X * 10)")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), page)
    outcomes = execute.execute_variants([(page, {"X": 1}), (page, {"X": 2}), (page, {"X": 3})], jobs=1)
    assert [o["parameters"]["X"] for o in outcomes] == [1, 2, 3]
    assert outcomes[0]["error"] is None and outcomes[2]["error"] is None
    assert outcomes[1]["error"].startswith("AssertionError") and "assert X != 2" in outcomes[1]["error"]
    printed = [cell.outputs[0].text for cell in outcomes[2]["notebook"].cells if cell.get("outputs")]
    assert printed == ["30\n"] and outcomes[2]["timing"]["seconds"] >= 0


def test_variants_of_notebooks_in_other_folders_run_in_their_own_folder(tmp_path):
    """One kernel runs the variants of every notebook; each variant runs where its notebook lies."""
    runs = []
    for folder in ("first folder", "v{1}"):  # IPython's %cd would expand the braces
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "here.txt").write_text(folder)
        parameters = nbformat.v4.new_code_cell("X = 0")
        parameters.metadata["tags"] = ["parameters"]
        cells = [parameters, nbformat.v4.new_code_cell("print(open('here.txt').read(), X)")]
        nbformat.write(nbformat.v4.new_notebook(cells=cells), tmp_path / folder / "page.ipynb")
        runs += [(tmp_path / folder / "page.ipynb", {"X": 1}), (tmp_path / folder / "page.ipynb", {"X": 2})]
    outcomes = execute.execute_variants(runs[2:] + runs[:2], jobs=1)
    printed = [cell.outputs[0].text for outcome in outcomes for cell in outcome["notebook"].cells if cell.get("outputs")]
    assert printed == ["v{1} 1\n", "v{1} 2\n", "first folder 1\n", "first folder 2\n"]
    assert outcomes[0]["notebook"].metadata["papermill"]["parameters"] == {"X": 1}


def test_an_execution_under_another_perturbation_is_not_reused(tmp_path, monkeypatch):
    """`make test` executes perturbed; a `make book` after it must execute again, not render the perturbed run."""
    monkeypatch.setattr(execute, "is_primed", lambda page: True)
    done = tmp_path / "page.ipynb"
    assert not execute.reusable(tmp_path / "source.ipynb", done, "")  # never executed
    nb = nbformat.v4.new_notebook()
    nb.metadata["mvf"] = {"perturbed": "1e-6:3"}
    nbformat.write(nb, done)
    assert execute.reusable(tmp_path / "source.ipynb", done, "1e-6:3")
    assert not execute.reusable(tmp_path / "source.ipynb", done, "")
    monkeypatch.setattr(execute, "is_primed", lambda page: False)  # its code changed since
    assert not execute.reusable(tmp_path / "source.ipynb", done, "1e-6:3")
