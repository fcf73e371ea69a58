# The README's two set-up commands are `make demo` (the main job) and `make test`.
PYTHON ?= python3
PIP := PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 $(PYTHON) -m pip
SHELL := bash
.SHELLFLAGS := -o pipefail -c

.PHONY: help install demo test bench lint mutate

help:
	@echo "make demo    install the package and run the offline demo sweep; prints the report's path"
	@echo "make test    install everything (chromium, PostgreSQL, dev extras) and run the full suite"
	@echo "make install install everything the tests need, without running them"
	@echo "make bench   run the benchmarks and print their ratios"
	@echo "make lint    ruff and mypy only"
	@echo "make mutate  mutation testing of the money and safety code (slow: see docs/mutation.md)"

install:
	bash scripts/install.sh

# pip lists each package as it installs (a few minutes the first time, seconds after); the demo then
# runs with the very interpreter it was installed into, whatever `runflow-nb` is first on PATH.
demo:
	@echo "==> pip install -e '.[notebooks]' into $$($(PYTHON) -c 'import sys; print(sys.prefix)') (a few minutes the first time)"
	@( while sleep 30; do echo "    ... pip is still at work ($$((SECONDS))s)"; done ) & ticker=$$!; \
	  $(PIP) install --progress-bar off -e '.[notebooks]' | sed -u '/^Requirement already satisfied/d'; rc=$$?; \
	  kill $$ticker 2>/dev/null; \
	  if [ $$rc -ne 0 ]; then echo "make demo: pip install failed. If pip says the environment is externally managed, make and activate a virtualenv first: python3 -m venv .venv && . .venv/bin/activate"; exit 1; fi
	@echo "==> $(PYTHON) -m runflow_nb demo"
	$(PYTHON) -m runflow_nb demo

test:
	bash scripts/test.sh

bench:
	$(PYTHON) benchmarks/run.py

lint:
	$(PYTHON) -m ruff check runflow_nb tests benchmarks
	$(PYTHON) -m mypy

mutate:
	bash scripts/mutate.sh $(TARGETS)
