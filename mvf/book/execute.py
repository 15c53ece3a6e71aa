"""Execute the book's chapters once, with a guard against lost kernel messages, and hand the results to Jupyter Book.

Why a client of our own: ``nbclient`` waits for a cell's reply with one
``poll`` on the shell socket whose timeout is the whole cell timeout. pyzmq's
asyncio poller learns of a message from the socket's edge-triggered file
descriptor; when that wake-up is missed, the poll sleeps until its timeout,
then finds the reply already there and carries on without an error. That is
what the "idle kernel" stall of the book build looked like: the circles
chapter waited 600 s (``execute: timeout``), then went on as if nothing had
happened, for a reply the idle kernel had sent long before. Here every wait is
cut into slices of ``SLICE_S`` seconds, so a missed wake-up costs at most one
slice; a message that the kernel sent (its header's date) while the client was
polling, and that was received more than ``LATE_S`` later, is counted as late
(a missed wake-up, or a client loop busy with a large output: the timestamps
cannot tell them apart), and the counts are in the chapter's timings.

Executed chapters are written to ``_build/executed/`` and stored in Jupyter
Book's execution cache (``_build/.jupyter_cache``), so ``jupyter-book build``
renders them without executing anything again.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import datetime
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from queue import Empty
from typing import Any

import nbformat
from nbclient import NotebookClient

from mvf.book import ROOT, perturbation
from mvf.cache import write_atomically

EXECUTED = ROOT / "_build" / "executed"
JUPYTER_CACHE = ROOT / "_build" / ".jupyter_cache"
# Shorter than nbclient's iopub_timeout (4 s), its wait for a cell's last outputs after the reply.
SLICE_S = 1.0
LATE_S = 1.0
LATE = datetime.timedelta(seconds=LATE_S)
CELL_TIMEOUT_S = 600
# Chapters executed at once. Two single-threaded kernels finish the book sooner on 2 cores than one kernel with two
# threads (cold, every chapter: 5 min 28 s against 7 min 14 s): imports, tokenising and plotting use one core.
JOBS = 2
# Longest first, so that the two kernels finish together (`make book`, cold, 2 cores, 2026-12-07: discovery 165 s,
# interventions 144 s, circles 104 s, arithmetic 68 s, control 59 s, off_circle 37 s; the others under 15 s).
SLOW_FIRST = ("discovery", "interventions", "circles", "arithmetic", "control", "off_circle")


class _SlicedChannel:
    """A kernel channel whose ``get_msg`` waits in slices, so that a missed socket wake-up costs one slice."""

    def __init__(self, channel: Any, name: str, late: list[str]):
        self._channel = channel
        self._name = name
        self._late = late

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)

    async def get_msg(self, timeout: float | None = None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = SLICE_S if deadline is None else max(0.0, min(SLICE_S, deadline - time.monotonic()))
            polling_since = datetime.datetime.now(datetime.timezone.utc)
            try:
                msg = await self._channel.get_msg(timeout=remaining)
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
                continue
            # Sent while we were polling, yet received much later: the poll missed its arrival, or this loop was busy
            # (a large output). A message already waiting when the poll began is not counted.
            sent = msg.get("header", {}).get("date")
            now = datetime.datetime.now(datetime.timezone.utc)
            if isinstance(sent, datetime.datetime) and sent > polling_since and now - sent > LATE:
                self._late.append(self._name)
            return msg


class GuardedClient(NotebookClient):
    """``nbclient.NotebookClient`` whose shell and IOPub waits are sliced; ``late_messages`` lists their channels."""

    def __init__(self, nb: nbformat.NotebookNode, **kwargs: Any):
        super().__init__(nb, **kwargs)
        self.late_messages: list[str] = []  # the channel of each late message

    async def async_start_new_kernel_client(self) -> Any:
        client = await super().async_start_new_kernel_client()
        client._shell_channel = _SlicedChannel(client.shell_channel, "shell", self.late_messages)
        client._iopub_channel = _SlicedChannel(client.iopub_channel, "iopub", self.late_messages)
        return client


def _read(path: Path, parameters: dict[str, Any] | None) -> nbformat.NotebookNode:
    if not parameters:
        return nbformat.read(path, as_version=4)
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    return parameterize_notebook(load_notebook_node(str(path)), parameters, kernel_name="python3", language="python")


def execute_notebook(
    path: Path, env: dict[str, str] | None = None, parameters: dict[str, Any] | None = None
) -> tuple[nbformat.NotebookNode, dict]:
    """Execute the notebook at ``path`` in a fresh kernel (working directory: its folder).

    ``env`` replaces the kernel's environment variables of the same names
    (``MVF_CACHE``, say). ``parameters`` (``{"MODEL": "mistral-7b"}``) are
    injected after the cell tagged ``parameters``, as papermill does. Returns the executed notebook and
    ``{"seconds", "late_messages", "late_on"}`` (late kernel messages, and their channels). A cell that raises raises
    ``nbclient.exceptions.CellExecutionError`` naming the chapter and cell.
    """
    nb = _read(path, parameters)
    client = GuardedClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}})
    started = time.monotonic()
    client.execute(env={**os.environ, **(env or {})})
    late = client.late_messages
    return nb, {"seconds": round(time.monotonic() - started, 1), "late_messages": len(late),
                "late_on": {channel: late.count(channel) for channel in sorted(set(late))}}


def _hashable(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The executed notebook as Jupyter Book will hash it: no per-cell execution metadata."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    return nb


def prime_jupyter_book(source: Path, executed: nbformat.NotebookNode, cache: Path = JUPYTER_CACHE) -> None:
    """Store ``executed`` in Jupyter Book's execution cache under ``source``, so the build renders it as is."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    store = get_cache(str(cache))
    record = store.add_nb_to_project(str(source))
    store.cache_notebook_bundle(CacheBundleIn(_hashable(executed), record.uri), check_validity=False, overwrite=True)


