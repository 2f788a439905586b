# Convect: `make run` serves the demo app; `make test` runs lint, types and the suite.
# Both set up everything they need (venv, Python and npm deps, embedded PostgreSQL/Redis).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
JS_STAMP := tests/js/node_modules/.installed-stamp
# The dashboard's one dependency: the official client's browser bundle, served by Convect.
DASH_VENDOR := app/dashboard/static/vendor/convex.js

.PHONY: setup run test lint types pytest screenshots bench reliability clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

$(JS_STAMP): tests/js/package.json
	cd tests/js && npm install --no-audit --no-fund --loglevel=error
	touch $(JS_STAMP)

$(DASH_VENDOR): $(JS_STAMP)
	mkdir -p $(dir $@)
	cp tests/js/node_modules/convex/dist/browser.bundle.js $@

setup: $(STAMP) $(JS_STAMP) $(DASH_VENDOR)

run: setup
	$(BIN)/convect dev

lint: $(STAMP)
	$(BIN)/ruff check app tests functions bench

types: $(STAMP)
	$(BIN)/mypy app

pytest: setup
	$(BIN)/pytest

test: setup lint types pytest

# The README's dashboard screenshots (docs/dashboard/*.png), taken by the browser test.
screenshots: setup
	CONVECT_SCREENSHOTS=1 $(BIN)/pytest -q tests/dashboard/test_browser.py

# Each part prints its table and keeps a copy in bench/results/ (git-ignored).
bench: setup
	$(BIN)/python -m bench.run
	mkdir -p bench/results
	$(BIN)/python -m bench.sync_bench | tee bench/results/sync.md
	$(BIN)/python -m bench.scheduler_bench | tee bench/results/scheduler.md
	$(BIN)/python -m bench.storage_bench | tee bench/results/storage.md
	$(BIN)/python -m bench.search_bench | tee bench/results/search.md
	$(BIN)/python -m bench.hostile_bench | tee bench/results/hostile.md

# The long load, fault and fuzz runs (docs/reliability.md); -s prints each run's figures.
reliability: setup
	$(BIN)/pytest tests/reliability tests/storage/test_s3.py -m reliability -s

clean:
	rm -rf $(VENV) .convect tests/js/node_modules .pytest_cache .mypy_cache .ruff_cache
