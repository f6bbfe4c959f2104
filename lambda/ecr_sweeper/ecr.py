"""The one module that talks to Amazon ECR.

Every list call is paginated with botocore's paginators, every batch is at most 100 ids (ECR's
limit), and throttling is retried by botocore's adaptive retry mode. Errors come back as values
where one repository's trouble must not stop the run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ecr_sweeper.model import INDEX_MEDIA_TYPES, Image, image_from_detail, index_children

BATCH_LIMIT = 100
"""ECR rejects BatchDeleteImage, BatchGetImage and DescribeImages(imageIds) with more ids."""

PAGE_SIZE = 1000
"""The largest page ECR serves; fewer pages means fewer throttled calls."""

RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 10},
    user_agent_extra="ecr-sweeper",
)
"""Adaptive mode rate-limits the client itself once ECR starts throttling."""


class RepositoryGone(Exception):
    """The repository was deleted while the run was looking at it."""


@dataclass(frozen=True)
class Repository:
    name: str
    arn: str

    @property
    def registry_id(self) -> str:
        """The account id, from arn:aws:ecr:REGION:ACCOUNT:repository/NAME."""
        return self.arn.split(":")[4]

    @property
    def region(self) -> str:
        return self.arn.split(":")[3]


@dataclass
class IndexManifests:
    """The children each index lists, or why some index could not be read."""

    children: dict[str, tuple[str, ...]] = field(default_factory=dict)
    problem: str | None = None


@dataclass(frozen=True)
class DeleteFailure:
    """One entry of BatchDeleteImage's `failures`, or a whole batch that errored."""

    image_id: dict[str, str]
    code: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"imageId": self.image_id, "failureCode": self.code, "failureReason": self.reason}


@dataclass
class DeleteOutcome:
    """Which requested image ids were deleted and which failed."""

    deleted: list[dict[str, str]] = field(default_factory=list)
    failures: list[DeleteFailure] = field(default_factory=list)
    calls: int = 0


