# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# checkov pins an old boto3, so it gets its own venv (installed once, ~15 s, by make install).
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

.PHONY: install test lint checkov pytest lambda package demo clean

install: $(STAMP) $(CHECKOV_STAMP)

# Reinstall only when the project's dependency list changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: install
	$(BIN)/ruff check functions tests scripts
	$(BIN)/ruff format --check functions tests scripts
	$(BIN)/cfn-lint cfn.yaml

$(CHECKOV_STAMP):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov>=3.2,<4'
	touch $(CHECKOV_STAMP)

checkov: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov -f cfn.yaml --framework cloudformation --quiet --compact --skip-download

# One pytest worker per core (pytest-xdist; how files are dealt out: addopts in pyproject).
# A plain `pytest tests/...` runs in one process: no worker start-up for a single file.
PYTEST_WORKERS ?= auto

pytest: install
	$(BIN)/pytest -q -n $(PYTEST_WORKERS)

# The linters' ~10 s run beside pytest's start-up. Output is synced per line, so their few lines
# come out whole among pytest's progress lines and pytest's summary stays last; any failure fails
# the target, after all three have run (--keep-going: one run reports every failure).
test: install
	@$(MAKE) --no-print-directory --keep-going -j3 --output-sync=line lint checkov pytest

demo: $(STAMP)
	$(BIN)/snapcdc local run data --history last

# The Lambda artifact: functions/snapcdc as it is (SQL templates inside), arm64 wheels.
lambda: install
	$(BIN)/python scripts/build_lambda.py build/lambda

# Upload the artifact and the state machine definition; deploy build/packaged.yaml.
S3_PREFIX ?= snapcdc
package: lambda
	@test -n "$(S3_BUCKET)" || { echo "usage: make package S3_BUCKET=<artifact bucket> [S3_PREFIX=snapcdc]"; exit 2; }
	aws cloudformation package --template-file cfn.yaml --s3-bucket $(S3_BUCKET) \
		--s3-prefix $(S3_PREFIX) --output-template-file build/packaged.yaml

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) build dist .pytest_cache .ruff_cache
