# The commands people type. `make demo` and `make test` work from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench schemas chart-sync clean

$(STAMP): pyproject.toml scripts/install-test-tools.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	VENV=$(VENV) scripts/install-test-tools.sh
	touch $(STAMP)

demo: $(STAMP)
	scripts/ensure-rabbitmq.sh
	scripts/demo.sh

test: $(STAMP)
	scripts/ensure-rabbitmq.sh
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check worker handlers tests
	$(BIN)/mypy

bench: $(STAMP)
	scripts/ensure-rabbitmq.sh
	$(BIN)/python -m tests.bench
	$(BIN)/python -m tests.bench_bridge
	$(BIN)/python -m tests.bench_timers
	$(BIN)/python -m tests.bench_backlog

schemas: $(STAMP)
	$(BIN)/winback events schema --out config/schemas
	$(BIN)/winback rules schema > config/rules.schema.json

# The chart carries a copy of config/rules.yaml and config/templates/ (Helm reads only its own
# files); a test fails until this is run after changing them.
chart-sync:
	scripts/sync-chart-files.sh

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
