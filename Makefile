# ClinicAuth: `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= localhost
PORT ?= 8000

.PHONY: run test install install-dev migrate seed clean bench bench-smoke test-postgres test-concurrency test-cluster

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# What running needs (`make run`, production); the test tools (pytest, Playwright, Hypothesis, ...) only with `make test`.
$(VENV)/.installed-app: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed-app
install-dev: $(VENV)/.installed

migrate: install
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py migrate --noinput

# The demo clinics and accounts go only into an empty database (a restart changes nothing); DEMO=0 loads none.
DEMO ?= 1
seed: migrate
ifeq ($(DEMO),0)
	@echo "== DEMO=0: no demo data loaded"
else
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py seed_demo --if-empty
endif

run: seed
	DEBUG=$${DEBUG:-1} EMAIL_QUEUE=$${EMAIL_QUEUE:-off} SITE_URL=$${SITE_URL:-http://$(HOST):$(PORT)} $(BIN)/python manage.py runserver $(HOST):$(PORT)

# The non-browser suites run on every core (pytest-xdist; each file stays on one worker, so a file's
# shared server fixtures start once): on a slow 2-core machine each took 5-8 minutes alone.
XDIST ?= -n auto --dist loadfile
test: install-dev
	$(BIN)/python -m pytest -q $(XDIST) -m "not e2e and not concurrency and not bench_smoke and not cluster"
	@test -f node_modules/axe-core/axe.min.js || { echo "== npm ci (axe-core for the accessibility checks)"; npm ci --no-audit --no-fund --silent; }
	$(BIN)/python -m pytest -q -m e2e tests/e2e

# The same non-browser suite against PostgreSQL (psycopg 3); Django creates and drops test_$(PG_DB).
PG_URL ?= postgres://postgres@127.0.0.1:5432
PG_DB ?= clinicauth_ci
test-postgres: install-dev
	DATABASE_URL=$(PG_URL)/$(PG_DB) $(BIN)/python -m pytest -q $(XDIST) -m "not e2e and not concurrency and not bench_smoke and not cluster"

# Two app nodes (the shipped gunicorn.conf.py) behind the shipped deploy/haproxy.cfg on a fresh
# PostgreSQL database: every rule across nodes, and a node killed under load. Needs haproxy.
test-cluster: install-dev
	@command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || { echo "== installing haproxy"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null; }
	$(BIN)/python -m pytest -q -m cluster tests/cluster -s

# Real parallel HTTP against gunicorn (4 workers) on a fresh PostgreSQL database; prints the counts.
test-concurrency: install-dev
	$(BIN)/python -m pytest -q -m concurrency tests/concurrency -s

# The benchmark (docs/benchmark.md): tables on stdout, JSON in bench/results/latest.json.
# Needs PostgreSQL at 127.0.0.1:5432 (user postgres) and wrk; BENCH_ARGS="--quick" for a short trial.
# The peers (django-two-factor-auth, django-allauth) go into the venv only here: pyproject's group `bench`.
$(VENV)/.bench-installed: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

bench: install-dev $(VENV)/.bench-installed
	@command -v wrk >/dev/null 2>&1 || { echo "== installing wrk"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	DEBUG=0 LOG_LEVEL=WARNING PYTHONWARNINGS="ignore:No directory at" $(BIN)/python -m bench.run $(BENCH_ARGS)

# The benchmark's --smoke run as a test (tests/test_bench_smoke.py, under 60 s): PostgreSQL, wrk, the peers.
bench-smoke: install-dev $(VENV)/.bench-installed
	@command -v wrk >/dev/null 2>&1 || { echo "== installing wrk"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python -m pytest -q -m bench_smoke tests/test_bench_smoke.py

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles artifacts
