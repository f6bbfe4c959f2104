"""pytest fixtures: one emulator per test session, reset before every test.

Enable with `pytest_plugins = ["local_ecr.pytest_plugin"]` in a conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_ecr.server import FAKE_CREDENTIALS, LocalEcr


@pytest.fixture(scope="session")
def local_ecr_server() -> Iterator[LocalEcr]:
    """The shared emulator (starting one per test would be slow). Prefer `local_ecr`."""
    with LocalEcr(port=0, region="us-east-1") as server:
        yield server


@pytest.fixture
def local_ecr(local_ecr_server: LocalEcr, monkeypatch: pytest.MonkeyPatch) -> LocalEcr:
    """A clean emulator: no repositories, no faults, zero counters, real-time clock, and fake
    AWS credentials in the environment so nothing in the test can reach real AWS."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", local_ecr_server.region)
    monkeypatch.setenv("AWS_REGION", local_ecr_server.region)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    local_ecr_server.reset()
    local_ecr_server.faults.clear()
    local_ecr_server.reset_counters()
    local_ecr_server.clock.resume()
    local_ecr_server.digest_and_tag_deletes_image = False
    return local_ecr_server
