"""The ports: what the sweep needs from the outside world, as protocols over plain data.

`Registry` is the container registry (`aws.ecr.EcrRegistry` is the adapter for Amazon ECR); the
engine sweeps through it and never names botocore. Errors cross it as `RegistryError` (with the
AWS error code) or `RepositoryGone`, so one repository's trouble is a value the engine can
report. `Cursor` keeps where the last run's time budget ran out (`aws.ssm` implements it);
`ApprovalStore` keeps a person's approval of a run the deletion guard held (`aws.ssm` too);
`EventLogger` is what the sweep logs through (stdlib logging and Powertools' Logger both fit).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ecr_sweeper.core.guard import Approval
from ecr_sweeper.core.model import Image
from ecr_sweeper.core.results import DeleteFailure

IMAGE_NOT_FOUND = "ImageNotFound"
LIFECYCLE_POLICY_NOT_FOUND = "LifecyclePolicyNotFoundException"
"""GetLifecyclePolicy's error code for a repository without a lifecycle policy."""
"""BatchDeleteImage's failure code for an id whose image is not (or no longer) there."""


class RepositoryGone(Exception):
    """The repository was deleted while the run was looking at it."""


class RegistryError(Exception):
    """A registry call failed after the adapter's retries; `code` is the AWS error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


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


@dataclass
class DeleteOutcome:
    """What one BatchDeleteImage call (at most 100 ids) reported as failed."""

    failures: list[DeleteFailure] = field(default_factory=list)


class Registry(Protocol):
    """What the engine needs from a registry. Every listing reads all pages."""

    def repositories(self) -> Iterator[Repository]: ...

    def repository_tags(self, repository: Repository) -> dict[str, str]: ...

    def images(self, repository: str) -> list[Image]: ...

    def index_manifests(self, repository: str, digests: Sequence[str]) -> IndexManifests: ...

    def current_tags(self, repository: str) -> dict[str, frozenset[str]]:
        """Every image's digest and its tags as the registry holds them now."""
        ...

    def delete_batch(self, repository: str, image_ids: Sequence[dict[str, str]]) -> DeleteOutcome:
        """One BatchDeleteImage call of at most `BATCH_LIMIT` ids; never raises for a failure
        of the call itself (every id then fails with the call's error code)."""
        ...

    def archived_digests(self, repository: str) -> frozenset[str]:
        """The digests of the repository's images in the archive storage class now."""
        ...

    def archive(self, repository: str, digest: str) -> DeleteFailure | None:
        """Move one image to the archive storage class (UpdateImageStorageClass); the failure,
        if the call failed after retries, else None."""

    def lifecycle_policy(self, repository: str) -> str | None:
        """The repository's native lifecycle policy text as the registry holds it, or None."""
        ...

    def put_lifecycle_policy(self, repository: str, text: str) -> None:
        """Set the repository's native lifecycle policy (raises RegistryError on failure)."""
        ...

    @property
    def throttled_calls(self) -> int:
        """Calls the registry throttled so far (each was retried)."""
        ...

    @property
    def lowest_concurrency(self) -> int:
        """The fewest calls in flight the registry's limiter came down to."""
        ...


BATCH_LIMIT = 100
"""ECR rejects BatchDeleteImage, BatchGetImage and DescribeImages(imageIds) with more ids."""


class EventLogger(Protocol):
    """The logging calls the engine makes: stdlib logging and Powertools Logger both fit."""

    def info(self, msg: str, *args: Any, extra: dict[str, Any] | None = ...) -> None: ...
    def warning(self, msg: str, *args: Any, extra: dict[str, Any] | None = ...) -> None: ...
    def error(self, msg: str, *args: Any, extra: dict[str, Any] | None = ...) -> None: ...


@runtime_checkable
class BatchEventLogger(Protocol):
    """An EventLogger that can write a block of info records at once, each exactly as
    `info(message, extra=fields)` would (the handlers' Logger: `handlers.records`). The sweep's
    audit records, one per image, go through it where the logger has it."""

    def info_batch(self, entries: Sequence[tuple[str, Mapping[str, Any]]]) -> None: ...


class Cursor(Protocol):
    """Where the last run's time budget ran out: the repository to start with next time."""

    @property
    def problem(self) -> str | None:
        """Why the cursor could not be read or written this run (a failure of the run: the next
        run would start again at the beginning); None if it could."""
        ...

    def load(self) -> str | None: ...

    def save(self, resume_from: str | None) -> None: ...


class ApprovalStore(Protocol):
    """Where a person's approval of a held run is kept (`aws.ssm` keeps it in the stack's state
    parameter): read by the next live run, which records there that it used it."""

    def load(self) -> Approval | None:
        """The approval on record (used or not), or None if there is none or it can't be read."""
        ...

    def save(self, approval: Approval) -> bool:
        """Record the approval (replacing any other); False if it could not be written."""
        ...
