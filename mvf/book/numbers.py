"""Named numbers: the headline quantities a chapter states, glued into its page and compared with tolerances.

A chapter glues each headline with :func:`glue` (or a table's cells with
:func:`glue_frame`): myst-nb's glue, so the prose can paste it
(``{glue:text}`name:.2f```), with what its tolerance needs beside it (the number
of problems behind an accuracy; a tolerance the chapter computes, as for a rank
among close scores). :func:`read` finds every glued value of an executed page.

``book/numbers/<chapter>.json`` stores, per name, the value of the reference
execution (``make outputs``), and how far it moved when the chapter was executed
again under :mod:`mvf.book.perturbation` (another thread count and seeded
relative noise on the weights, standing in for another machine's rounding;
``make tolerances``). A value passes when it is within :func:`tolerance` of
the stored one: a continuous number within ``SAFETY`` times its largest movement
(at least ``FLOOR``), an accuracy over n problems within ``ACCURACY_UNITS``/n as
well, a count or a rank exactly unless it moved or the chapter gave a tolerance,
a text (a verdict, a list of layers) exactly.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

import numpy as np
import pandas as pd

from mvf.book import ROOT
from mvf.cache import write_atomically

if TYPE_CHECKING:
    import nbformat

STORED = ROOT / "book" / "numbers"
# myst-nb's prefix for a glued value that is not displayed where it is glued (myst_nb.ext.glue.GLUE_PREFIX).
GLUE_PREFIX = "application/papermill.record/"
FLOOR = 1e-3
SAFETY = 4.0
ACCURACY_UNITS = 2

Value = float | int | str | None
# The columns of a judged layer's effects (``interventions.summarize``) that the chapters state, per method.
HEADLINE_EFFECTS = ["logit diff", "share from before", "share from before low", "share from before high",
                    "share from mean ablation", "accuracy"]


@dataclass(frozen=True)
class Named:
    """A glued value, with the number of problems behind it (an accuracy) and the tolerance its chapter set."""

    value: Value
    n: int | None = None
    tolerance: float | None = None


def plain(name: str, value: object) -> Value:
    """``value`` as JSON can hold it: numpy scalars as Python numbers, NaN as None, booleans as text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    raise TypeError(f"{name}: glue a number, a text or None, not {type(value).__name__} ({value!r})")


def glue(name: str, value: object, *, n: int | None = None, tolerance: float | None = None) -> None:
    """Glue ``value`` under ``name`` (not displayed here), for the prose to paste and the tests to compare.

    ``n``: the number of problems an accuracy (a fraction) counts over; ``tolerance``: one the chapter computes
    (a rank among scores closer than their own tolerance).
    """
    from IPython.display import display

    value = plain(name, value)
    if n is not None and not isinstance(value, (float, int)):
        raise TypeError(f"{name}: n= is for an accuracy, not for {value!r}")
    GLUED[name] = value
    display({GLUE_PREFIX + "text/plain": repr(value)}, raw=True,
            metadata={"scrapbook": {"name": name, "mime_prefix": GLUE_PREFIX}, "mvf": {"n": n, "tolerance": tolerance}})


# The values this kernel has glued, by name, for say() to paste.
GLUED: dict[str, Value] = {}
# What say() pastes for a value the run did not glue.
NOT_COMPUTED = "(not computed in this run)"
# ``[[name:format]]`` in say()'s text: the value glued under ``name`` (it may hold colons), formatted by ``format``.
PLACEHOLDER = re.compile(r"\[\[([^\[\]]+):([^:\[\]]*)\]\]")


def say(text: str, **names: str):
    """``text`` (Markdown) as a cell's output, each ``[[name:format]]`` replaced by the value glued under ``name``.

    ``names``: parts of glued names that depend on a parameter (the model's name), written ``{key}`` in ``text``.

    A chapter's sentences with computed numbers are made this way rather than with MyST's ``{glue:text}`` role: the
    output is ``text/markdown``, which the built book, Jupyter and Colab all render (Colab shows no MyST), while the
    values stay glued for the regression tests. A value this run did not glue (a pool with too few features under
    another model, say) reads as :data:`NOT_COMPUTED`; the chapters' tests refuse it on the embedded model, and a name
    glued nowhere in the chapter at all is a typo that the book's tests catch the same way.
    """
    from IPython.display import Markdown

    def paste(match: re.Match) -> str:
        name, form = match.group(1), match.group(2)
        if name not in GLUED:
            return NOT_COMPUTED
        return format(GLUED[name], form)

    for key, value in names.items():
        text = text.replace("{" + key + "}", value)
    return Markdown(PLACEHOLDER.sub(paste, text).strip())


