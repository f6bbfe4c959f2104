"""Fixtures for the emulator tests; `local_ecr` comes from local_ecr.pytest_plugin (registered
in tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.config import Config
from helpers.emulator import Manifests

from local_ecr import LocalEcr

NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture
def manifests() -> Manifests:
    return Manifests()


@pytest.fixture
def ecr(local_ecr: LocalEcr) -> Any:
    """A plain boto3 ECR client on the emulator, as the sweeper builds one."""
    return local_ecr.client("ecr", config=NO_RETRIES)
