# The one place that knows how to set up, build and test the book.
#   make book      execute every chapter once, render the website (_build/html)
#   make test      unit tests of xentlib + every chapter's regression + the site render
#   make lab       JupyterLab on the chapters
#   make expected  deliberately rewrite tests/expected/*.json from a fresh run
#                  (all chapters, or CHAPTERS="01_surprise_and_cross_entropy ...")
# Each target creates .venv and installs requirements.txt and xentlib first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

# Test-only references installed without their dependencies: torchattacks pins
# requests~=2.25.1, which would break Sphinx, yet imports neither requests nor
# torchvision. (pip cannot say --no-deps for one line of requirements.txt.)
TEST_ONLY_NO_DEPS := "torchattacks==3.5.1"

# Hide pip's noise about package locations this machine's pip config names but lacks.
PIPQUIET := grep -v "is ignored: it is neither a file nor a directory" || true

.PHONY: setup book test lab expected clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@echo "setting up $(VENV) (first time: a few minutes)"
	@start=$$(date +%s); \
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt 2>&1 | { $(PIPQUIET); }; \
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e . 2>&1 | { $(PIPQUIET); }; \
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps $(TEST_ONLY_NO_DEPS) 2>&1 | { $(PIPQUIET); }; \
	echo "set-up took $$(( $$(date +%s) - start )) s"
	@touch $(STAMP)

book: $(STAMP)
	$(BIN)/python -m xentlib.book build

test: $(STAMP)
	$(BIN)/python -m pytest

lab: $(STAMP)
	$(BIN)/jupyter lab chapters $(if $(filter 0,$(shell id -u)),--allow-root) $(LABFLAGS)

expected: $(STAMP)
	$(BIN)/python -m xentlib.book expected $(CHAPTERS)

clean:
	rm -rf _build .pytest_cache .hypothesis
