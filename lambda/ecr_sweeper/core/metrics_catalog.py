"""Every CloudWatch metric the handler emits, in one place.

The dashboard and alarms (infra/) read names from here, and a test checks that the handler's EMF
output and the template agree, so a renamed metric fails the build instead of a dashboard.
"""

from __future__ import annotations

from ecr_sweeper.core.model import Protection

SERVICE = "ecr-sweeper"
"""Powertools' `service` dimension on every metric."""

MODE_DIMENSION = "Mode"
MODE_LIVE = "Live"
MODE_DRY_RUN = "DryRun"
TARGET_DIMENSION = "Target"
"""With several regions or accounts, a few per-target series carry `account/region` here."""
"""Dry runs emit the same metrics under Mode=DryRun, so they never inflate live figures."""

REPOSITORIES_SCANNED = "RepositoriesScanned"
IMAGES_SCANNED = "ImagesScanned"
IMAGES_EXPIRED = "ImagesExpired"
IMAGES_DELETED = "ImagesDeleted"
IMAGES_KEPT = "ImagesKept"
BYTES_RECLAIMED = "BytesReclaimed"
BYTES_EXPIRED = "BytesExpired"
DELETE_FAILURES = "DeleteFailures"
FAILED_REPOSITORIES = "FailedRepositories"
IMAGES_ARCHIVED = "ImagesArchived"
BYTES_ARCHIVED = "BytesArchived"
"""Images moved to the archive storage class (expiredImageAction: archive), and their bytes."""
UNFINISHED_REPOSITORIES = "UnfinishedRepositories"
"""Repositories the time budget left unstarted or half done; the next run starts with them."""
THROTTLED_CALLS = "ThrottledCalls"
"""ECR calls answered with throttling (each retried, and each halving the calls in flight)."""
RUN_DURATION_SECONDS = "RunDurationSeconds"
RUN_COMPLETED = "RunCompleted"
LIFECYCLE_POLICIES_CHANGED = "LifecyclePoliciesChanged"
"""Repositories whose native lifecycle policy the run created or updated (nativeLifecyclePolicy)."""
GUARD_HELD = "GuardHeld"
"""1 when the deletion guard held the live run (or a repository of it), else 0 (core.guard)."""
CURSOR_FAILURES = "CursorFailures"
"""1 when the resume cursor (the state parameter) could not be read or written, else 0: the next
run would start at the first repository and target again, and never reach the later ones."""
LIFECYCLE_POLICIES_SKIPPED = "LifecyclePoliciesSkipped"
"""Repositories where nativeLifecyclePolicy differs but was not written: it would expire images
the sweep keeps (in use, children of kept indexes, referrers of kept images), and
nativeLifecyclePolicyForce is not set (or the repository was deleted during the run)."""

KEPT_BY_PROTECTION: dict[Protection, str] = {
    Protection.PROTECTED_TAG: "KeptProtectedTag",
    Protection.TOO_YOUNG: "KeptTooYoung",
    Protection.CHANGED_DURING_RUN: "KeptChangedDuringRun",
    Protection.NOT_CONFIRMED: "KeptNotConfirmed",
    Protection.IN_USE: "KeptInUse",
    Protection.INDEX_CHILD: "KeptIndexChild",
    Protection.REFERRER: "KeptReferrer",
    Protection.UNCERTAIN: "KeptUncertain",
}

ALL_METRICS: tuple[str, ...] = (
    REPOSITORIES_SCANNED,
    IMAGES_SCANNED,
    IMAGES_EXPIRED,
    IMAGES_DELETED,
    IMAGES_KEPT,
    BYTES_RECLAIMED,
    BYTES_EXPIRED,
    IMAGES_ARCHIVED,
    BYTES_ARCHIVED,
    DELETE_FAILURES,
    FAILED_REPOSITORIES,
    UNFINISHED_REPOSITORIES,
    THROTTLED_CALLS,
    RUN_DURATION_SECONDS,
    RUN_COMPLETED,
    LIFECYCLE_POLICIES_CHANGED,
    GUARD_HELD,
    CURSOR_FAILURES,
    LIFECYCLE_POLICIES_SKIPPED,
    *KEPT_BY_PROTECTION.values(),
)
