# Switchyard — every target installs what it needs first (scripts/bootstrap.sh is idempotent).
VENV   ?= .venv
PY     := $(VENV)/bin/python
SY     := $(VENV)/bin/switchyard
PYTEST_ARGS ?=

.PHONY: help bootstrap up down status demo test test-fast test-faults lint typecheck bench bench-dialog bench-failover bench-probes bench-dns bench-cdc bench-snapshot bench-overload clean

help:
	@echo "make demo      start both regions' infrastructure and the API; show where everything is"
	@echo "make test      lint, type-check and run every test against real servers"
	@echo "make up|down|status   the local infrastructure harness"
	@echo "make lint | typecheck | test-fast (unit tests only) | test-faults (fault-history schedules) | bench | bench-dialog | bench-failover | bench-probes | bench-dns | bench-cdc | bench-snapshot | bench-overload | clean (delete .local data)"

bootstrap:
	@bash scripts/bootstrap.sh

up: bootstrap
	@$(SY) dev up

down:
	@if [ -x $(SY) ]; then $(SY) dev down; fi

status: bootstrap
	@$(SY) dev status

demo: bootstrap
	@$(SY) dev demo

lint: bootstrap
	$(VENV)/bin/ruff check src tests migrations bench
	$(VENV)/bin/ruff format --check src tests migrations bench

typecheck: bootstrap
	$(VENV)/bin/mypy

test: lint typecheck
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-fast: bootstrap
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

# The fault-history test with more schedules than `make test` runs (one): each a fresh
# private harness, about two minutes. SWITCHYARD_FAULT_SEED picks the schedules.
FAULT_SCHEDULES ?= 4
test-faults: bootstrap
	SWITCHYARD_FAULT_SCHEDULES=$(FAULT_SCHEDULES) $(VENV)/bin/pytest -s \
		tests/unit/test_history_checker.py tests/e2e/test_fault_history.py $(PYTEST_ARGS)

bench: bootstrap
	$(PY) bench/harness_startup.py
	$(PY) bench/dialog_chat.py
	$(PY) bench/probe_engine.py
	$(PY) bench/dns_update.py
	$(PY) bench/failover.py
	$(PY) bench/cdc.py
	$(PY) bench/snapshot.py
	$(PY) bench/overload.py

bench-dialog: bootstrap
	$(PY) bench/dialog_chat.py

bench-failover: bootstrap
	$(PY) bench/failover.py

bench-probes: bootstrap
	$(PY) bench/probe_engine.py

bench-dns: bootstrap
	$(PY) bench/dns_update.py

bench-cdc: bootstrap
	$(PY) bench/cdc.py

bench-snapshot: bootstrap
	$(PY) bench/snapshot.py

bench-overload: bootstrap
	$(PY) bench/overload.py

clean: down
	rm -rf .local
