"""The chapters as regression tests: the headline cells' outputs, stored in the pages and compared after execution.

A cell tagged ``nbval-check-output`` (nbval's tag for the same purpose) keeps
its text output in the committed ``book/*.ipynb``. nbval itself would execute
every chapter a second time, so the comparison is made here, on the one
execution that the book also renders (``mvf.execute``). After an execution, each
tagged cell's text (standard output and ``text/plain`` results; images, HTML
and standard error are not compared) is sanitised with the regular expressions of
``book/sanitize.cfg`` (nbval's format) and compared with the stored text, a
decimal number being allowed one unit of its last printed digit (round-off);
a difference is reported as a unified diff of old and new numbers.

Regenerate the stored outputs with ``make outputs`` (execute every chapter,
then ``python -m mvf.regression``).
"""

from __future__ import annotations

import configparser
import difflib
import re
from pathlib import Path

import nbformat

from mvf.cache import write_atomically

ROOT = Path(__file__).resolve().parent.parent
TAG = "nbval-check-output"
SANITIZE = ROOT / "book" / "sanitize.cfg"
# Outputs that belong to a widget (an explorer), never to a library's progress bar.
WIDGET = "application/vnd.jupyter.widget-view+json"


def sanitizers(path: Path = SANITIZE) -> list[tuple[re.Pattern, str]]:
    """The ``(regex, replace)`` pairs of an nbval sanitize file, in file order."""
    parser = configparser.ConfigParser(interpolation=None)
    if not parser.read(path):
        raise FileNotFoundError(f"no sanitize file at {path}")
    return [(re.compile(parser[section]["regex"]), parser[section]["replace"]) for section in parser.sections()]


def sanitize(text: str, rules: list[tuple[re.Pattern, str]]) -> str:
    """``text`` with every rule applied in turn."""
    for pattern, replacement in rules:
        text = pattern.sub(replacement, text)
    return text


def cell_text(cell: nbformat.NotebookNode) -> str:
    """What a reader reads in a cell's output: standard output, ``text/plain`` results and error names, in order."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}\n")
        elif (text := _shown_text(output)) is not None:
            parts.append(text if output.output_type == "stream" else text + "\n")
    return "".join(parts)


def _shown_text(output: nbformat.NotebookNode) -> str | None:
    """An output's standard output or ``text/plain``; None for what is not compared (images, HTML, stderr)."""
    if output.output_type == "stream" and output.name == "stdout":
        return output.text
    if output.output_type in ("execute_result", "display_data") and "text/plain" in output.data:
        return output.data["text/plain"]
    return None


def _check_same_page(stored: nbformat.NotebookNode, executed: nbformat.NotebookNode, name: str) -> None:
    if [c.source for c in stored.cells] != [c.source for c in executed.cells]:
        raise ValueError(f"{name}: the executed notebook is not an execution of this page (cells differ); execute it again")


def tagged(nb: nbformat.NotebookNode) -> list[int]:
    """Indices of the cells whose output is compared."""
    return [i for i, cell in enumerate(nb.cells) if TAG in cell.metadata.get("tags", [])]


_NUMBER = re.compile(r"-?\d+\.\d+")


def same_text(old: list[str], new: list[str]) -> bool:
    """Equal lines, except that a decimal number may differ by one unit in its last printed digit.

    Round-off moves a printed number across a rounding boundary now and then
    (0.6079… against 0.6080…); a change of a result moves it further.
    """
    if len(old) != len(new):
        return False
    for a, b in zip(old, new):
        if _NUMBER.split(a) != _NUMBER.split(b):
            return False
        for x, y in zip(_NUMBER.findall(a), _NUMBER.findall(b)):
            unit = 10.0 ** -max(len(x.split(".")[1]), len(y.split(".")[1]))
            if abs(float(x) - float(y)) > 1.01 * unit:
                return False
    return True


def differences(stored: nbformat.NotebookNode, executed: nbformat.NotebookNode, name: str) -> list[str]:
    """Unified diffs (stored → executed) of the sanitised text of every tagged cell that changed (:func:`same_text`)."""
    rules = sanitizers()
    _check_same_page(stored, executed, name)
    diffs = []
    for index in tagged(stored):
        old = sanitize(cell_text(stored.cells[index]), rules).splitlines()
        new = sanitize(cell_text(executed.cells[index]), rules).splitlines()
        if not same_text(old, new):
            label = f"{name} cell {index}"
            diffs.append("\n".join(difflib.unified_diff(old, new, f"{label} (stored)", f"{label} (now)", lineterm="")))
    return diffs


def _text_only(cell: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    outputs = []
    for output in cell.outputs:
        if (text := _shown_text(output)) is None:
            continue
        if output.output_type == "stream":
            outputs.append(nbformat.v4.new_output("stream", name="stdout", text=text))
        else:
            outputs.append(nbformat.v4.new_output("display_data", data={"text/plain": text}))
    return outputs


def store(page: Path, executed: nbformat.NotebookNode) -> int:
    """Write the text outputs of ``executed``'s tagged cells into the page; returns how many cells were stored."""
    nb = nbformat.read(page, as_version=4)
    _check_same_page(nb, executed, page.name)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    for index in tagged(nb):
        nb.cells[index].outputs = _text_only(executed.cells[index])
    write_atomically(page, lambda stream: stream.write(nbformat.writes(nb).encode()))
    return len(tagged(nb))


def main() -> None:
    from mvf.execute import EXECUTED, chapters

    for page in chapters():
        executed = EXECUTED / page.name
        if not executed.exists():
            raise SystemExit(f"{executed} is missing: execute the chapters first (`make outputs` does both steps).")
        print(f"{page.name}: stored the outputs of {store(page, nbformat.read(executed, as_version=4))} cells")


if __name__ == "__main__":
    main()
