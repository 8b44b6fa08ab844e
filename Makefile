# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# Every environment installs exactly what a lock file says (uv.lock, tools/checkov/uv.lock,
# tools/uv-requirements.txt); `make lock` re-locks them (docs/development.md, "Installing, locking
# and upgrading").
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# uv, the installer, pinned by hash in a venv of its own.
UV_VENV := .venv-uv
UV      := $(UV_VENV)/bin/uv
# checkov pins an older boto3, so it gets its own venv, locked by tools/checkov/uv.lock.
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# Use the machine's Python (never download one); installs come from the lock, not the ranges.
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

.PHONY: install test test-latest lint checkov pytest lambda package deploy demo lock clean

install: $(STAMP) $(CHECKOV_STAMP)

$(UV): tools/uv-requirements.txt
	test -x $(UV_VENV)/bin/python || $(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet --require-hashes --no-deps -r tools/uv-requirements.txt
	touch $(UV)

# Reinstall only when the lock changes. --locked: fail if uv.lock no longer matches pyproject.toml.
# --compile-bytecode: byte code written once here, where PYTHONDONTWRITEBYTECODE would otherwise
# have every test process compile moto and botocore again (~3 CPU-s each).
$(STAMP): uv.lock pyproject.toml $(UV)
	$(UV) sync --quiet --locked --compile-bytecode --extra dev
	touch $(STAMP)

# lint-imports: the layers of docs/architecture.md ([tool.importlinter] in pyproject.toml).
lint: install
	$(BIN)/ruff check functions tests scripts
	$(BIN)/ruff format --check functions tests scripts
	$(BIN)/lint-imports --no-cache
	$(BIN)/cfn-lint cfn.yaml

$(CHECKOV_STAMP): tools/checkov/uv.lock tools/checkov/pyproject.toml $(UV)
	UV_PROJECT_ENVIRONMENT=$(abspath $(CHECKOV_VENV)) $(UV) sync --quiet --locked --project tools/checkov
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

# The Lambda artifact: functions/snapcdc as it is (SQL templates inside), arm64 wheels of the
# locked runtime dependencies. Needs only uv, not the dev install.
lambda: $(UV)
	UV=$(UV) $(PYTHON) scripts/build_lambda.py build/lambda

# Upload the artifact and the state machine definition (build/packaged.yaml), then deploy it.
# Needs uv (make lambda installs it) and the AWS CLI, nothing else: no dev install, no checkov.
# The template is over CloudFormation's 51,200-byte TemplateBody limit, so deploy uploads it to
# S3_BUCKET too (--s3-bucket). Against snapcdc local serve: set AWS_ENDPOINT_URL (package and
# deploy ignore --endpoint-url for their S3 uploads). See docs/deploy.md.
AWS ?= aws
S3_PREFIX ?= snapcdc
STACK ?= snapcdc
PARAMETERS ?=
package: lambda
	@test -n "$(S3_BUCKET)" || { echo "usage: make package S3_BUCKET=<artifact bucket> [S3_PREFIX=snapcdc]"; exit 2; }
	@command -v $(AWS) > /dev/null || { echo "the AWS CLI ($(AWS)) is not installed: pip install awscli, or AWS=/path/to/aws"; exit 2; }
	$(AWS) cloudformation package --template-file cfn.yaml --s3-bucket $(S3_BUCKET) \
		--s3-prefix $(S3_PREFIX) --output-template-file build/packaged.yaml

deploy: package
	$(AWS) cloudformation deploy --template-file build/packaged.yaml --stack-name $(STACK) \
		--s3-bucket $(S3_BUCKET) --s3-prefix $(S3_PREFIX) --capabilities CAPABILITY_IAM \
		--no-fail-on-empty-changeset $(if $(PARAMETERS),--parameter-overrides $(PARAMETERS))

# Re-lock every environment from the ranges in pyproject.toml (newest allowed releases), then
# prove it: make test && make demo. UPGRADE="--upgrade-package NAME" re-locks one package.
UPGRADE ?= --upgrade
lock: $(UV)
	$(UV) lock $(UPGRADE)
	$(UV) lock $(UPGRADE) --project tools/checkov
	@echo "uv.lock and tools/checkov/uv.lock re-locked; run make test && make demo before committing"

# The newest releases the ranges allow, in a throwaway venv, without touching the lock: drift
# is seen here before a user sees it. Prints the versions it ran with.
LATEST_VENV ?= build/venv-latest
test-latest: $(UV)
	rm -rf $(LATEST_VENV)
	$(UV) venv --quiet $(LATEST_VENV)
	VIRTUAL_ENV=$(abspath $(LATEST_VENV)) $(UV) pip install --quiet --upgrade -e '.[dev]'
	@$(LATEST_VENV)/bin/python -c "import importlib.metadata as m; print('newest releases:', ', '.join(f'{p} {m.version(p)}' for p in ('boto3', 'botocore', 'moto', 'duckdb', 'sqlglot', 'awscli', 'pyathena')))"
	$(LATEST_VENV)/bin/pytest -q -n $(PYTEST_WORKERS) -p no:cacheprovider

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(UV_VENV) build dist .pytest_cache .ruff_cache
