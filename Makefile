# Customer Circle: the two README commands (`make demo`, `make test`) and a few helpers.
# Everything runs inside .venv, which is created and kept in step with pyproject.toml.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Touched after each successful install; pip runs again only when pyproject.toml is newer.
INSTALLED := $(VENV)/.installed
# The same, with the benchmarks' extra (gunicorn for B9) on top.
BENCH_INSTALLED := $(VENV)/.installed-bench

.DEFAULT_GOAL := help
.PHONY: help demo test lint format messages audit fuzz bench bench-smoke bench-reports clean

help:
	@echo "make demo      run the dashboard with the demo company (web server + task worker)"
	@echo "make test      ruff, migration check and the whole pytest suite"
	@echo "make lint      ruff check and ruff format --check"
	@echo "make format    ruff format and ruff check --fix"
	@echo "make messages  update and compile the Japanese translations (needs gettext)"
	@echo "make audit     pip-audit of requirements.lock (needs a vulnerability service)"
	@echo "make fuzz      schemathesis with fresh random examples, 100 per operation (slow)"
	@echo "make bench     scenario benchmarks B1-B9 vs references, SQLite + PostgreSQL, large company (slow)"
	@echo "make bench-smoke  every benchmark scenario runs, scaled down, small company, both databases (~3 min)"
	@echo "make bench-reports  time every report page on the demo company (docs/benchmarks.md)"
	@echo "make clean     remove caches, collected static files and .venv (keeps db.sqlite3)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check --quiet -c requirements.lock -e ".[dev]"
	touch $@

$(BENCH_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install --disable-pip-version-check --quiet -c requirements.lock -e ".[dev,bench]"
	touch $@

demo: $(INSTALLED)
	$(BIN)/python manage.py demo

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest

format: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

messages: $(INSTALLED)
	mkdir -p locale
	$(BIN)/python manage.py makemessages -l ja --no-obsolete --ignore="static/*" --ignore="staticfiles/*" --ignore="tests/*"
	$(BIN)/python manage.py compilemessages -l ja --ignore=$(VENV)

# --strict: a dependency that could not be checked fails the audit instead of passing silently.
audit: $(INSTALLED)
	$(BIN)/pip-audit --strict --no-deps --disable-pip --progress-spinner off -r requirements.lock

# The suite replays fixed examples; this draws new ones to hunt for what they miss.
fuzz: $(INSTALLED)
	FUZZ_RANDOM=1 FUZZ_EXAMPLES=100 $(BIN)/pytest tests/security/test_api_fuzz.py

# Seeds the large company once per database (cached in .bench/ and circle_bench_large);
# PostgreSQL must be running (BENCH_PG_SERVER, default circle:circle-ci@127.0.0.1:5432).
bench: $(BENCH_INSTALLED)
	$(BIN)/python -m tests.benchmarks.run --database sqlite --database postgresql --size large

# Every scenario module end to end on the small company (2k customers, cached in .bench/ and
# circle_bench_small; PostgreSQL as for bench), scaled down: catches a broken benchmark, judges
# no speed. Results go to test-results/bench-smoke.json; docs/benchmarks/ is left alone.
bench-smoke: $(BENCH_INSTALLED)
	$(BIN)/python -m tests.benchmarks.run --smoke --database sqlite --database postgresql

bench-reports: $(INSTALLED)
	$(BIN)/python -m tests.benchmarks.report_pages

clean:
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache staticfiles test-results *.egg-info $(VENV)