def frame_names(prefix: str, frame: pd.DataFrame) -> dict[str, tuple]:
    """The names :func:`glue_frame` gives ``frame``'s cells: ``"{prefix}: {row}, {column}"`` → ``(row, column)``."""

    def label(key: object) -> str:
        return ", ".join(map(str, key)) if isinstance(key, tuple) else str(key)

    return {f"{prefix}: {label(row)}, {label(column)}": (row, column) for row in frame.index for column in frame.columns}


def glue_frame(prefix: str, frame: pd.DataFrame, *, n: Callable[[object, object], int | None] | None = None) -> None:
    """Glue every cell of ``frame`` (see :func:`frame_names`); ``n(row, column)``: the problems behind an accuracy
    (None for a cell that is not one)."""
    for name, (row, column) in frame_names(prefix, frame).items():
        glue(name, frame.loc[row, column], n=n(row, column) if n else None)


def rank_tolerance(scores: pd.Series, place: object, within: float) -> int:
    """How far a rank may move: the number of other items whose score is within ``within`` of the one at ``place``
    (their order among themselves is rounding's, not the method's)."""
    return int((np.abs(scores - scores[place]) <= within).sum()) - 1


def read(nb: nbformat.NotebookNode) -> dict[str, Named]:
    """Every value glued in an executed page, by name; ``ValueError`` if a name is glued twice."""
    from ast import literal_eval

    found: dict[str, Named] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {})
            if "scrapbook" not in meta:
                continue
            name = meta["scrapbook"]["name"]
            if name in found:
                raise ValueError(f"{name!r} is glued twice in this page; give each headline its own name")
            text = output["data"][meta["scrapbook"].get("mime_prefix", "") + "text/plain"]
            try:
                value = literal_eval(text)
            except (ValueError, SyntaxError):
                value = text
            extra = meta.get("mvf", {})
            found[name] = Named(plain(name, value), extra.get("n"), extra.get("tolerance"))
    return found


def tolerance(entry: Mapping) -> float:
    """How far a stored entry's value may move: see the module's docstring. 0 for a text (compared exactly)."""
    if not isinstance(entry["value"], (float, int)):
        return 0.0
    allowed = SAFETY * entry.get("moved", 0.0)
    if entry.get("tolerance") is not None:
        allowed = max(allowed, entry["tolerance"])
    if entry.get("n"):
        allowed = max(allowed, ACCURACY_UNITS / entry["n"])
    if isinstance(entry["value"], float):
        allowed = max(allowed, FLOOR)
    return allowed


def moved(old: Value, new: Value) -> float | None:
    """``|new − old|`` for two numbers, 0 for equal values, None when they cannot be compared by size."""
    if isinstance(old, (int, float)) and isinstance(new, (int, float)):
        return abs(float(new) - float(old))
    return 0.0 if old == new else None


