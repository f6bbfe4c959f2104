# ecr-sweeper: every command installs what it needs first (`make install` is idempotent).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
# The AWS SDK the function ships with (a Lambda layer): pure-Python wheels for the runtime's
# Python and architecture, so no Docker is needed and `cdk synth` stays offline.
SDK_LAYER := build/sdk-layer
LAMBDA_PYTHON := 3.12
LAMBDA_PLATFORM := manylinux2014_aarch64

# Keep the CDK CLI and jsii offline and quiet (see README, "Deploy").
export CDK_DISABLE_CLI_TELEMETRY := true
export CDK_DISABLE_VERSION_CHECK := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
# Tests, demo, bench and synth never look for an instance role: nothing leaves 127.0.0.1.
# (Not for deploy, which may run on an instance with a role.)
OFFLINE := AWS_EC2_METADATA_DISABLED=true

.PHONY: install demo test lint typecheck synth deploy bench bench-record clean lock checkov

install: $(VENV)/.installed node_modules/.installed $(SDK_LAYER).installed

# Every version comes from constraints.txt (the whole dependency tree, pinned).
$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt \
		-r requirements-dev.txt -e .
	@touch $@

# Each wheel must have the SHA-256 requirements-lambda.txt locks.
$(SDK_LAYER).installed: requirements-lambda.txt $(VENV)/.installed
	rm -rf $(SDK_LAYER)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-compile \
		--require-hashes --only-binary=:all: --implementation cp \
		--python-version $(LAMBDA_PYTHON) --platform $(LAMBDA_PLATFORM) \
		--target $(SDK_LAYER)/python -r requirements-lambda.txt
	rm -rf $(SDK_LAYER)/python/bin
	@touch $@

# After changing a requirement (needs the package registry): constraints.txt from a fresh venv,
# and the SHA-256 of each SDK layer wheel, to put in requirements-lambda.txt.
LOCK := build/lock
lock:
	rm -rf $(LOCK) && $(PYTHON) -m venv $(LOCK)/venv
	$(LOCK)/venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -e .
	sed -n '/^#/p' constraints.txt > $(LOCK)/constraints.txt
	$(LOCK)/venv/bin/pip freeze --exclude-editable | grep -v '^#' >> $(LOCK)/constraints.txt
	mv $(LOCK)/constraints.txt constraints.txt
	sed 's/ *\\$$//; /^ *--hash/d' requirements-lambda.txt > $(LOCK)/unhashed.txt
	$(LOCK)/venv/bin/pip download --quiet --disable-pip-version-check --no-deps \
		--only-binary=:all: --implementation cp --python-version $(LAMBDA_PYTHON) \
		--platform $(LAMBDA_PLATFORM) -d $(LOCK)/wheels -r $(LOCK)/unhashed.txt
	$(LOCK)/venv/bin/pip hash $(LOCK)/wheels/*

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

demo: install
	$(OFFLINE) $(VENV)/bin/ecr-sweeper demo

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: install
	$(PY) -m mypy

test: install lint typecheck
	$(OFFLINE) $(PY) -m pytest

# Synth never needs credentials; fake ones would make the CLI call STS, so drop them.
synth: install
	env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
		$(OFFLINE) $(CDK) synth --quiet

deploy: install
	$(CDK) deploy

# checkov over every template variant (infra/variants.py); not part of `make test` (see README,
# "Security model"): its own venv, with the version last reviewed; --skip-download keeps it
# offline (by default it fetches guidelines from its vendor).
CHECKOV := build/checkov
checkov: install
	test -x $(CHECKOV)/bin/checkov || ($(PYTHON) -m venv $(CHECKOV) && \
		$(CHECKOV)/bin/pip install --quiet --disable-pip-version-check checkov==3.3.30)
	rm -rf build/variants && $(OFFLINE) $(PY) -m infra.variants build/variants
	$(CHECKOV)/bin/checkov -d build/variants --framework cloudformation --compact --quiet \
		--skip-download

# Figures go to the ignored bench/results/last-run.json; bench-record rewrites the tracked
# bench/results/latest.json (the README's figures) on purpose.
bench: install
	$(OFFLINE) $(PY) -m bench

bench-record: install
	$(OFFLINE) $(PY) -m bench --record

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache build
