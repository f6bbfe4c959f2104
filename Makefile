# ecr-sweeper: every command installs what it needs first (`make install` is idempotent).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk

# Keep the CDK CLI and jsii offline and quiet (see README, "Deploy").
export CDK_DISABLE_CLI_TELEMETRY := true
export CDK_DISABLE_VERSION_CHECK := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
# Tests, demo, bench and synth never look for an instance role: nothing leaves 127.0.0.1.
# (Not for deploy, which may run on an instance with a role.)
OFFLINE := AWS_EC2_METADATA_DISABLED=true

.PHONY: install demo test lint typecheck synth deploy bench clean

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -e .
	@touch $@

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

bench: install
	$(OFFLINE) $(PY) -m bench

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache
