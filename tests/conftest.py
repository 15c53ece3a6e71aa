"""Shared fixtures: the embedded model (loaded once, hub switched off) and the book's chapters, executed once."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def model():
    from mvf import models

    return models.load_model("smollm2-135m", device="cpu")


@pytest.fixture(scope="session")
def executed_chapters(tmp_path_factory):
    """Every chapter executed once, on an empty ``MVF_CACHE`` of its own, as a new user's first run does it.

    The executed notebooks land in ``_build/executed/`` and in Jupyter Book's
    cache, so the rendered-book test renders them without executing again.
    Returns ``{"timings": ..., "cache": the cache folder they filled}``; with
    ``MVF_REUSE_EXECUTED=1`` (``make test WARM=1``) chapters that Jupyter Book's
    cache already holds are not executed again, and ``cache`` is None.
    """
    from mvf import execute

    if os.environ.get("MVF_REUSE_EXECUTED"):
        return {"timings": execute.execute_book(), "cache": None}
    cache = tmp_path_factory.mktemp("mvf-cache-for-chapters")
    return {"timings": execute.execute_book(force=True, env={"MVF_CACHE": str(cache)}), "cache": cache}
