# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test lint demo clean

install: $(STAMP)

# Reinstall only when the project's dependency list changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: install
	$(BIN)/ruff check functions tests scripts
	$(BIN)/ruff format --check functions tests scripts

test: lint
	$(BIN)/pytest -q

demo: install
	$(BIN)/snapcdc diff --demo data

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache
