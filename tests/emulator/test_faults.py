"""Throttling, 5xx, dropped connections, latency and call counters, seen through boto3."""

from __future__ import annotations

import random
import time
from types import SimpleNamespace
from typing import Any

import botocore.endpoint
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError

from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory

RETRYING = Config(retries={"mode": "standard", "max_attempts": 4})


@pytest.fixture
def backoffs(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retry backoff delays, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=slept.append))
    return slept


def test_throttling_surfaces_as_throttling_exception(local_ecr: LocalEcr, ecr: Any) -> None:
    rule = local_ecr.faults.throttle("DescribeRepositories")
    with pytest.raises(ClientError) as error:
        ecr.describe_repositories()
    assert error.value.response["Error"]["Code"] == "ThrottlingException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert rule.fired == 1
    ecr.create_repository(repositoryName="other-ops-unaffected")


def test_standard_retries_recover_from_throttling(
    local_ecr: LocalEcr, backoffs: list[float]
) -> None:
    local_ecr.faults.throttle("DescribeRepositories", times=2)
    client = local_ecr.client("ecr", config=RETRYING)
    assert client.describe_repositories()["repositories"] == []
    assert local_ecr.calls["DescribeRepositories"] == 3
    assert len(backoffs) == 2


def test_throttle_on_given_calls_only(local_ecr: LocalEcr, ecr: Any) -> None:
    local_ecr.faults.throttle("DescribeRepositories", on_calls=[2, 4])
    outcomes = []
    for _ in range(5):
        try:
            ecr.describe_repositories()
            outcomes.append("ok")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])
    assert outcomes == ["ok", "ThrottlingException", "ok", "ThrottlingException", "ok"]


def test_throttle_rate_fails_about_that_share(local_ecr: LocalEcr, ecr: Any) -> None:
    local_ecr.faults.throttle("DescribeRepositories", rate=0.3)
    throttled = 0
    for _ in range(100):
        try:
            ecr.describe_repositories()
        except ClientError:
            throttled += 1
    assert 15 <= throttled <= 45


def test_server_errors(local_ecr: LocalEcr, ecr: Any, backoffs: list[float]) -> None:
    local_ecr.faults.error(500, "ListImages", times=1)
    local_ecr.faults.error(503, "DescribeImages", times=1)
    ecr.create_repository(repositoryName="app")
    with pytest.raises(ClientError) as error:
        ecr.list_images(repositoryName="app")
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert error.value.response["Error"]["Code"] == "ServerException"
    client = local_ecr.client("ecr", config=RETRYING)
    assert client.describe_images(repositoryName="app")["imageDetails"] == []
    assert local_ecr.calls["DescribeImages"] == 2
    assert backoffs


def test_dropped_connection(local_ecr: LocalEcr, ecr: Any, backoffs: list[float]) -> None:
    local_ecr.faults.drop_connection("DescribeRepositories", times=1)
    with pytest.raises(ConnectionClosedError):
        ecr.describe_repositories()
    local_ecr.faults.drop_connection("DescribeRepositories", times=1)
    client = local_ecr.client("ecr", config=RETRYING)
    assert client.describe_repositories()["repositories"] == []
    assert local_ecr.calls["DescribeRepositories"] == 3


def test_fixed_and_random_latency(local_ecr: LocalEcr, ecr: Any) -> None:
    ecr.describe_repositories()
    local_ecr.faults.latency(0.2, operation="DescribeRepositories")
    started = time.perf_counter()
    ecr.describe_repositories()
    assert time.perf_counter() - started >= 0.2
    local_ecr.faults.clear()
    local_ecr.faults.latency(0.0, jitter=0.05)
    started = time.perf_counter()
    for _ in range(5):
        ecr.describe_repositories()
    assert time.perf_counter() - started < 5 * 0.05 + 1.0
    local_ecr.faults.clear()
    started = time.perf_counter()
    ecr.describe_repositories()
    assert time.perf_counter() - started < 0.2


