# One entry point per job; each target sets itself up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck bench soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Embedded broker + worker + demo producer with a live summary (Ctrl-C stops it).
run: $(STAMP)
	$(BIN)/python -m ecom_cli demo

## Unit and integration tests (integration tests start their own broker).
test: $(STAMP)
	scripts/ensure-prometheus.sh
	scripts/ensure-chromium.sh
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy online_models streams backtest ecom_cli

bench: $(STAMP)
	$(BIN)/python benchmarks/replay_bench.py

## One live worker fed a fixed population for 20 minutes: RSS over time, PASS/FAIL on growth.
soak: $(STAMP)
	$(BIN)/python benchmarks/soak.py --minutes 20

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
