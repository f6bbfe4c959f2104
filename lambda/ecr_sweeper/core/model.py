"""Plain data shared by the pure decision core and the AWS-facing modules.

Nothing here imports boto3: the planner works on these values only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property

INDEX_MEDIA_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)


class ImageStatus(StrEnum):
    """ECR's imageStatus: which storage class holds the image, or that it is being restored."""

    ACTIVE = "ACTIVE"
    ARCHIVED = "ARCHIVED"
    ACTIVATING = "ACTIVATING"


@dataclass(frozen=True)
class Image:
    """One image (manifest) of a repository, as DescribeImages reports it."""

    digest: str
    tags: tuple[str, ...]
    pushed_at: datetime
    size_bytes: int = 0
    last_pulled_at: datetime | None = None
    manifest_media_type: str | None = None
    artifact_media_type: str | None = None
    subject_digest: str | None = None
    status: ImageStatus = ImageStatus.ACTIVE
    """ARCHIVED images can't be pulled; ACTIVATING ones are being restored to standard."""
    last_archived_at: datetime | None = None
    last_activated_at: datetime | None = None

    @property
    def is_index(self) -> bool:
        """A manifest list or OCI image index: its children are other images of the repository."""
        return self.manifest_media_type in INDEX_MEDIA_TYPES

    def label(self) -> str:
        """How reasons name an image: its tags, or its short digest."""
        return ",".join(self.tags) if self.tags else self.digest[:19]


class Action(StrEnum):
    """What happens to an image: kept as it is, deleted, or moved to ECR's archive tier."""

    KEEP = "keep"
    EXPIRE = "expire"
    TRANSITION = "transition"


class Protection(StrEnum):
    """A safety rule that keeps an image a lifecycle rule would expire."""

    PROTECTED_TAG = "protected-tag"
    TOO_YOUNG = "too-young"
    CHANGED_DURING_RUN = "changed-during-run"
    NOT_CONFIRMED = "not-confirmed"
    """Not in the plan a person confirmed (`ecr-sweeper sweep` on a terminal)."""
    IN_USE = "in-use"
    INDEX_CHILD = "index-child"
    REFERRER = "referrer"
    UNCERTAIN = "uncertain"


@dataclass(frozen=True)
class Decision:
    """What happens to one image, and why.

    `rule_priority` names the lifecycle rule that expired the image; `protection` names the
    safety rule that kept it although a rule would have expired it (or that keeps a child or
    referrer with the image it belongs to).
    """

    image: Image
    action: Action
    reason: str
    rule_priority: int | None = None
    rule_description: str | None = None
    protection: Protection | None = None
    follows: tuple[str, ...] = ()
    """Digests that must be deleted (or archived) before this image: its index, or its subject."""

    @classmethod
    def kept(cls, image: Image, protection: Protection, reason: str) -> Decision:
        """A keep that a protection decided, whatever the policy says."""
        return cls(image, Action.KEEP, f"kept: {reason}", protection=protection)


