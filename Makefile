# SB-8-7 on Apache Airflow. `make demo` runs the sample request; `make test` runs the tests.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint bench

$(STAMP): requirements.txt requirements-dev.txt scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)

## Start the embedded stack, trigger the sample request, wait for your decision (Ctrl-C stops all).
demo: $(STAMP)
	$(PY) scripts/demo.py

## Lint, then every test (unit, contract and end-to-end on the real embedded stack).
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

## Only the tests that need no running stack.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not stack"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

## The burst benchmark (100 requests at once on the embedded stack).
bench: $(STAMP)
	$(PY) bench/burst.py
