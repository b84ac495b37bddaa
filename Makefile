# The one place that knows how to set up, build and test the book.
#   make book        execute the chapters whose inputs changed since their last
#                    execution (all of them the first time), render the website
#                    (_build/html); FRESH=1 executes every chapter
#   make test        unit tests of xentlib + every chapter's regression, executed
#                    fresh + the site render and its browser test
#   make bench-book  execute each chapter REPEAT times (default 3), alone, and
#                    print the median and spread of its time against the budget
#   make lab         JupyterLab on the chapters
#   make expected    deliberately rewrite tests/expected/*.json from a fresh run
#                    (all chapters, or CHAPTERS="01_surprise_and_cross_entropy ...")
#   make lock        resolve requirements.txt into requirements.lock (UPGRADE=1:
#                    to the newest releases)
# Each target creates .venv and installs requirements.lock and xentlib first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements.lock
REPEAT ?= 3

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

# Hide pip's noise about package locations this machine's pip config names but lacks.
PIPQUIET := grep -v "is ignored: it is neither a file nor a directory" || true
PIP := $(BIN)/python -m pip --disable-pip-version-check

# uv installs the lock, several times faster than pip (README: set-up times);
# pip does where uv cannot be installed, or with INSTALLER=pip. uv does not read
# pip's configuration: it is handed the package indexes and folders of wheels
# that pip is configured with, so that both install the same files.
INSTALLER ?= uv
pipconf = $(sort $(shell $(PYTHON) -m pip config list 2>/dev/null | sed -n "s/^[^=]*\.$(1)='\(.*\)'$$/\1/p"))
UV_SOURCES = $(addprefix --extra-index-url ,$(call pipconf,extra-index-url)) \
	$(addprefix --find-links ,$(call pipconf,find-links)) \
	--index-strategy unsafe-best-match
# A cap that pip is configured with (a constraint file) holds for the lock too,
# or pip could not install it.
PIP_CONSTRAINTS = $(addprefix --constraint ,$(call pipconf,constraint))

.PHONY: setup book test bench-book lab expected lock clean

setup: $(STAMP)

$(STAMP): $(LOCK) pyproject.toml
	@echo "setting up $(VENV) from $(LOCK) (first time: a few minutes)"
	@start=$$(date +%s); \
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
	if [ "$(INSTALLER)" = uv ] && $(PIP) install --quiet "$$(grep '^uv==' $(LOCK))" 2>&1 | { $(PIPQUIET); }; then \
		echo "installing with uv"; \
		$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps $(UV_SOURCES) -r $(LOCK); \
		$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .; \
	else \
		echo "installing with pip"; \
		$(PIP) install --quiet --no-deps -r $(LOCK) 2>&1 | { $(PIPQUIET); }; \
		$(PIP) install --quiet --no-deps --no-build-isolation -e . 2>&1 | { $(PIPQUIET); }; \
	fi; \
	echo "set-up took $$(( $$(date +%s) - start )) s"
	@touch $(STAMP)

book: $(STAMP)
	$(BIN)/python -m xentlib.book build $(if $(filter 1 yes true,$(FRESH)),--fresh)

test: $(STAMP)
	$(BIN)/python -m pytest

bench-book: $(STAMP)
	$(BIN)/python benchmarks/book.py --repeat $(REPEAT) $(if $(THREADS),--threads $(THREADS)) $(CHAPTERS)

lab: $(STAMP)
	$(BIN)/jupyter lab chapters $(if $(filter 0,$(shell id -u)),--allow-root) $(LABFLAGS)

expected: $(STAMP)
	$(BIN)/python -m xentlib.book expected $(CHAPTERS)

# The lock holds every package at an exact version, for every platform and for
# Python 3.10 and later (where a newer Python needs a newer release, it says so).
# `make lock` keeps the versions already locked while they satisfy
# requirements.txt; `make lock UPGRADE=1` moves every package to its newest
# release. The lock is installed without dependency resolution (--no-deps), so
# the packages that must come without their declared dependencies are appended.
NO_DEPS := torchattacks==3.5.1
define NO_DEPS_NOTE
# Installed without its dependencies, as is everything here (this lock is
# complete): torchattacks, a test-only reference for chapter 13, pins
# requests~=2.25.1, which would break Sphinx, yet imports neither requests nor
# torchvision.
endef
export NO_DEPS_NOTE

lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(PIP) install --quiet "$$(grep '^uv==' $(LOCK) || echo uv)"
	$(BIN)/uv pip compile requirements.txt --quiet --universal --python-version 3.10 \
		$(PIP_CONSTRAINTS) $(if $(filter 1 yes true,$(UPGRADE)),--upgrade) \
		--custom-compile-command "make lock" --output-file $(LOCK)
	printf '\n%s\n%s\n' "$$NO_DEPS_NOTE" "$(NO_DEPS)" >> $(LOCK)

clean:
	rm -rf _build .pytest_cache .hypothesis
