"""The one module that talks to Amazon ECR: the adapter behind the `ports.Registry` protocol.

Every list call is paginated with botocore's paginators (1,000 a page, ECR's largest), every
batch is at most 100 ids (ECR's limit), and every call holds a slot of the run's shared
`AdaptiveLimiter`. botocore's standard retry mode retries throttling, 5xx and dropped
connections; each throttle also halves the limiter's cap, so the whole run slows down together
instead of every worker hammering a throttled API. Errors leave this module as `RegistryError`
or `RepositoryGone`, never as botocore types.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.model import NoShapeFoundError
from botocore.retries import quota, standard
from botocore.retries.standard import RetryEventAdapter, ThrottlingErrorDetector

from ecr_sweeper.aws.limiter import AdaptiveLimiter
from ecr_sweeper.core.model import INDEX_MEDIA_TYPES, Image, image_from_detail, index_children
from ecr_sweeper.core.results import DeleteFailure
from ecr_sweeper.core.setting_models import DEFAULT_MAX_CONCURRENCY
from ecr_sweeper.ports import (
    BATCH_LIMIT,
    LIFECYCLE_POLICY_NOT_FOUND,
    DeleteOutcome,
    IndexManifests,
    RegistryError,
    Repository,
    RepositoryGone,
)

PAGE_SIZE = 1000
"""The largest page ECR serves; fewer pages means fewer throttled calls."""

CONNECT_TIMEOUT_SECONDS = 5
"""AWS endpoints accept a connection in milliseconds; botocore's default waits 60 s a try."""

RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 10},
    user_agent_extra="ecr-sweeper",
    max_pool_connections=64,
    connect_timeout=CONNECT_TIMEOUT_SECONDS,
)
"""Standard mode retries with jittered exponential backoff. Unlike adaptive mode it doesn't cut
the client's own send rate to a trickle after a few throttles; the shared limiter paces instead.
The connection pool holds every worker's connection, so none waits for a socket. An endpoint
that refuses the connection or whose name doesn't resolve is not retried at all
(`aws.clients`)."""

MAX_ATTEMPTS = 11
BACKOFF_BASE_SECONDS = 0.1
BACKOFF_CAP_SECONDS = 20.0
RETRY_QUOTA_CAPACITY = 5000
"""The retries `EcrRegistry` installs on its client: standard mode's conditions (throttling,
5xx, dropped connections) and retry quota, with full-jitter backoff from 0.1 s instead of
standard mode's 1 s for throttles. The limiter already halves the calls in flight when ECR
throttles; a whole second asleep per throttled call on top made a 20%-throttled sweep 4x
slower. Ten retries still back off to 20 s, and the quota is sized for 32 busy workers."""

_T = TypeVar("_T")
ANY_STATUS = {"imageStatus": "ANY"}
ARCHIVED_STATUS = {"imageStatus": "ARCHIVED"}


class _JitteredBackoff:
    """Full jitter: a random delay up to base x 2^(attempt-1), capped."""

    def delay_amount(self, context: Any) -> float:
        ceiling: float = BACKOFF_BASE_SECONDS * 2.0 ** (int(context.attempt_number) - 1)
        return random.random() * min(BACKOFF_CAP_SECONDS, ceiling)


def _install_retries(client: Any) -> None:
    """Replace the client's standard-mode retry handler by the same conditions and quota with
    `_JitteredBackoff`; an SDK whose retry internals differ keeps its own handler."""
    service = client.meta.service_model.service_id.hyphenize()
    try:
        adapter = standard.RetryEventAdapter()
        retry_quota = standard.RetryQuotaChecker(
            quota.RetryQuota(RETRY_QUOTA_CAPACITY), standard.ThrottlingErrorDetector(adapter)
        )
        handler = standard.RetryHandler(
            retry_policy=standard.RetryPolicy(
                retry_checker=standard.StandardRetryConditions(max_attempts=MAX_ATTEMPTS),
                retry_backoff=_JitteredBackoff(),
            ),
            retry_event_adapter=adapter,
            retry_quota=retry_quota,
        )
    except (AttributeError, TypeError):
        return
    events = client.meta.events
    unique_id = f"retry-config-{service}"
    events.unregister(f"needs-retry.{service}", unique_id=unique_id)
    events.register(f"needs-retry.{service}", handler.needs_retry, unique_id=unique_id)
    events.register(f"after-call.{service}", retry_quota.release_retry_quota)


