"""nbval and the named numbers: ``pytest --nbval-lax book/<chapter>.ipynb`` also compares the chapter's glued values.

nbval executes a notebook cell by cell, one test per cell; with ``--nbval-lax``
a cell passes when it runs without error. This plugin adds one more test per
notebook, after its last cell: the values its cells glued
(:func:`mvf.book.numbers.glue`), read from the outputs nbval collected, compared
with ``book/numbers/<chapter>.json`` within their tolerances
(:func:`mvf.book.numbers.compare`), so the chapter is executed once for both.
``book/conftest.py`` loads it for the book's pages; elsewhere, ``-p
mvf.book.nbval_numbers``. ``--numbers FOLDER`` compares with another folder of
stored numbers.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mvf.book import numbers


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("nbval").addoption(
        "--numbers", type=Path, default=numbers.STORED,
        help="folder of the stored named numbers that each notebook's glued values are compared with "
             "(default: book/numbers)",
    )  # fmt: skip


class NumbersMoved(Exception):
    """Named numbers that left their tolerance, are missing or are new: one line each."""


class NamedNumbers(pytest.Item):
    """The comparison of one notebook's glued values with its stored named numbers, after nbval ran its cells."""

    def __init__(self, *, cells: list[pytest.Item], folder: Path, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cells, self.folder = cells, folder

    def runtest(self) -> None:
        chapter = self.path.stem
        stored = numbers.load(chapter, self.folder)
        if not stored:
            pytest.skip(f"no named numbers are stored for {chapter} in {self.folder}")
        if any(cell.test_outputs is None for cell in self.cells):
            raise NumbersMoved(["a cell before this one did not run, so its glued values are missing"])
        page = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=cell.test_outputs) for cell in self.cells])
        moved = numbers.compare(stored, numbers.read(page))
        if moved:
            raise NumbersMoved(moved)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> str:
        if isinstance(excinfo.value, NumbersMoved):
            return f"{self.path.stem}: named numbers outside their tolerance\n" + "\n".join(excinfo.value.args[0])
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.path.name}::named numbers"


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """After each notebook's last cell, its ``NamedNumbers`` test."""
    from nbval.plugin import IPyNbCell

    by_notebook: dict[pytest.Collector, list[pytest.Item]] = {}
    for item in items:
        if isinstance(item, IPyNbCell):
            by_notebook.setdefault(item.parent, []).append(item)
    for notebook, cells in by_notebook.items():
        check = NamedNumbers.from_parent(notebook, name="named numbers", cells=cells, folder=config.option.numbers)
        items.insert(items.index(cells[-1]) + 1, check)
