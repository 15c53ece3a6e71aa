"""``pytest --nbval-lax book/`` executes the chapters with nbval and compares their named numbers (mvf.book.nbval_numbers)."""

from mvf.book.nbval_numbers import pytest_addoption, pytest_collection_modifyitems  # noqa: F401 (pytest's hooks)
