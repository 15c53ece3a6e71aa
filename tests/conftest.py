"""Shared fixtures: the embedded model is loaded once per test session, with the hub switched off."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def model():
    from mvf import models

    return models.load_model("smollm2-135m", device="cpu")
