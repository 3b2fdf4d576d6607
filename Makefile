# Short names for the long commands. `make help` lists them.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.9

.PHONY: help venv demo stop status test lint lock bench clean

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/.synced: requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync -q --compile-bytecode --python $(BIN)/python requirements.lock
	@touch $@

venv: $(BIN)/.synced  ## create .venv and install the locked dependencies

demo: venv  ## run it: embedded PostgreSQL, demo data, SMTP sink, Airflow (UI on :8080)
	$(BIN)/python -m dev.stack.devstack up

stop: venv  ## stop everything `make demo` started
	$(BIN)/python -m dev.stack.devstack down

status: venv  ## what the demo stack is running, and its memory (PSS per kind of process)
	$(BIN)/python -m dev.stack.devstack status

lint: venv  ## ruff (with the Airflow 3 AIR rules), import contracts, layers, module size
	$(BIN)/ruff check dags plugins include dev tests docker
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_import_contracts.py tests/test_code_layout.py

test: venv lint  ## run the test suite against a real PostgreSQL
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: venv  ## benchmark on the bench-scale data set (prints its figures)
	$(BIN)/python -m dev.bench $(BENCH_ARGS)

lock:  ## re-resolve requirements.txt into requirements.lock
	$(BIN)/uv pip compile requirements.txt --python-version 3.11 --no-header -o requirements.lock

clean: stop  ## stop the stack and delete generated state (.local/)
	rm -rf .local
