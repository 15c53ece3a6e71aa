"""Consecutive cold builds of the book: where the time goes, and does any chapter stall?

    python bench/book_builds.py [--runs 10]

Each run deletes ``_build`` and runs ``make book`` on an empty ``MVF_CACHE``,
as a new user's first build does (the virtual environment is kept: the
install is timed by a fresh clone's ``make book``, in the README). Prints every
chapter's execution time per run, its median and the ratio of its slowest run
to its median (a stalled chapter shows up as a ratio far above 1.5), the kernel
messages that arrived late (more than ``mvf.book.execute.LATE_S`` after the
kernel sent them; the guarded client bounds such a wait to ``SLICE_S``), each
build's wall time, the slowest cells of the last build, and the time of a
re-build after editing one chapter's prose (a word added to its
title, then taken out again).
"""

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cold_build() -> tuple[float, dict]:
    """One ``make book`` from nothing: wall seconds and ``_build/executed/timings.json``."""
    shutil.rmtree(ROOT / "_build", ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="mvf-cache-") as cache:
        started = time.perf_counter()
        subprocess.run(["make", "book"], cwd=ROOT, check=True, capture_output=True,
                       env={**os.environ, "MVF_CACHE": cache})
        wall = time.perf_counter() - started
    return wall, json.loads((ROOT / "_build" / "executed" / "timings.json").read_text())


def slowest_cells(count: int = 12) -> list[tuple[float, str, str]]:
    """The ``count`` slowest cells of the last build: (seconds, chapter, first line), from nbclient's timestamps."""
    import nbformat

    cells = []
    for path in sorted((ROOT / "_build" / "executed").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            stamps = cell.get("metadata", {}).get("execution", {})
            if "iopub.execute_input" in stamps and "shell.execute_reply" in stamps:
                began, ended = (datetime.datetime.fromisoformat(stamps[key].replace("Z", "+00:00"))
                                for key in ("iopub.execute_input", "shell.execute_reply"))  # fmt: skip
                first = next((line for line in cell.source.splitlines() if line and not line.startswith(":")), "")
                cells.append(((ended - began).total_seconds(), path.stem, first[:70]))
    return sorted(cells, reverse=True)[:count]


def prose_rebuild(chapter: str = "decompose") -> float:
    """Wall seconds of ``make book`` after a word is added to ``chapter``'s title (then taken out)."""
    source = ROOT / "book" / "myst" / f"{chapter}.md"
    original = source.read_text()
    try:
        source.write_text(original.replace("\n# ", "\n# Edited: ", 1))
        subprocess.run(["make", "notebooks"], cwd=ROOT, check=True, capture_output=True)
        started = time.perf_counter()
        subprocess.run(["make", "book"], cwd=ROOT, check=True, capture_output=True)
        return time.perf_counter() - started
    finally:
        source.write_text(original)
        subprocess.run(["make", "notebooks"], cwd=ROOT, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    walls, runs = [], []
    for run in range(args.runs):
        wall, timings = cold_build()
        walls.append(wall)
        runs.append(timings)
        late = {name: t["late_on"] for name, t in timings.items() if t["late_messages"]}
        seconds = {name: t["seconds"] for name, t in timings.items()}
        print(f"build {run + 1}: {wall:.0f} s; chapters {seconds}; late kernel messages: {late or 'none'}", flush=True)
    print(f"\n{'chapter':14s} {'median s':>9s} {'max/median':>11s}  seconds per build")
    worst = 0.0
    for name in runs[0]:
        seconds = [timings[name]["seconds"] for timings in runs]
        median = statistics.median(seconds)
        worst = max(worst, max(seconds) / median)
        print(f"{name:14s} {median:9.1f} {max(seconds) / median:11.2f}  {seconds}")
    print(f"\nslowest chapter run / its median: {worst:.2f} (a stall would be ≫ 1.5); builds "
          f"{min(walls):.0f}–{max(walls):.0f} s, late kernel messages in all: "
          f"{sum(t['late_messages'] for timings in runs for t in timings.values())}")
    print("\nslowest cells of the last build (seconds, chapter, first line):")
    for seconds, chapter, first in slowest_cells():
        print(f"{seconds:7.1f}  {chapter:14s} {first}")
    print(f"\nre-build after editing one chapter's prose: {prose_rebuild():.0f} s")


if __name__ == "__main__":
    main()