@dataclass(frozen=True)
class RepositoryPlan:
    """All decisions for one repository, in newest-first order."""

    repository: str
    decisions: tuple[Decision, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @cached_property
    def expired(self) -> tuple[Decision, ...]:
        """Computed once per plan (a plan never changes): a sweep asks for it several times."""
        return tuple(d for d in self.decisions if d.action is Action.EXPIRE)

    @cached_property
    def kept(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.action is Action.KEEP)

    @cached_property
    def transitioned(self) -> tuple[Decision, ...]:
        """Images to move to the archive tier (UpdateImageStorageClass, one image a call)."""
        return tuple(d for d in self.decisions if d.action is Action.TRANSITION)

    def rechecked(
        self, current: Mapping[str, frozenset[str]]
    ) -> tuple[RepositoryPlan, frozenset[str]]:
        """Apply a fresh read of the repository's tags (digest -> tags), taken right before
        deleting or archiving.

        An expired (or to-be-archived) image whose tags changed since the listing is kept: it
        was tagged or retagged during the run. Returns that plan and the digests of such images
        that are already gone.
        """
        acting = (Action.EXPIRE, Action.TRANSITION)
        gone = frozenset(
            d.image.digest
            for d in self.decisions
            if d.action in acting and d.image.digest not in current
        )
        decisions = []
        for decision in self.decisions:
            now = current.get(decision.image.digest)
            if decision.action in acting and now is not None and now != set(decision.image.tags):
                listed = ", ".join(sorted(now)) or "none"
                decision = Decision.kept(
                    replace(decision.image, tags=tuple(sorted(now))),
                    Protection.CHANGED_DURING_RUN,
                    f"its tags changed during the run (now: {listed})",
                )
            decisions.append(decision)
        return replace(self, decisions=tuple(decisions)), gone


class ImageDetailError(ValueError):
    """An ImageDetail document that can't be read; the message names the field."""


def parse_timestamp(value: object, field_name: str) -> datetime:
    """Read a timestamp as boto3 (datetime), the AWS CLI (ISO-8601) or epoch seconds give it.

    Naive values are taken as UTC, so that comparisons never mix naive and aware datetimes.
    """

    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        moment = _from_epoch_seconds(value, field_name)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            try:
                seconds = float(value) if value.isascii() else math.nan
            except ValueError:
                raise ImageDetailError(
                    f"{field_name}: {value!r} is not an ISO-8601 timestamp or epoch seconds"
                ) from None
            moment = _from_epoch_seconds(seconds, field_name)
    else:
        raise ImageDetailError(f"{field_name}: expected a timestamp, got {value!r}")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


MAX_EPOCH_SECONDS = 253_402_300_799
"""9999-12-31T23:59:59Z, the last moment a datetime holds."""


def _from_epoch_seconds(value: float, field_name: str) -> datetime:
    """Epoch seconds, as the AWS CLI writes them; milliseconds and absurd numbers are refused."""
    if not math.isfinite(value):
        raise ImageDetailError(f"{field_name}: {value!r} is not a time; expected epoch seconds")
    if value > MAX_EPOCH_SECONDS and value / 1000 <= MAX_EPOCH_SECONDS:
        raise ImageDetailError(
            f"{field_name}: {value!r} looks like epoch milliseconds; expected epoch seconds "
            f"(e.g. {value / 1000:.0f}) or an ISO-8601 timestamp"
        )
    if not 0 <= value <= MAX_EPOCH_SECONDS:
        raise ImageDetailError(
            f"{field_name}: {value!r} is out of range; expected epoch seconds from 0 (1970) to "
            f"{MAX_EPOCH_SECONDS} (9999), or an ISO-8601 timestamp"
        )
    return datetime.fromtimestamp(value, tz=UTC)


def image_from_detail(detail: object) -> Image:
    """Build an Image from one DescribeImages ImageDetail (boto3 dict or CLI JSON)."""
    if not isinstance(detail, dict):
        raise ImageDetailError(f"expected an ImageDetail object, got {detail!r}")
    digest = detail.get("imageDigest")
    if not isinstance(digest, str) or not digest:
        raise ImageDetailError("imageDigest: missing or not a string")
    tags = detail.get("imageTags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ImageDetailError(f"imageTags of {digest}: expected a list of strings")
    if "imagePushedAt" not in detail:
        raise ImageDetailError(f"imagePushedAt of {digest}: missing")
    pulled = detail.get("lastRecordedPullTime")
    size = detail.get("imageSizeInBytes", 0)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ImageDetailError(f"imageSizeInBytes of {digest}: expected a whole number")
    status_value = detail.get("imageStatus", "ACTIVE")
    status = _STATUSES.get(status_value) if isinstance(status_value, str) else None
    if status is None:
        raise ImageDetailError(
            f"imageStatus of {digest}: {status_value!r}; accepted values are "
            f"{', '.join(ImageStatus)}"
        )
    archived = detail.get("lastArchivedAt")
    activated = detail.get("lastActivatedAt")
    return Image(
        digest=digest,
        tags=tuple(tags),
        pushed_at=_detail_time(detail["imagePushedAt"], "imagePushedAt", digest),
        size_bytes=size,
        last_pulled_at=_detail_time(pulled, "lastRecordedPullTime", digest) if pulled else None,
        manifest_media_type=detail.get("imageManifestMediaType"),
        artifact_media_type=detail.get("artifactMediaType"),
        subject_digest=detail.get("subjectManifestDigest"),
        status=status,
        last_archived_at=_detail_time(archived, "lastArchivedAt", digest) if archived else None,
        last_activated_at=(
            _detail_time(activated, "lastActivatedAt", digest) if activated else None
        ),
    )


_STATUSES = {status.value: status for status in ImageStatus}


def _detail_time(value: object, field_name: str, digest: str) -> datetime:
    """`parse_timestamp` for one ImageDetail field, with a fast path for the epoch seconds
    ECR sends: a sweep reads 100,000 of them from one repository."""
    if (type(value) is int or type(value) is float) and 0 <= value <= MAX_EPOCH_SECONDS:
        return datetime.fromtimestamp(value, tz=UTC)
    return parse_timestamp(value, f"{field_name} of {digest}")


def index_children(manifest: str) -> tuple[str, ...]:
    """The digests an image index or manifest list names (attestation manifests included)."""
    try:
        document = json.loads(manifest)
    except (TypeError, ValueError) as error:
        raise ValueError(f"not JSON ({error})") from None
    entries = document.get("manifests") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("no 'manifests' list")
    digests = [entry.get("digest") if isinstance(entry, dict) else None for entry in entries]
    if not all(isinstance(digest, str) and digest.startswith("sha256:") for digest in digests):
        raise ValueError("a 'manifests' entry has no sha256 digest")
    return tuple(str(digest) for digest in digests)
