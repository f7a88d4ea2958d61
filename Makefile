# Two commands on a fresh machine: `make farm` grows the smoke farm, `make test` lints (ruff)
# and runs the tests.
# Each creates the virtual environment (.venv) on first use and reinstalls when
# requirements.txt changes. Pass extra flags with ARGS="--data-dir ... --only tabular-a".
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-requirements
ARGS ?=
PRESET ?= smoke

.PHONY: setup farm test dry-run clean

setup: $(STAMP)

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --progress-bar off -r requirements.txt
	cp requirements.txt $(STAMP)

farm: $(STAMP)
	$(PY) run_farm.py --preset $(PRESET) $(ARGS)

dry-run: $(STAMP)
	$(PY) run_farm.py --preset $(PRESET) --dry-run $(ARGS)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest tests $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
