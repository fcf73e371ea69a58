# The README's two set-up commands are `make demo` (the main job) and `make test`.
PYTHON ?= python3
PIP := PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 $(PYTHON) -m pip

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

demo:
	$(PIP) install -q --progress-bar off -e .
	runflow-nb demo

test:
	bash scripts/test.sh

bench:
	$(PYTHON) benchmarks/run.py

lint:
	$(PYTHON) -m ruff check runflow_nb tests benchmarks
	$(PYTHON) -m mypy

mutate:
	bash scripts/mutate.sh $(TARGETS)