def error_code(error: Exception) -> str:
    """The AWS error code of a botocore error, or the exception's class name."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "Unknown"))
    return type(error).__name__


class EcrRegistry:
    """The registry of one account and region, seen through a boto3 ECR client."""

    def __init__(self, client: Any, *, page_size: int = PAGE_SIZE) -> None:
        self._client = client
        self._page_size = page_size

    def repositories(self) -> Iterator[Repository]:
        paginator = self._client.get_paginator("describe_repositories")
        for page in paginator.paginate(PaginationConfig={"PageSize": self._page_size}):
            for repository in page.get("repositories", []):
                yield Repository(repository["repositoryName"], repository["repositoryArn"])

    def repository_tags(self, repository: Repository) -> dict[str, str]:
        try:
            response = self._client.list_tags_for_resource(resourceArn=repository.arn)
        except ClientError as error:
            if error_code(error) == "RepositoryNotFoundException":
                raise RepositoryGone(repository.name) from error
            raise
        return {tag["Key"]: tag["Value"] for tag in response.get("tags", [])}

    def images(self, repository: str) -> list[Image]:
        """Every image of the repository (DescribeImages, all pages)."""
        paginator = self._client.get_paginator("describe_images")
        images: list[Image] = []
        try:
            for page in paginator.paginate(
                repositoryName=repository, PaginationConfig={"PageSize": self._page_size}
            ):
                images.extend(image_from_detail(detail) for detail in page.get("imageDetails", []))
        except ClientError as error:
            if error_code(error) == "RepositoryNotFoundException":
                raise RepositoryGone(repository) from error
            raise
        return images

    def index_manifests(self, repository: str, digests: Sequence[str]) -> IndexManifests:
        """Read index manifests with BatchGetImage (100 a call), asking only for index types.

        Any failure is returned as `problem`: the caller then deletes nothing in the repository.
        """
        result = IndexManifests()
        for start in range(0, len(digests), BATCH_LIMIT):
            batch = digests[start : start + BATCH_LIMIT]
            try:
                response = self._client.batch_get_image(
                    repositoryName=repository,
                    imageIds=[{"imageDigest": digest} for digest in batch],
                    acceptedMediaTypes=sorted(INDEX_MEDIA_TYPES),
                )
            except ClientError as error:
                if error_code(error) == "RepositoryNotFoundException":
                    raise RepositoryGone(repository) from error
                result.problem = f"BatchGetImage failed: {error_code(error)}: {error}"
                return result
            except BotoCoreError as error:
                result.problem = f"BatchGetImage failed: {error}"
                return result
            for failure in response.get("failures", []):
                digest = failure.get("imageId", {}).get("imageDigest", "?")
                result.problem = (
                    f"index {digest} could not be fetched: {failure.get('failureCode')}: "
                    f"{failure.get('failureReason', '')}"
                )
                return result
            for fetched in response.get("images", []):
                digest = fetched.get("imageId", {}).get("imageDigest", "?")
                try:
                    result.children[digest] = index_children(fetched.get("imageManifest", ""))
                except ValueError as error:
                    result.problem = f"index {digest} could not be parsed: {error}"
                    return result
            missing = sorted(set(batch) - set(result.children))
            if missing:
                result.problem = f"index {missing[0]} was not returned by BatchGetImage"
                return result
        return result

    def current_tags(self, repository: str) -> dict[str, frozenset[str]]:
        """Every image's digest and its tags as ECR holds them now (ListImages, all pages).

        Used right before deleting and after each delete: one call per 1000 images, and
        unlike DescribeImages by id it doesn't fail when an image is already gone.
        """
        tags: dict[str, set[str]] = {}
        paginator = self._client.get_paginator("list_images")
        try:
            for page in paginator.paginate(
                repositoryName=repository, PaginationConfig={"PageSize": self._page_size}
            ):
                for image_id in page.get("imageIds", []):
                    found = tags.setdefault(image_id["imageDigest"], set())
                    if image_id.get("imageTag"):
                        found.add(image_id["imageTag"])
        except ClientError as error:
            if error_code(error) == "RepositoryNotFoundException":
                raise RepositoryGone(repository) from error
            raise
        return {digest: frozenset(found) for digest, found in tags.items()}

    def delete(self, repository: str, image_ids: Sequence[dict[str, str]]) -> DeleteOutcome:
        """BatchDeleteImage in batches of 100; every failure is returned, none is dropped.

        An id that is not reported as failed was deleted. A batch whose call fails after
        botocore's retries counts as failed for each of its ids.
        """
        outcome = DeleteOutcome()
        for start in range(0, len(image_ids), BATCH_LIMIT):
            batch = list(image_ids[start : start + BATCH_LIMIT])
            outcome.calls += 1
            try:
                response = self._client.batch_delete_image(
                    repositoryName=repository, imageIds=batch
                )
            except ClientError as error:
                if error_code(error) == "RepositoryNotFoundException":
                    raise RepositoryGone(repository) from error
                outcome.failures.extend(_batch_failed(batch, error))
                continue
            except BotoCoreError as error:
                outcome.failures.extend(_batch_failed(batch, error))
                continue
            failed = [
                DeleteFailure(
                    image_id=dict(entry.get("imageId", {})),
                    code=str(entry.get("failureCode", "Unknown")),
                    reason=str(entry.get("failureReason", "")),
                )
                for entry in response.get("failures", [])
            ]
            outcome.failures.extend(failed)
            failed_ids = [failure.image_id for failure in failed]
            outcome.deleted.extend(
                image_id for image_id in batch if not _matches_any(image_id, failed_ids)
            )
        return outcome


def _batch_failed(batch: list[dict[str, str]], error: Exception) -> list[DeleteFailure]:
    return [DeleteFailure(image_id, error_code(error), str(error)) for image_id in batch]


def _matches_any(image_id: dict[str, str], failed_ids: list[dict[str, str]]) -> bool:
    """ECR may echo a failed id with only some of its keys, so compare the keys it gives."""
    return any(
        failed and all(image_id.get(key) == value for key, value in failed.items())
        for failed in failed_ids
    )
