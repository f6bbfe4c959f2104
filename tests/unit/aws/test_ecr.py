"""The ECR module against botocore's Stubber: real ECR's paging and 100-id limit, exactly."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import ANY, Stubber

from ecr_sweeper.aws.ecr import PAGE_SIZE, EcrRegistry
from ecr_sweeper.ports import BATCH_LIMIT, RegistryError, Repository, RepositoryGone

PUSHED = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def client() -> Any:
    return boto3.client(
        "ecr",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )


@pytest.fixture
def stub(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def detail(number: int) -> dict[str, Any]:
    return {
        "registryId": "123456789012",
        "repositoryName": "app",
        "imageDigest": f"sha256:{number:064x}",
        "imageTags": [f"v{number}"],
        "imagePushedAt": PUSHED,
        "imageSizeInBytes": 10,
    }


def test_repositories_follow_next_token_through_every_page(client: Any, stub: Stubber) -> None:
    pages = [["app-a", "app-b"], ["app-c"], ["app-d"]]
    for index, names in enumerate(pages):
        params: dict[str, Any] = {"maxResults": PAGE_SIZE}
        if index:
            params["nextToken"] = f"token-{index}"
        response: dict[str, Any] = {
            "repositories": [
                {"repositoryName": n, "repositoryArn": f"arn:aws:ecr:us-east-1:1:repository/{n}"}
                for n in names
            ]
        }
        if index < len(pages) - 1:
            response["nextToken"] = f"token-{index + 1}"
        stub.add_response("describe_repositories", response, params)
    assert [r.name for r in EcrRegistry(client).repositories()] == [
        "app-a",
        "app-b",
        "app-c",
        "app-d",
    ]


def test_images_of_every_status_follow_next_token_through_every_page(
    client: Any, stub: Stubber
) -> None:
    stub.add_response(
        "describe_images",
        {"imageDetails": [detail(1), detail(2)], "nextToken": "t1"},
        {"repositoryName": "app", "maxResults": PAGE_SIZE, "filter": {"imageStatus": "ANY"}},
    )
    stub.add_response(
        "describe_images",
        {"imageDetails": [detail(3)]},
        {
            "repositoryName": "app",
            "maxResults": PAGE_SIZE,
            "nextToken": "t1",
            "filter": {"imageStatus": "ANY"},
        },
    )
    images = EcrRegistry(client).images("app")
    assert [image.tags for image in images] == [("v1",), ("v2",), ("v3",)]
    assert images[0].pushed_at == PUSHED and images[0].size_bytes == 10


def test_a_delete_batch_is_one_call_and_every_failure_is_kept(client: Any, stub: Stubber) -> None:
    ids = [{"imageDigest": f"sha256:{n:064x}"} for n in range(BATCH_LIMIT)]
    failing = ids[20]
    stub.add_response(
        "batch_delete_image",
        {
            "imageIds": [i for i in ids if i is not failing],
            "failures": [
                {"imageId": failing, "failureCode": "ImageNotFound", "failureReason": "gone"}
            ],
        },
        {"repositoryName": "app", "imageIds": ids},
    )
    outcome = EcrRegistry(client).delete_batch("app", ids)
    assert [(f.image_id, f.code) for f in outcome.failures] == [(failing, "ImageNotFound")]


def test_a_delete_batch_over_ecr_s_limit_is_refused_before_any_call(client: Any) -> None:
    ids = [{"imageDigest": f"sha256:{n:064x}"} for n in range(BATCH_LIMIT + 1)]
    with pytest.raises(ValueError, match="at most 100"):
        EcrRegistry(client).delete_batch("app", ids)


def test_a_batch_that_errors_counts_every_id_as_failed(client: Any, stub: Stubber) -> None:
    stub.add_client_error(
        "batch_delete_image", service_error_code="ThrottlingException", http_status_code=400
    )
    ids = [{"imageTag": "v1"}, {"imageTag": "v2"}]
    outcome = EcrRegistry(client).delete_batch("app", ids)
    assert [(f.image_id, f.code) for f in outcome.failures] == [
        ({"imageTag": "v1"}, "ThrottlingException"),
        ({"imageTag": "v2"}, "ThrottlingException"),
    ]


def test_other_errors_leave_the_adapter_as_registry_errors_with_their_code(
    client: Any, stub: Stubber
) -> None:
    stub.add_client_error("describe_images", service_error_code="AccessDeniedException")
    with pytest.raises(RegistryError) as raised:
        EcrRegistry(client).images("app")
    assert raised.value.code == "AccessDeniedException"


def test_a_repository_deleted_mid_run_is_reported_as_gone(client: Any, stub: Stubber) -> None:
    stub.add_client_error("describe_images", service_error_code="RepositoryNotFoundException")
    stub.add_client_error(
        "list_tags_for_resource", service_error_code="RepositoryNotFoundException"
    )
    stub.add_client_error("batch_delete_image", service_error_code="RepositoryNotFoundException")
    registry = EcrRegistry(client)
    with pytest.raises(RepositoryGone):
        registry.images("app")
    with pytest.raises(RepositoryGone):
        registry.repository_tags(Repository("app", "arn:aws:ecr:us-east-1:1:repository/app"))
    with pytest.raises(RepositoryGone):
        registry.delete_batch("app", [{"imageTag": "v1"}])


def test_resource_tags_are_read_as_a_mapping(client: Any, stub: Stubber) -> None:
    stub.add_response(
        "list_tags_for_resource",
        {"tags": [{"Key": "ecr-sweeper:skip", "Value": "true"}]},
        {"resourceArn": ANY},
    )
    tags = EcrRegistry(client).repository_tags(
        Repository("app", "arn:aws:ecr:us-east-1:1:repository/app")
    )
    assert tags == {"ecr-sweeper:skip": "true"}
