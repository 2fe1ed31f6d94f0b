# SB-8-7 on Apache Airflow. `make demo` runs the sample request; `make test` runs the tests.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup services demo test test-fast lint bench podman-trial podman-trial-down

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)

## The machine's PostgreSQL and Redis (the distributed mode and the project database's tests), started if down.
services:
	bash scripts/machine_services.sh

## Start the embedded stack, trigger the sample request, wait for your decision (Ctrl-C stops all).
demo: $(STAMP)
	$(PY) scripts/demo.py

## Lint, then every test (unit, contract, end to end on the real embedded stack in both modes).
test: $(STAMP) services
	$(VENV)/bin/ruff check .
	bash scripts/run_tests.sh

## Only the tests that need no server at all (no stack, no PostgreSQL).
test-fast: $(STAMP)
	$(PY) -m pytest -m "not stack and not server"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

## The benchmarks, one run within 3 hours (each sized and bounded): figures and targets into BENCHMARKS.md.
bench: $(STAMP) services
	$(PY) -m bench.run

## docker-compose.yaml for real under podman-compose on the host network (loopback only), the sample
## request to its result e-mail; builds stand-in base images first (docs/production.md). Not in `make test`.
podman-trial: $(STAMP)
	bash scripts/podman_trial.sh

podman-trial-down:
	bash scripts/podman_trial.sh down
