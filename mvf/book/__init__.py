"""The book's machinery, apart from the paper's methods: executing and comparing the chapters, their named numbers,
the stored sweeps and stand-in models they fall back on, and the Colab setup."""

from pathlib import Path


def _root() -> Path:
    checkout = Path(__file__).resolve().parents[2]
    return checkout if (checkout / "_toc.yml").exists() else Path.cwd()


# The book's folder (the one holding _toc.yml): this checkout; for an installed mvf (pip, Colab), which has no book
# around it, the working folder.
ROOT = _root()
