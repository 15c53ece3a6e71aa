"""What a reader reads in a cell, less what legitimately varies between two executions on one machine.

Two executions of a chapter on the same machine (a cold cache and a warm one)
must show the same text: standard output and ``text/plain`` results (images,
HTML and standard error are not compared), sanitised with the regular
expressions of ``book/sanitize.cfg`` (nbval's format: addresses, paths,
durations, progress text). Between machines the chapters' headlines are
compared as named numbers with tolerances instead (:mod:`mvf.book.numbers`).
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import nbformat

from mvf.book import ROOT

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
