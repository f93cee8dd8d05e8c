# Agentry: `make run` runs the platform, `make test` runs lint and the whole suite.
# Both create the virtualenv and install what is missing first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
APPS := config accounts agents executions memory tools approvals billing ops doors console

.PHONY: install run test test-faults lint fmt pytest bench clean-data

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# Debian's Chromium and ChromeDriver drive the approver pages in the browser tests.
BROWSER_STAMP := $(VENV)/.browser-installed
$(BROWSER_STAMP): $(STAMP)
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else \
	    echo "The browser tests need Debian's chromium and chromium-driver: sudo apt-get install chromium chromium-driver"; exit 1; \
	  fi; \
	fi
	@touch $@

run: install
	$(PY) -m config.serve

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy $(APPS)
	$(VENV)/bin/mypy --config-file clients/python/pyproject.toml clients/python/agentry_client
	DJANGO_SETTINGS_MODULE=config.settings.test $(PY) manage.py check --fail-level WARNING
	DJANGO_SETTINGS_MODULE=config.settings.test $(PY) manage.py makemigrations --check --dry-run

fmt: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The suite runs in PYTEST_WORKERS pytest-xdist processes (0: in this one), a test file at a
# time each; every worker has its own test database and Redis databases (config/settings/test.py),
# the fault-injection run its own servers. PYTEST_ARGS narrows it (a path, -k, -x ...).
PYTEST_WORKERS ?= 2
pytest: install $(BROWSER_STAMP)
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

test: lint pytest

# The fault-injection run alone (kill -9, Redis and PostgreSQL restarts; about 4 minutes, also
# part of `make test`); sizes via FAULT_RUNS, FAULT_P, FAULT_MIN, FAULT_SEED, FAULT_BUDGET_SECONDS.
test-faults: install
	$(VENV)/bin/pytest -m faults $(PYTEST_ARGS)

bench: install
	$(PY) -m bench $(BENCH_ARGS)

clean-data:
	rm -rf .data
