"""Shared fixtures: the embedded model (loaded once, hub switched off) and the book's chapters, executed once."""

import functools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest  # noqa: E402

# The chapters execute as on another machine: weights perturbed with a seed that `make tolerances` does not use.
PERTURBATION = "1e-6:3"


@functools.cache
def _embedded_model():
    """Loaded once per process, not per pytest session: mutmut's forked workers run pytest again and inherit it."""
    from mvf import models

    return models.load_model("smollm2-135m", device="cpu")


@pytest.fixture(scope="session")
def model():
    return _embedded_model()


def _reads_chapters(item) -> bool:
    return "executed_chapters" in getattr(item, "fixturenames", ())


# The chapters' execution, running beside the other tests: {"process", "log", "cold", "env"}; whether the session
# renders the book ("render"), and the build once started ({"build", "build_log"}).
_chapters: dict = {}


def pytest_collection_modifyitems(items):
    """The tests that read the executed chapters run last (the chapters execute meanwhile: ``pytest_collection_finish``)."""
    # Whole files, in their own order: a file's later tests may read what its tests of the chapters wrote.
    last = {item.path for item in items if _reads_chapters(item)}
    items.sort(key=lambda item: item.path in last)


def pytest_collection_finish(session):
    """The chapters start executing as soon as the tests that will run are known (after ``-k``, ``--lf`` and the like),
    in a process of their own: the other tests run meanwhile on the cycles its two kernels leave."""
    if any(_reads_chapters(item) for item in session.items) and not session.config.option.collectonly:
        _start_chapters()
        _chapters["render"] = any("built_book" in getattr(item, "fixturenames", ()) for item in session.items)


def _start_chapters() -> None:
    """``python -m mvf.book.execute`` on the session's ``MVF_CACHE`` (``make test`` empties it first, as a new user has
    it), under :data:`PERTURBATION`; its own process, so that no test's changed environment reaches its kernels."""
    from mvf.book import ROOT, execute, perturbation
    from mvf.cache import CACHE_DIR

    cold = not CACHE_DIR.exists() or not any(CACHE_DIR.iterdir())
    env = {"MVF_CACHE": str(CACHE_DIR), perturbation.ENV: PERTURBATION}
    log = execute.EXECUTED.parent / "chapters.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    # With MVF_REUSE_EXECUTED=1 (`make test WARM=1`), chapters that Jupyter Book's cache holds are not executed again.
    force = [] if os.environ.get("MVF_REUSE_EXECUTED") else ["--force"]
    with log.open("w") as stream:
        process = subprocess.Popen([sys.executable, "-m", "mvf.book.execute", "--perturb", PERTURBATION, *force],
                                   cwd=ROOT, env={**os.environ, **env}, stdout=stream, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
    _chapters.update(process=process, log=log, cold=cold, env=env)
    _one_thread()


# Torch's own thread count and the one the tests' subprocesses inherit: {"torch", "OMP_NUM_THREADS", "MKL_NUM_THREADS"}.
_threads_before: dict = {}
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _one_thread() -> None:
    """One thread for this process and the processes its tests start while the chapters' kernels hold the cores. Two
    threads beside two busy kernels oversubscribe the cores, and each parallel region waits for its descheduled
    thread: two patched-run tests of test_interventions took 47 s on two threads and 17 s on one beside two busy
    processes (measured on 2 cores)."""
    import torch

    _threads_before.update({"torch": torch.get_num_threads()}, **{name: os.environ.get(name) for name in _THREAD_VARIABLES})
    torch.set_num_threads(1)
    os.environ.update(dict.fromkeys(_THREAD_VARIABLES, "1"))


def _restore_threads() -> None:
    """The thread counts from before :func:`_one_thread` (once; later calls do nothing)."""
    if not _threads_before:
        return
    import torch

    torch.set_num_threads(_threads_before.pop("torch"))
    for name in _THREAD_VARIABLES:
        if (value := _threads_before.pop(name)) is None:
            os.environ.pop(name)
        else:
            os.environ[name] = value


def pytest_runtest_setup():
    """The cores are the tests' again once the chapters are done."""
    if _threads_before and _chapters["process"].poll() is not None:
        _restore_threads()


@pytest.fixture(scope="session")
def executed_chapters():
    """Every chapter executed once (started by :func:`_start_chapters`), waited for.

    The executed notebooks land in ``_build/executed/`` and in Jupyter Book's
    cache, so the rendered-book test renders them without executing again.
    Once they are done, the tests get both cores back and, where the session
    renders the book, Jupyter Book's build starts (:func:`built_book`).
    Returns ``{"timings", "cache": the cache folder, "cold": whether it was empty, "env"}``.
    """
    from mvf.book import execute
    from mvf.cache import CACHE_DIR

    returncode = _chapters["process"].wait()
    _restore_threads()
    if returncode != 0:
        tail = "\n".join(_chapters["log"].read_text().splitlines()[-60:])
        pytest.fail(f"executing the chapters failed; the end of {_chapters['log']}:\n{tail}", pytrace=False)
    if _chapters["render"]:
        _start_build()
    timings = json.loads((execute.EXECUTED / "timings.json").read_text())
    return {"timings": timings, "cache": CACHE_DIR, "cold": _chapters["cold"], "env": _chapters["env"]}


def _start_build() -> None:
    """Jupyter Book renders the executed chapters from its cache (it executes nothing) in a process of its own, started
    as soon as they are done: the tests that read the chapters run meanwhile."""
    from mvf.book import ROOT

    log = ROOT / "_build" / "build.log"
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT), "--warningiserror", "--keep-going"]
    with log.open("w") as stream:
        _chapters["build"] = subprocess.Popen(command, cwd=ROOT, stdout=stream, stderr=subprocess.STDOUT,
                                              start_new_session=True)  # fmt: skip
    _chapters["build_log"] = log


@pytest.fixture(scope="session")
def built_book(executed_chapters):  # noqa: ARG001 - the build renders what the chapters' execution left
    """The book built by Jupyter Book from the chapters executed once (started by :func:`executed_chapters`), waited
    for: ``{"returncode", "log": its output, "path": _build/build.log}``."""
    returncode = _chapters["build"].wait()
    return {"returncode": returncode, "log": _chapters["build_log"].read_text(), "path": _chapters["build_log"]}


def pytest_sessionfinish(session):
    """A session stopped early (a failure under ``-x``, Ctrl-C) stops the chapters' execution and its kernels, and the
    book's build, too."""
    for name in ("process", "build"):
        if name in _chapters and _chapters[name].poll() is None:
            os.killpg(_chapters[name].pid, signal.SIGTERM)


def pytest_terminal_summary(terminalreporter):
    if _chapters and _chapters["process"].poll() == 0:
        # The executor's own lines: timings.json also holds chapters an earlier run executed (make test WARM=1).
        lines = [line for line in _chapters["log"].read_text().splitlines() if " s, late kernel messages" in line]
        terminalreporter.write_sep("=", f"chapters executed beside the tests ({_chapters['log']})")
        terminalreporter.write_line("\n".join(lines))


@pytest.fixture
def bos_adding_tokenizer():
    """Llama 3's tokenizer as the hub ships it: BOS in front of every call unless ``add_special_tokens=False``."""
    from tokenizers.processors import TemplateProcessing

    from mvf.book import paper_tokenizers

    tokenizer = paper_tokenizers.llama3()
    bos = tokenizer.bos_token
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, tokenizer.bos_token_id)])
    assert tokenizer("Monday")["input_ids"][0] == tokenizer.bos_token_id
    return tokenizer
