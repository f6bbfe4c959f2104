"""Integration tests run the engine against the local ECR (local_ecr.pytest_plugin)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_retry_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's backoff really sleeps; throttling tests would take minutes."""
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda seconds: None)
    monkeypatch.setattr("botocore.retries.standard.time.sleep", lambda seconds: None, raising=False)