def _knows_status_filter(client: Any) -> bool:
    """Whether this SDK's ECR model has the listings' `filter.imageStatus` (botocore 1.40 lacks it
    and would refuse the call)."""
    try:
        shape = client.meta.service_model.shape_for("DescribeImagesFilter")
    except NoShapeFoundError:
        return False
    return "imageStatus" in shape.members


def error_code(error: Exception) -> str:
    """The AWS error code of a botocore error, or the exception's class name."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "Unknown"))
    return type(error).__name__


class EcrRegistry:
    """The registry of one account and region, seen through a (thread-safe) boto3 ECR client."""

    def __init__(
        self,
        client: Any,
        *,
        page_size: int = PAGE_SIZE,
        limiter: AdaptiveLimiter | None = None,
    ) -> None:
        self._client = client
        self._page_size = page_size
        self._status_filter = _knows_status_filter(client)
        self.limiter = limiter or AdaptiveLimiter(DEFAULT_MAX_CONCURRENCY)
        _install_retries(client)
        detector = ThrottlingErrorDetector(RetryEventAdapter())
        events = client.meta.events
        events.register("needs-retry.ecr", self._count_throttle(detector))
        events.register("after-call.ecr", self._count_success)

    @property
    def throttled_calls(self) -> int:
        return self.limiter.throttles

    @property
    def lowest_concurrency(self) -> int:
        return self.limiter.lowest_limit

    def _count_throttle(self, detector: ThrottlingErrorDetector) -> Callable[..., None]:
        def hook(**kwargs: Any) -> None:
            if detector.is_throttling_error(**kwargs):
                self.limiter.throttled()

        return hook

    def _count_success(self, **kwargs: Any) -> None:
        http_response = kwargs.get("http_response")
        if http_response is not None and http_response.status_code < 400:
            self.limiter.succeeded()

    def _call(self, repository: str | None, call: Callable[[], _T]) -> _T:
        """One API call in a limiter slot, its errors translated for the engine."""
        try:
            with self.limiter.slot():
                return call()
        except ClientError as error:
            code = error_code(error)
            if repository is not None and code == "RepositoryNotFoundException":
                raise RepositoryGone(repository) from error
            raise RegistryError(code, str(error)) from error
        except BotoCoreError as error:
            raise RegistryError(type(error).__name__, str(error)) from error

    def _pages(self, repository: str | None, operation: str, **params: Any) -> Iterator[Any]:
        """Every page of a listing; each page fetch takes its own limiter slot."""
        paginator = self._client.get_paginator(operation)
        pages = iter(paginator.paginate(**params, PaginationConfig={"PageSize": self._page_size}))
        while True:
            page = self._call(repository, lambda: next(pages, None))
            if page is None:
                return
            yield page

    def repositories(self) -> Iterator[Repository]:
        for page in self._pages(None, "describe_repositories"):
            for repository in page.get("repositories", []):
                yield Repository(repository["repositoryName"], repository["repositoryArn"])

    def repository_tags(self, repository: Repository) -> dict[str, str]:
        response = self._call(
            repository.name,
            lambda: self._client.list_tags_for_resource(resourceArn=repository.arn),
        )
        return {tag["Key"]: tag["Value"] for tag in response.get("tags", [])}

    def images(self, repository: str) -> list[Image]:
        """Every image of the repository, archived and activating ones too (DescribeImages, all
        pages). The status filter is explicit: by default ECR lists only ACTIVE images, and an
        archived subject left out would make its active referrers look orphaned."""
        return [
            image_from_detail(detail)
            for page in self._pages(
                repository, "describe_images", repositoryName=repository, **self._any_status()
            )
            for detail in page.get("imageDetails", [])
        ]

    def index_manifests(self, repository: str, digests: Sequence[str]) -> IndexManifests:
        """Read index manifests with BatchGetImage (100 a call), asking only for index types.

        Any failure is returned as `problem`: the caller then deletes nothing in the repository.
        """
        result = IndexManifests()
        for start in range(0, len(digests), BATCH_LIMIT):
            batch = digests[start : start + BATCH_LIMIT]
            try:
                response = self._call(
                    repository,
                    lambda batch=batch: self._client.batch_get_image(  # type: ignore[misc]
                        repositoryName=repository,
                        imageIds=[{"imageDigest": digest} for digest in batch],
                        acceptedMediaTypes=sorted(INDEX_MEDIA_TYPES),
                    ),
                )
            except RegistryError as error:
                result.problem = f"BatchGetImage failed: {error.code}: {error}"
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

        Used right before deleting and after: one call per 1,000 images, and unlike
        DescribeImages by id it doesn't fail when an image is already gone.
        """
        tags: dict[str, set[str]] = {}
        for page in self._pages(
            repository, "list_images", repositoryName=repository, **self._any_status()
        ):
            for image_id in page.get("imageIds", []):
                found = tags.setdefault(image_id["imageDigest"], set())
                if image_id.get("imageTag"):
                    found.add(image_id["imageTag"])
        return {digest: frozenset(found) for digest, found in tags.items()}

    def _any_status(self) -> dict[str, Any]:
        """The explicit every-status filter, where the SDK knows it. An SDK too old for it
        also fails `sdk_check`, and then nothing is deleted anyway."""
        return {"filter": ANY_STATUS} if self._status_filter else {}

    def archived_digests(self, repository: str) -> frozenset[str]:
        """Digests of the archived images (ListImages filtered on ARCHIVED, all pages)."""
        return frozenset(
            image_id["imageDigest"]
            for page in self._pages(
                repository, "list_images", repositoryName=repository, filter=ARCHIVED_STATUS
            )
            for image_id in page.get("imageIds", [])
        )

    def archive(self, repository: str, digest: str) -> DeleteFailure | None:
        """UpdateImageStorageClass to ARCHIVE, by digest: one image a call, as ECR takes it."""
        image_id = {"imageDigest": digest}
        try:
            self._call(
                repository,
                lambda: self._client.update_image_storage_class(
                    repositoryName=repository, imageId=image_id, targetStorageClass="ARCHIVE"
                ),
            )
        except RegistryError as error:
            return DeleteFailure(image_id, error.code, str(error))
        return None

    def delete_batch(self, repository: str, image_ids: Sequence[dict[str, str]]) -> DeleteOutcome:
        """One BatchDeleteImage call; every failure is returned, none is dropped.

        A call that fails after botocore's retries counts as failed for each of its ids.
        """
        if len(image_ids) > BATCH_LIMIT:
            raise ValueError(f"at most {BATCH_LIMIT} ids a call, got {len(image_ids)}")
        batch = [dict(image_id) for image_id in image_ids]
        try:
            response = self._call(
                repository,
                lambda: self._client.batch_delete_image(repositoryName=repository, imageIds=batch),
            )
        except RegistryError as error:
            return DeleteOutcome(
                [DeleteFailure(image_id, error.code, str(error)) for image_id in batch]
            )
        return DeleteOutcome(
            [
                DeleteFailure(
                    image_id=dict(entry.get("imageId", {})),
                    code=str(entry.get("failureCode", "Unknown")),
                    reason=str(entry.get("failureReason", "")),
                )
                for entry in response.get("failures", [])
            ]
        )

    def lifecycle_policy(self, repository: str) -> str | None:
        """The repository's lifecycle policy text (GetLifecyclePolicy), or None without one."""
        try:
            response = self._call(
                repository, lambda: self._client.get_lifecycle_policy(repositoryName=repository)
            )
        except RegistryError as error:
            if error.code == LIFECYCLE_POLICY_NOT_FOUND:
                return None
            raise
        return str(response["lifecyclePolicyText"])

    def put_lifecycle_policy(self, repository: str, text: str) -> None:
        """PutLifecyclePolicy; errors leave as RegistryError / RepositoryGone."""
        self._call(
            repository,
            lambda: self._client.put_lifecycle_policy(
                repositoryName=repository, lifecyclePolicyText=text
            ),
        )
