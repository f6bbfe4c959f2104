"""AwsTarget builds every client of a run from one session, safely from many threads."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import botocore.endpoint
import pytest
from botocore.exceptions import ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError
from botocore.serialize import JSONSerializer

from ecr_sweeper.aws.clients import CONNECT_TIMEOUT_ATTEMPTS, AwsTarget, PlainJsonSerializer
from ecr_sweeper.aws.ecr import CONNECT_TIMEOUT_SECONDS, EcrRegistry


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


ID_LISTS = {
    "BatchDeleteImage": {
        "repositoryName": "app",
        "imageIds": [
            {"imageDigest": f"sha256:{n:064x}", "imageTag": f"v{n}"}
            if n % 2
            else {"imageDigest": f"sha256:{n:064x}"}
            for n in range(100)
        ],
    },
    "BatchGetImage": {
        "repositoryName": "app",
        "imageIds": [{"imageDigest": "sha256:" + "a" * 64}],
        "acceptedMediaTypes": ["application/vnd.oci.image.index.v1+json"],
    },
    "DescribeImages": {
        "repositoryName": "app",
        "imageIds": [{"imageTag": "latest"}],
        "filter": {"tagStatus": "ANY", "imageStatus": "ANY"},
        "maxResults": 1000,
    },
    "ListTagsForResource": {"resourceArn": "arn:aws:ecr:us-east-1:123456789012:repository/app"},
}


@pytest.mark.parametrize("operation", sorted(ID_LISTS))
def test_the_registry_client_writes_the_body_botocore_writes(operation: str) -> None:
    """Lists of image ids are copied as they are; the request is botocore's own, byte for byte."""
    client = AwsTarget(region="us-east-1", endpoint_url="http://127.0.0.1:9").registry_client()
    assert isinstance(client._serializer, PlainJsonSerializer)
    model = client.meta.service_model.operation_model(operation)
    ours = client._serializer.serialize_to_request(ID_LISTS[operation], model)
    botocores = JSONSerializer().serialize_to_request(ID_LISTS[operation], model)
    assert ours == botocores
    assert json.loads(ours["body"]) == ID_LISTS[operation]
    if "imageIds" in ID_LISTS[operation]:  # copied, not walked
        assert client._serializer._string_members["ImageIdentifier"] == {"imageDigest", "imageTag"}


def test_an_id_with_a_member_ecr_does_not_know_still_fails_as_botocore_fails() -> None:
    """An unknown key falls back to botocore's walk, which refuses it."""
    client = AwsTarget(region="us-east-1", endpoint_url="http://127.0.0.1:9").registry_client()
    model = client.meta.service_model.operation_model("BatchDeleteImage")
    params = {"repositoryName": "app", "imageIds": [{"imageDigest": "sha256:1", "digest": "x"}]}
    with pytest.raises(KeyError, match="digest"):
        client._serializer.serialize_to_request(params, model)


def test_s3_calls_send_the_expected_bucket_owner() -> None:
    """A bucket of the same name in another account is refused by S3 itself (403)."""
    from botocore.stub import Stubber

    client = AwsTarget(region="us-east-1", bucket_owner="123456789012").client("s3")
    with Stubber(client) as stub:
        expected = {"Bucket": "runs", "Key": "k", "ExpectedBucketOwner": "123456789012"}
        stub.add_response("get_object", {}, expected)
        stub.add_response(
            "list_objects_v2",
            {},
            {"Bucket": "runs", "Prefix": "p/", "ExpectedBucketOwner": "123456789012"},
        )
        client.get_object(Bucket="runs", Key="k")
        client.list_objects_v2(Bucket="runs", Prefix="p/")
        stub.assert_no_pending_responses()
    plain = AwsTarget(region="us-east-1").client("s3")
    with Stubber(plain) as stub:
        stub.add_response("get_object", {}, {"Bucket": "runs", "Key": "k"})
        plain.get_object(Bucket="runs", Key="k")


def _attempts(client: Any, error: Exception | None = None) -> list[str]:
    """Count each try of a call; `error` is raised in place of sending (a fault injected)."""
    tries: list[str] = []

    def send(request: Any, **_: Any) -> None:
        tries.append(request.url)
        if error is not None:
            raise error

    client.meta.events.register_first("before-send", send)
    return tries


def _list(client: Any, kind: str) -> None:
    if kind == "registry":
        client.describe_repositories()
    else:
        client.list_clusters()


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("kind", ["ecs", "registry"])
def test_a_refused_connection_fails_at_once_without_retries(kind: str) -> None:
    """Connection refused (or a name that doesn't resolve) can't get better by retrying: the
    call fails on its first try, in well under a second, not after ten retries (43 s)."""
    target = AwsTarget(region="us-east-1", endpoint_url=f"http://127.0.0.1:{_closed_port()}")
    client = target.registry_client() if kind == "registry" else target.client("ecs")
    tries = _attempts(client)
    started = time.monotonic()
    with pytest.raises(EndpointConnectionError):
        _list(client, kind)
    assert len(tries) == 1
    assert time.monotonic() - started < 2


def test_a_connect_timeout_is_tried_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore.endpoint.time, "sleep", lambda seconds: None)
    client = AwsTarget(region="us-east-1", endpoint_url="http://127.0.0.1:9").client("ssm")
    tries = _attempts(client, ConnectTimeoutError(endpoint_url="http://127.0.0.1:9"))
    with pytest.raises(ConnectTimeoutError):
        client.get_parameter(Name="cursor")
    assert len(tries) == CONNECT_TIMEOUT_ATTEMPTS == 2
    assert client.meta.config.connect_timeout == CONNECT_TIMEOUT_SECONDS


@pytest.mark.parametrize("kind", ["ecs", "registry"])
def test_dropped_connections_keep_every_retry(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a retry can cure (a dropped connection here; throttling and 5xx in
    tests/integration/test_sweep_resilience.py) is still retried ten times."""
    monkeypatch.setattr(botocore.endpoint.time, "sleep", lambda seconds: None)
    target = AwsTarget(region="us-east-1", endpoint_url="http://127.0.0.1:9")
    client = target.registry_client() if kind == "registry" else target.client("ecs")
    if kind == "registry":
        EcrRegistry(client)  # installs the sweep's own retry handler
    tries = _attempts(client, ConnectionClosedError(endpoint_url="http://127.0.0.1:9"))
    with pytest.raises(ConnectionClosedError):
        _list(client, kind)
    assert len(tries) == 11