def test_counters_count_every_call_per_operation(local_ecr: LocalEcr, ecr: Any) -> None:
    ecr.create_repository(repositoryName="app")
    for _ in range(3):
        ecr.describe_images(repositoryName="app")
    ecr.batch_delete_image(repositoryName="app", imageIds=[{"imageTag": "gone"}])
    local_ecr.client("sts").get_caller_identity()
    assert local_ecr.calls["DescribeImages"] == 3
    assert local_ecr.calls["BatchDeleteImage"] == 1
    assert local_ecr.calls_for("ecr")["CreateRepository"] == 1
    assert local_ecr.calls_for("sts") == {"GetCallerIdentity": 1}
    local_ecr.reset_counters()
    assert sum(local_ecr.calls.values()) == 0


def test_faults_on_other_services_use_their_error_format(local_ecr: LocalEcr) -> None:
    local_ecr.faults.throttle("GetCallerIdentity", service="sts", times=1)
    sts = local_ecr.client("sts")
    with pytest.raises(ClientError) as error:
        sts.get_caller_identity()
    assert error.value.response["Error"]["Code"] == "ThrottlingException"
    assert sts.get_caller_identity()["Account"] == "123456789012"


def test_bad_fault_settings_are_refused(local_ecr: LocalEcr) -> None:
    with pytest.raises(ValueError, match="rate"):
        local_ecr.faults.throttle(rate=1.5)
    with pytest.raises(ValueError, match="5xx"):
        local_ecr.faults.error(404)
    with pytest.raises(ValueError, match="1-based"):
        local_ecr.faults.drop_connection(on_calls=[0])


def test_a_lost_response_carries_the_call_out_then_answers_an_error(
    local_ecr: LocalEcr, ecr: Any
) -> None:
    built = ManifestFactory(random.Random(1)).image(compact=True)
    digest = local_ecr.push_image("app", built.body, "v1", media_type=built.media_type)
    rule = local_ecr.faults.lose_response("BatchDeleteImage")
    with pytest.raises(ClientError) as error:
        ecr.batch_delete_image(repositoryName="app", imageIds=[{"imageDigest": digest}])
    assert error.value.response["Error"]["Code"] == "ServiceUnavailableException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert rule.fired == 1
    assert ecr.list_images(repositoryName="app")["imageIds"] == [], "the delete took effect"


@pytest.mark.parametrize("whole_image", [False, True])
def test_both_readings_of_a_digest_and_tag_delete(
    local_ecr: LocalEcr, ecr: Any, whole_image: bool
) -> None:
    """ECR's reference is silent on what {imageDigest, imageTag} deletes; serve either."""
    local_ecr.digest_and_tag_deletes_image = whole_image
    built = ManifestFactory(random.Random(2)).image(compact=True)
    digest = local_ecr.push_image("app", built.body, "v1", media_type=built.media_type)
    local_ecr.push_image("app", built.body, "stable", media_type=built.media_type)
    response = ecr.batch_delete_image(
        repositoryName="app", imageIds=[{"imageDigest": digest, "imageTag": "v1"}]
    )
    assert response["failures"] == []
    left = ecr.list_images(repositoryName="app")["imageIds"]
    if whole_image:
        assert left == []
        second = ecr.batch_delete_image(
            repositoryName="app", imageIds=[{"imageDigest": digest, "imageTag": "stable"}]
        )
        assert second["failures"][0]["failureCode"] == "ImageNotFound"
    else:
        assert left == [{"imageDigest": digest, "imageTag": "stable"}]


def test_repository_tags_are_served_and_a_missing_repository_is_refused(
    local_ecr: LocalEcr, ecr: Any
) -> None:
    arn = ecr.create_repository(
        repositoryName="app", tags=[{"Key": "ecr-sweeper:skip", "Value": "true"}]
    )["repository"]["repositoryArn"]
    assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"Key": "ecr-sweeper:skip", "Value": "true"}
    ]
    with pytest.raises(ClientError) as error:
        ecr.list_tags_for_resource(resourceArn=arn.replace("/app", "/gone"))
    assert error.value.response["Error"]["Code"] == "RepositoryNotFoundException"
