"""Shared fixtures: the embedded model (loaded once, hub switched off) and the book's chapters, executed once."""

import functools
import os

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


def pytest_collection_modifyitems(items):
    """The chapters' tests first: their execution fills the session's ``MVF_CACHE`` from empty (``make test``)."""
    items.sort(key=lambda item: item.path.name != "test_chapters.py")


@pytest.fixture(scope="session")
def executed_chapters():
    """Every chapter executed once, on the session's ``MVF_CACHE`` (``make test`` empties it first, as a new user has it),
    under :data:`PERTURBATION` (:mod:`mvf.book.perturbation`).

    The executed notebooks land in ``_build/executed/`` and in Jupyter Book's
    cache, so the rendered-book test renders them without executing again.
    Returns ``{"timings", "cache": the cache folder, "cold": whether it was empty}``;
    with ``MVF_REUSE_EXECUTED=1`` (``make test WARM=1``) chapters that Jupyter
    Book's cache already holds are not executed again.
    """
    from mvf.book import execute, perturbation
    from mvf.cache import CACHE_DIR

    cold = not CACHE_DIR.exists() or not any(CACHE_DIR.iterdir())
    env = {"MVF_CACHE": str(CACHE_DIR), perturbation.ENV: PERTURBATION}
    timings = execute.execute_book(force=not os.environ.get("MVF_REUSE_EXECUTED"), env=env)
    return {"timings": timings, "cache": CACHE_DIR, "cold": cold, "env": env}


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
