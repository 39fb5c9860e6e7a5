# Two commands a newcomer needs: `make run` (the local stack) and `make test` (the whole suite).
# Both install what is missing first: a virtualenv in .venv, Azurite and axe-core in node_modules,
# the console's npm packages and build (console/dist), and, for the tests, Debian's chromium.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint typecheck bench deps console browser clean

run: deps console
	$(PY) -m devstack $(RUN_ARGS)

test: deps console browser
	npm --prefix console test --silent
	$(PY) -m pytest $(PYTEST_ARGS)


lint: deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: deps console
	$(PY) -m mypy
	npm --prefix console run typecheck --silent

bench: deps
	$(PY) -m benchmarks.api_list

deps: $(VENV)/.installed node_modules/.installed

# The console: npm packages, the API's OpenAPI document (types for the client), the build.
CONSOLE_INPUTS := $(shell find console/src console/index.html console/vite.config.ts console/tsconfig*.json console/package.json -type f 2>/dev/null) $(shell find shared/api functions -name '*.py' 2>/dev/null)
console: console/dist/index.html

console/node_modules/.installed: console/package.json console/package-lock.json
	npm --prefix console ci --no-audit --no-fund --loglevel=error
	touch $@

console/dist/index.html: console/node_modules/.installed $(VENV)/.installed $(CONSOLE_INPUTS)
	PYTHON=$(abspath $(PY)) npm --prefix console run gen --silent
	npm --prefix console run build --silent
	touch $@

# Debian's chromium for the console's end-to-end tests (Playwright drives it; it cannot download its own).
browser:
	scripts/ensure-chromium

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) node_modules console/node_modules console/dist .pytest_cache .mypy_cache .ruff_cache