def _show(value: Value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else repr(value)


def compare(stored: Mapping[str, Mapping], now: Mapping[str, Named]) -> list[str]:
    """One line per name whose value left its tolerance, or that is missing or new; empty when all agree."""
    problems = [f"{name}: stored {_show(stored[name]['value'])}, now missing" for name in stored if name not in now]
    problems += [f"{name}: now {_show(now[name].value)}, not stored (run `make outputs`)" for name in now
                 if name not in stored]
    for name in stored.keys() & now.keys():
        entry, value = stored[name], now[name].value
        distance, allowed = moved(entry["value"], value), tolerance(entry)
        if distance is None or distance > allowed:
            problems.append(f"{name}: stored {_show(entry['value'])}, now {_show(value)}, tolerance {allowed:.3g}"
                            f" (moved {entry.get('moved', 0.0):.3g} under the perturbations)")
    return sorted(problems)


def path_for(chapter: str, folder: Path = STORED) -> Path:
    return folder / f"{chapter}.json"


def load(chapter: str, folder: Path = STORED) -> dict[str, dict]:
    """The stored entries of a chapter (``{}`` if none are stored); ``ValueError`` if the file is damaged."""
    path = path_for(chapter, folder)
    if not path.exists():
        return {}
    try:
        entries = json.loads(path.read_text())["numbers"]
        assert all("value" in entry for entry in entries.values())
    except (json.JSONDecodeError, KeyError, TypeError, AssertionError) as error:
        raise ValueError(f"{path} is damaged ({error.__class__.__name__}); regenerate it with `make outputs`") from None
    return entries


def _save(chapter: str, entries: Mapping[str, dict], folder: Path) -> Path:
    path = path_for(chapter, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    # One name per line, so that a change of results reads as a diff of the names that moved.
    lines = [f" {json.dumps(name, ensure_ascii=False)}: {json.dumps(entry, ensure_ascii=False)}"
             for name, entry in sorted(entries.items())]
    text = f'{{"chapter": {json.dumps(chapter)}, "numbers": {{\n' + ",\n".join(lines) + "\n}}\n"
    write_atomically(path, lambda stream: stream.write(text.encode()))
    return path


def store(chapter: str, now: Mapping[str, Named], folder: Path = STORED) -> Path:
    """Store a reference execution's values, keeping each name's measured movement from the last calibration."""
    old = load(chapter, folder)
    entries = {name: {"value": named.value, "n": named.n, "tolerance": named.tolerance,
                      "moved": old.get(name, {}).get("moved", 0.0)} for name, named in now.items()}
    return _save(chapter, entries, folder)


def calibrate(chapter: str, runs: list[Mapping[str, Named]], folder: Path = STORED) -> list[str]:
    """Set each stored name's movement to the largest under the perturbed ``runs``; returns the names whose value
    changed kind or text under them (they cannot be compared with a tolerance: make them stable, or leave them out)."""
    entries = load(chapter, folder)
    unstable = []
    for name, entry in entries.items():
        distances = [moved(entry["value"], run[name].value) if name in run else None for run in runs]
        if any(distance is None for distance in distances):
            unstable.append(f"{name}: {_show(entry['value'])} became "
                            f"{', '.join(_show(run[name].value) if name in run else 'missing' for run in runs)}")
        entry["moved"] = max((d for d in distances if d is not None), default=0.0)
    _save(chapter, entries, folder)
    return unstable


def read_page(path: Path) -> dict[str, Named]:
    import nbformat

    if not path.exists():
        raise SystemExit(f"{path} is missing: execute the chapters first (`make outputs`, `make tolerances`).")
    return read(nbformat.read(path, as_version=4))


def main(argv: list[str] | None = None) -> None:
    from mvf.book.execute import EXECUTED, chapters

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("store", "calibrate"),
                        help="store: the values of the executions in _build/executed; calibrate: the movements "
                             "of the perturbed executions in the given folders")  # fmt: skip
    parser.add_argument("folders", nargs="*", type=Path, help="folders of perturbed executions (calibrate)")
    parser.add_argument("--pages", nargs="+", help="only these chapters (their stems, e.g. interventions control); "
                                                   "the others keep what is stored")  # fmt: skip
    args = parser.parse_args(argv)
    unstable = []
    # The results page gathers the other chapters' records: its numbers are theirs, compared where they are made.
    pages = [page for page in chapters() if page.stem != "results" and (args.pages is None or page.stem in args.pages)]
    if args.pages and len(pages) < len(set(args.pages)):
        sys.exit(f"unknown chapters among {args.pages}; the book's are {[page.stem for page in chapters()]}")
    for page in pages:
        if args.action == "store":
            now = read_page(EXECUTED / page.name)
            if now:
                print(f"{page.stem}: stored {len(now)} named numbers in {store(page.stem, now).relative_to(ROOT)}")
            continue
        if not load(page.stem):
            continue
        runs = [read_page(folder / page.name) for folder in args.folders]
        unstable += calibrate(page.stem, runs)
        entries = load(page.stem)
        largest = max(entries.items(), key=lambda item: item[1]["moved"], default=None)
        if largest:
            print(f"{page.stem}: {len(entries)} named numbers; the largest movement {largest[1]['moved']:.3g} "
                  f"({largest[0]}), tolerance {tolerance(largest[1]):.3g}")
    if unstable:
        sys.exit("not stable under the perturbations:\n" + "\n".join(unstable))


if __name__ == "__main__":
    main()
