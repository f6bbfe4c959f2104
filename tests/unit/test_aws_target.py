"""AwsTarget builds every client of a run from one session, safely from many threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from ecr_sweeper.aws import AwsTarget


@pytest.fixture(autouse=True)
def _fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_clients_made_from_many_threads_at_once_all_work() -> None:
    """boto3 sessions aren't thread-safe; the target makes its clients under a lock."""
    target = AwsTarget(region="eu-west-1", endpoint_url="http://127.0.0.1:9")
    services = ["ecs", "lambda", "events", "scheduler", "batch", "ssm", "s3", "sts"] * 4
    with ThreadPoolExecutor(8) as pool:
        clients = list(pool.map(target.client, services))
    assert [c.meta.service_model.service_name for c in clients] == services
    assert {c.meta.region_name for c in clients} == {"eu-west-1"}
    assert {c.meta.endpoint_url for c in clients} == {"http://127.0.0.1:9"}


def test_a_target_in_another_region_has_its_own_session() -> None:
    """The shared session is per target: one derived with `in_region` never reuses its parent's."""
    home = AwsTarget(region="us-east-1")
    assert home.client("ecs").meta.region_name == "us-east-1"
    away = home.in_region("ap-southeast-2")
    assert away.client("ecs").meta.region_name == "ap-southeast-2"
    assert home.client("ecs").meta.region_name == "us-east-1"
    assert away == AwsTarget(region="ap-southeast-2"), "the session takes no part in equality"
