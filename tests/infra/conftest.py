"""Session fixtures: the app synthesized once with cdk.json's settings and once with custom ones.

Synthesis costs about 2 s the first time in a process and much less afterwards, so every template
test shares these two.
"""

from __future__ import annotations

import os
from pathlib import Path

# `cdk.App()` merges this variable into its context; a stray one must not leak into the tests.
# Dropped before aws_cdk is imported: the jsii kernel copies the environment when it starts.
os.environ.pop("CDK_CONTEXT_JSON", None)

import pytest
from helpers.infra import CUSTOM_SETTINGS, Synthesized, synthesize


@pytest.fixture(scope="session")
def default_app(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The app with exactly cdk.json's context (no alarm email)."""
    return synthesize({}, tmp_path_factory.mktemp("cdk-default"))


@pytest.fixture(scope="session")
def custom_app(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The app with a non-default value for every setting the stack reads."""
    return synthesize(CUSTOM_SETTINGS, tmp_path_factory.mktemp("cdk-custom"))


@pytest.fixture(scope="session")
def project_root() -> Path:
    return Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def fan_out_app(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The app with the Step Functions fan-out (fanOut=true) and non-default fan-out sizes."""
    return synthesize(
        {"fanOut": "true", "fanOutBatchSize": "25", "fanOutConcurrency": 7},
        tmp_path_factory.mktemp("cdk-fan-out"),
    )