def is_primed(source: Path, cache: Path = JUPYTER_CACHE) -> bool:
    """Whether Jupyter Book's cache holds an execution of ``source``'s current code cells."""
    from jupyter_cache import get_cache

    try:
        get_cache(str(cache)).match_cache_notebook(nbformat.read(source, as_version=4))
    except KeyError:
        return False
    return True


def chapters(root: Path = ROOT) -> list[Path]:
    """The book's executable chapters (``.ipynb`` pages), in table-of-contents order."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    entries = [toc["root"]] + [chapter["file"] for chapter in toc["chapters"]]
    return [root / f"{entry}.ipynb" for entry in entries if (root / f"{entry}.ipynb").exists()]


def model_chapters(root: Path = ROOT) -> list[Path]:
    """The chapters whose parameters cell sets ``MODEL`` (those a profile changes), in table-of-contents order."""

    def takes_model(page: Path) -> bool:
        cells = nbformat.read(page, as_version=4).cells
        return any("parameters" in cell.metadata.get("tags", []) and "MODEL =" in cell.source for cell in cells)

    return [page for page in chapters(root) if takes_model(page)]


def threads_env(jobs: int = JOBS) -> dict[str, str]:
    """Kernel environment giving each of ``jobs`` kernels an equal share of the cores as its thread count."""
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    return {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}


def reusable(page: Path, done: Path, perturbed: str) -> bool:
    """Whether ``done``, an earlier execution of ``page``, stands for one now: Jupyter Book's cache holds ``page``'s
    current code and ``done`` ran under the same ``MVF_PERTURB`` (``""``: none)."""
    return (is_primed(page) and done.exists()
            and nbformat.read(done, as_version=4).metadata.get("mvf", {}).get("perturbed", "") == perturbed)


def execute_book(
    pages: list[Path] | None = None,
    force: bool = False,
    env: dict[str, str] | None = None,
    out: Path = EXECUTED,
    jobs: int = JOBS,
) -> dict[str, dict]:
    """Execute every chapter once (skipping those Jupyter Book's cache already holds, unless ``force``).

    An execution under another ``MVF_PERTURB`` (:mod:`mvf.book.perturbation`; in ``env`` or this process's
    environment) than the one asked for now is not reused, so the book never renders a perturbed run by mistake.

    ``jobs`` kernels run at a time, each with an equal share of the CPU cores
    as its thread count (``OMP_NUM_THREADS``), so they do not oversubscribe the
    machine. The results page (the table of contents' last, which reads what
    the others recorded) runs after them, and whenever any of them ran. A
    failing chapter raises once the chapter running beside it has finished. Writes ``out/<chapter>.ipynb`` atomically,
    primes the Jupyter Book cache, and records each chapter's seconds and
    late kernel messages in ``out/timings.json``. Returns those timings. Only
    executions into :data:`EXECUTED` prime the cache (they are what the book renders).
    """
    out.mkdir(parents=True, exist_ok=True)
    kernel_env = threads_env(jobs) | (env or {})
    perturbed = kernel_env.get(perturbation.ENV, os.environ.get(perturbation.ENV, ""))
    timings_path = out / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    book = chapters()
    pages = pages or book
    results_page = book[-1]
    todo = [page for page in pages if force or not reusable(page, out / page.name, perturbed)]
    if todo and results_page in pages and results_page not in todo:
        todo.append(results_page)
    for page in sorted(set(pages) - set(todo)):
        print(f"{page.stem}: unchanged since its last execution", flush=True)

    def finished(page: Path, executed: nbformat.NotebookNode, timing: dict) -> None:
        executed.metadata["mvf"] = {"perturbed": perturbed}
        write_atomically(out / page.name, lambda stream: stream.write(nbformat.writes(executed).encode()))
        if out == EXECUTED:
            prime_jupyter_book(page, executed)
        timings[page.stem] = timing
        print(f"{page.stem}: {timing['seconds']} s, late kernel messages: {timing['late_on'] or 'none'}", flush=True)
        write_atomically(timings_path, lambda stream: stream.write(json.dumps(timings, indent=1).encode()))

    last = [page for page in todo if page == results_page]
    first = sorted((page for page in todo if page not in last),
                   key=lambda page: SLOW_FIRST.index(page.stem) if page.stem in SLOW_FIRST else len(SLOW_FIRST))
    with ThreadPoolExecutor(jobs) as pool:
        running = {pool.submit(execute_notebook, page, kernel_env): page for page in first}
        try:
            for future in as_completed(running):
                finished(running[future], *future.result())
        except BaseException:
            pool.shutdown(cancel_futures=True)  # a failed chapter stops the build; the one still running finishes
            raise
    for page in last:
        finished(page, *execute_notebook(page, kernel_env))
    return timings


def _seconds(cells: list[nbformat.NotebookNode]) -> float:
    """Wall time from the first cell's start to the last cell's reply, from nbclient's timing metadata."""
    times = [cell.metadata.get("execution", {}) for cell in cells if cell.cell_type == "code"]
    started = min(datetime.datetime.fromisoformat(t["iopub.execute_input"]) for t in times if t)
    ended = max(datetime.datetime.fromisoformat(t["shell.execute_reply"]) for t in times if t)
    return round((ended - started).total_seconds(), 1)


def _first_error(cells: list[nbformat.NotebookNode]) -> str | None:
    for cell in cells:
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                return f"{output.ename}: {output.evalue}\nin the cell:\n{cell.source}\n" + "\n".join(output.traceback)
    return None


def execute_variants(
    runs: list[tuple[Path, dict[str, Any]]], env: dict[str, str] | None = None, jobs: int = JOBS
) -> list[dict[str, Any]]:
    """Execute each ``(notebook, parameters)`` of ``runs`` in ``jobs`` kernels, and go on past failures.

    Kernel ``k`` runs the variants ``runs[k::jobs]`` one after another, each
    from ``%reset -f`` in its notebook's folder: its namespace starts empty and
    the packages stay imported (starting a kernel and importing them costs
    about 8 s on 2 cores, once per kernel rather than once per variant);
    module-level state (random generators, ``os.environ``) carries over, which
    the book's chapters do not touch. Returns, in the order of ``runs``,
    ``{"page", "parameters", "notebook", "timing", "error"}``: a variant's
    executed cells and seconds, and the error of its first failing cell
    (``None`` if none failed).
    """
    kernel_env = threads_env(jobs) | (env or {})

    def run(numbers: list[int]) -> list[tuple[int, dict[str, Any]]]:
        cells, spans = [], []
        for number in numbers:
            page, parameters = runs[number]
            nb = _read(page, parameters)
            for cell in nb.cells:
                cell.id = f"v{number}-{cell.get('id', len(cells))}"  # the combined notebook's cell ids must be unique
            # os.chdir rather than %cd: no expansion of the path, and a folder that is not there raises.
            cells.append(nbformat.v4.new_code_cell(f"%reset -f\n__import__('os').chdir({str(page.parent)!r})"))
            spans.append((number, len(cells), len(cells) + len(nb.cells), nb.metadata))
            cells.extend(nb.cells)
        combined = nbformat.v4.new_notebook(cells=cells, metadata=nb.metadata)
        client = GuardedClient(combined, timeout=CELL_TIMEOUT_S, kernel_name="python3", allow_errors=True,
                               resources={"metadata": {"path": str(runs[numbers[0]][0].parent)}})
        client.execute(env={**os.environ, **kernel_env})
        outcomes = []
        for number, first, last, metadata in spans:
            page, parameters = runs[number]
            segment = combined.cells[first:last]
            outcome = {"page": page, "parameters": parameters, "error": _first_error(combined.cells[first - 1 : last]),
                       "notebook": nbformat.v4.new_notebook(cells=segment, metadata=metadata),
                       "timing": {"seconds": _seconds(segment)}}
            print(f"{page.stem} {parameters}: {outcome['timing']['seconds']} s"
                  f"{', failed' if outcome['error'] else ''}", flush=True)
            outcomes.append((number, outcome))
        return outcomes

    shares = [share for share in (list(range(k, len(runs), jobs)) for k in range(jobs)) if share]
    with ThreadPoolExecutor(jobs) as pool:
        done = dict(pair for pairs in pool.map(run, shares) for pair in pairs)
    return [done[number] for number in range(len(runs))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", type=Path, help="chapters to execute (default: every chapter in _toc.yml)")
    parser.add_argument("--force", action="store_true", help="execute even when Jupyter Book's cache is current")
    parser.add_argument("--jobs", type=int, default=JOBS, help=f"chapters executed at once (default {JOBS}), each "
                        "with the cores divided among them as its thread count")
    parser.add_argument("--perturb", metavar="SIZE:SEED", help="execute under seeded relative noise on the models' "
                        "weights (mvf.book.perturbation), e.g. 1e-6:1")
    parser.add_argument("--out", type=Path, default=EXECUTED, help="where the executed chapters go (default "
                        "_build/executed, which the book renders)")
    args = parser.parse_args()
    env = {}
    if args.perturb:
        perturbation.setting(args.perturb)
        env[perturbation.ENV] = args.perturb
    execute_book([page.resolve() for page in args.pages] or None, force=args.force, env=env, out=args.out.resolve(),
                 jobs=args.jobs)


if __name__ == "__main__":
    main()
