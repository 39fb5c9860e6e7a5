# Two commands a newcomer needs: `make run` (the local stack) and `make test` (the whole suite).
# Both install what is missing first: a virtualenv in .venv and Azurite in node_modules.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint typecheck bench deps clean

run: deps
	$(PY) -m devstack

test: deps
	$(PY) -m pytest $(PYTEST_ARGS)

lint: deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: deps
	$(PY) -m mypy

bench: deps
	$(PY) -m benchmarks.api_list

deps: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
