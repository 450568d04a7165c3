# The two commands (see README): `make run` and `make test`.
# Both create the virtual environment and node_modules on first use and skip that when present.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: run test lint typecheck pytest deps stack token histories bench clean

run: deps
	$(BIN)/offramp demo

stack: deps
	$(BIN)/offramp dev

# Throughput and fault figures on a private stack (free ports, temp dir); prints, never asserts.
# Quick by default; e.g. BENCH_ARGS="--orders 1000 --workers 2 --payments 500 --server-kill 200
# --soak 5000". `$(BIN)/offramp bench --help` lists the options.
BENCH_ARGS ?=
bench: deps
	$(BIN)/offramp bench $(BENCH_ARGS)

test: deps lint typecheck pytest

lint: $(PY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(PY_STAMP)
	$(BIN)/mypy

pytest: deps
	$(BIN)/pytest $(PYTEST_ARGS)

deps: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	# `npm install` from the committed lock, not `npm ci`: a registry that serves only this
	# platform's anvil package makes npm ci reject a lock missing another platform's optional
	# entry. `--no-save` (npm docs: "will also prevent writing to package-lock.json") keeps the
	# work tree clean whatever npm version resolves; versions stay exact (pinned + locked).
	npm install --no-save --no-audit --no-fund --loglevel=error
	touch $@

# Re-record the histories the replay tests guard: SellOrder (tests/histories/*.json) and
# Payment, NonceFill, HotWallet (tests/histories/payments/*.json).
histories: deps
	$(BIN)/python -m tests.histories.record
	$(BIN)/python -m tests.histories.payments.record

# Rebuild the committed test-token artifact from contracts/ (offline, pinned solc).
token: deps
	$(BIN)/python scripts/build_token.py

clean:
	rm -rf $(VENV) node_modules data .mypy_cache .ruff_cache .pytest_cache
