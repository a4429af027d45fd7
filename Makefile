# PesaDesk: `make run` starts the demo, `make test` runs every test layer.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app wsgi
PORT   ?= 5000
export PORT

.PHONY: run test test-fast lint fmt chromium axe serve jobs translations bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Stamp files: reinstall only when pyproject.toml changes, so a second `make run` is quick.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed-run
	$(BIN)/pip install -q -e '.[test]'
	touch $@

## run: demo on http://127.0.0.1:$(PORT) with the built-in Daraja simulator and the poller
run: $(VENV)/.installed-run
	PESADESK_DEMO=1 $(FLASK) db upgrade
	PESADESK_DEMO=1 $(FLASK) demo seed
	PESADESK_DEMO=1 exec $(FLASK) demo serve --port $(PORT)

## test: lint, then unit, app (SQLite + PostgreSQL), simulator-over-HTTP and browser tests
test: $(VENV)/.installed-test chromium axe
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

## test-fast: everything but the browser layer
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m "not browser"

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# axe-core (npm) for tests/browser/test_accessibility.py, pinned; fetched into .cache/ (ignored)
# when missing or another version, so a second `make test` does not touch the network.
AXE_VERSION := 4.14.1
axe:
	@grep -qs '"version": "$(AXE_VERSION)"' .cache/axe/node_modules/axe-core/package.json || { \
	  echo "Installing axe-core $(AXE_VERSION) from npm for the accessibility tests"; \
	  npm install --no-save --no-audit --no-fund --prefix .cache/axe axe-core@$(AXE_VERSION); }

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check app tests bench

fmt: $(VENV)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format app tests bench

## bench: the speed goals, measured with a million payments on PostgreSQL (see bench/README.md)
bench: $(VENV)/.installed-test
	$(BIN)/python -m bench.counter
	$(BIN)/python -m bench.backoffice

## serve / jobs: production-style processes (set PESADESK_* first; see README)
serve: $(VENV)/.installed-run
	$(BIN)/gunicorn --workers 2 --threads 4 --bind 127.0.0.1:$(PORT) wsgi:app

jobs: $(VENV)/.installed-run
	$(FLASK) jobs run

## translations: re-extract, merge into the Swahili catalogue, compile the .mo (committed)
translations: $(VENV)/.installed-run
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext -k _l -k N_ --no-location --sort-output --omit-header -o translations/messages.pot .
	$(BIN)/pybabel update -i translations/messages.pot -d translations -l sw --no-wrap --no-fuzzy-matching --ignore-obsolete
	$(BIN)/pybabel compile -d translations -l sw

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
