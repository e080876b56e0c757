# The two entry points of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-embedded test-postgres lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) manage.py migrate --no-input -v 0
	$(PY) manage.py demo

test: $(STAMP) lint test-embedded test-postgres

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy clusterkit jobs streaming ratelimit

test-embedded: $(STAMP)
	CLUSTERKIT_TEST_BACKEND=embedded $(PY) -m pytest $(PYTEST_ARGS)

test-postgres: $(STAMP)
	CLUSTERKIT_TEST_BACKEND=postgres $(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3* test-clusterkit.sqlite3*
