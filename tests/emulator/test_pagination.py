"""Pagination and id limits behave like real ECR (moto ignores both)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers.emulator import Manifests

from local_ecr import LocalEcr


def fill(local_ecr: LocalEcr, manifests: Manifests, repo: str, count: int) -> list[str]:
    """`count` images, every third one untagged; returns digests in push order."""
    return [
        local_ecr.push_image(repo, manifests.image(), None if n % 3 == 0 else f"build-{n}")
        for n in range(count)
    ]


def error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_describe_images_pages_default_100_and_paginator_sees_all(
    local_ecr: LocalEcr, ecr: Any, manifests: Manifests
) -> None:
    digests = fill(local_ecr, manifests, "app", 250)
    first = ecr.describe_images(repositoryName="app")
    assert len(first["imageDetails"]) == 100
    assert "nextToken" in first
    pages = list(ecr.get_paginator("describe_images").paginate(repositoryName="app"))
    assert [len(page["imageDetails"]) for page in pages] == [100, 100, 50]
    seen = [detail["imageDigest"] for page in pages for detail in page["imageDetails"]]
    assert sorted(seen) == sorted(digests)
    assert len(set(seen)) == 250


def test_manual_max_results_and_next_token(
    local_ecr: LocalEcr, ecr: Any, manifests: Manifests
) -> None:
    digests = fill(local_ecr, manifests, "app", 25)
    seen: list[str] = []
    kwargs: dict[str, Any] = {"repositoryName": "app", "maxResults": 10}
    sizes = []
    while True:
        page = ecr.describe_images(**kwargs)
        sizes.append(len(page["imageDetails"]))
        seen += [detail["imageDigest"] for detail in page["imageDetails"]]
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]
    assert sizes == [10, 10, 5]
    assert sorted(seen) == sorted(digests)


def test_list_images_pages_over_tags_and_filters_untagged(
    local_ecr: LocalEcr, ecr: Any, manifests: Manifests
) -> None:
    fill(local_ecr, manifests, "app", 150)  # 50 untagged, 100 tagged
    pages = list(
        ecr.get_paginator("list_images").paginate(
            repositoryName="app", PaginationConfig={"PageSize": 40}
        )
    )
    assert [len(page["imageIds"]) for page in pages] == [40, 40, 40, 30]
    untagged = [
        image_id
        for page in ecr.get_paginator("list_images").paginate(
            repositoryName="app", filter={"tagStatus": "UNTAGGED"}
        )
        for image_id in page["imageIds"]
    ]
    assert len(untagged) == 50
    assert all("imageTag" not in image_id for image_id in untagged)


def test_describe_repositories_pages(local_ecr: LocalEcr, ecr: Any) -> None:
    for n in range(120):
        ecr.create_repository(repositoryName=f"repo-{n:03d}")
    first = ecr.describe_repositories()
    assert len(first["repositories"]) == 100
    names = [
        repo["repositoryName"]
        for page in ecr.get_paginator("describe_repositories").paginate(
            PaginationConfig={"PageSize": 7}
        )
        for repo in page["repositories"]
    ]
    assert sorted(names) == [f"repo-{n:03d}" for n in range(120)]


@pytest.mark.parametrize(
    ("operation", "extra"),
    [
        ("describe_images", {"repositoryName": "app"}),
        ("list_images", {"repositoryName": "app"}),
        ("describe_repositories", {}),
    ],
)
def test_max_results_above_1000_is_refused(
    local_ecr: LocalEcr, ecr: Any, manifests: Manifests, operation: str, extra: dict[str, Any]
) -> None:
    fill(local_ecr, manifests, "app", 3)
    assert getattr(ecr, operation)(maxResults=1000, **extra)  # the maximum itself is fine
    with pytest.raises(ClientError) as error:
        getattr(ecr, operation)(maxResults=1001, **extra)
    assert error_code(error) == "InvalidParameterException"
    assert "less than or equal to 1000" in error.value.response["Error"]["Message"]


def test_image_ids_with_max_results_is_refused(
    local_ecr: LocalEcr, ecr: Any, manifests: Manifests
) -> None:
    digests = fill(local_ecr, manifests, "app", 3)
    with pytest.raises(ClientError) as error:
        ecr.describe_images(
            repositoryName="app", imageIds=[{"imageDigest": digests[0]}], maxResults=5
        )
    assert error_code(error) == "InvalidParameterException"


def test_foreign_or_garbage_next_token_is_refused(
    local_ecr: LocalEcr, ecr: Any, manifests: Manifests
) -> None:
    fill(local_ecr, manifests, "app", 5)
    fill(local_ecr, manifests, "other", 5)
    token = ecr.describe_images(repositoryName="app", maxResults=2)["nextToken"]
    for bad in (token + "x!", "garbage"):
        with pytest.raises(ClientError) as error:
            ecr.describe_images(repositoryName="app", maxResults=2, nextToken=bad)
        assert error_code(error) == "InvalidParameterException"
    with pytest.raises(ClientError) as error:
        ecr.describe_images(repositoryName="other", maxResults=2, nextToken=token)
    assert error_code(error) == "InvalidParameterException"


def test_deleting_between_pages_skips_nothing(
    local_ecr: LocalEcr, ecr: Any, manifests: Manifests
) -> None:
    digests = fill(local_ecr, manifests, "app", 30)
    page = ecr.describe_images(repositoryName="app", maxResults=10)
    first = [detail["imageDigest"] for detail in page["imageDetails"]]
    ecr.batch_delete_image(repositoryName="app", imageIds=[{"imageDigest": d} for d in first])
    rest = [
        detail["imageDigest"]
        for each in ecr.get_paginator("describe_images").paginate(
            repositoryName="app",
            PaginationConfig={"StartingToken": page["nextToken"], "PageSize": 10},
        )
        for detail in each["imageDetails"]
    ]
    assert sorted(rest) == sorted(set(digests) - set(first))


@pytest.mark.parametrize("operation", ["batch_delete_image", "batch_get_image", "describe_images"])
def test_more_than_100_image_ids_is_refused(
    local_ecr: LocalEcr, ecr: Any, manifests: Manifests, operation: str
) -> None:
    digests = fill(local_ecr, manifests, "app", 101)
    ids = [{"imageDigest": digest} for digest in digests]
    with pytest.raises(ClientError) as error:
        getattr(ecr, operation)(repositoryName="app", imageIds=ids)
    assert error_code(error) == "InvalidParameterException"
    assert "less than or equal to 100" in error.value.response["Error"]["Message"]
    assert len(ecr.describe_images(repositoryName="app", maxResults=1000)["imageDetails"]) == 101
    getattr(ecr, operation)(repositoryName="app", imageIds=ids[:100])  # exactly 100 is fine
