"""What a sweep found and did, per repository and for the run: the summary the handler returns,
the logs record and the CLI prints."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ecr_sweeper.core.guard import GuardDecision
from ecr_sweeper.core.log_events import LIST_LIMIT
from ecr_sweeper.core.model import Decision, RepositoryPlan

SWEPT = "swept"
SKIPPED = "skipped"
FAILED = "failed"
UNFINISHED = "unfinished"
"""The time budget ran out before the repository was started or finished; the next run starts
with it."""
HELD = "held"
OUTCOME_SUCCEEDED, OUTCOME_FAILED, OUTCOME_HELD = "succeeded", "failed", "held"
"""Nothing was deleted in the repository because its plan deleted more than the run's plan had
counted for it (the fan-out's deleting child re-checks each repository; see core.guard)."""


PER_REPOSITORY = "perRepository"
"""The run summary's last key (`RunSummary.to_dict`): every repository's entry."""


@dataclass(frozen=True)
class DeleteFailure:
    """One entry of BatchDeleteImage's `failures`, or a whole batch that errored."""

    image_id: dict[str, str]
    code: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"imageId": self.image_id, "failureCode": self.code, "failureReason": self.reason}


@dataclass
class RepositoryResult:
    """What one repository's sweep found and did."""

    repository: str
    status: str = SWEPT
    reason: str | None = None
    error_code: str | None = None
    uncertain: str | None = None
    images_scanned: int = 0
    images_expired: int = 0
    images_deleted: int = 0
    bytes_expired: int = 0
    bytes_reclaimed: int = 0
    images_to_archive: int = 0
    """What the plan moves to the archive storage class (expiredImageAction: archive)."""
    images_archived: int = 0
    bytes_archived: int = 0
    delete_failures: list[DeleteFailure] = field(default_factory=list)
    """Failed deletes and archive calls of images still there (not done)."""
    kept_by_protection: Counter[str] = field(default_factory=Counter)
    plan: RepositoryPlan | None = None
    policy_change: str | None = None
    """What nativeLifecyclePolicy enforcement did here (native_policy.CHANGES), if it is set."""
    target: str | None = None
    """`account/region` when the run swept several targets (settings regions, accounts)."""

    @property
    def images_kept(self) -> int:
        return self.images_scanned - self.images_expired - self.images_to_archive

    def to_dict(self, *, include_decisions: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "repository": self.repository,
            "status": self.status,
            "imagesScanned": self.images_scanned,
            "imagesExpired": self.images_expired,
            "imagesDeleted": self.images_deleted,
            "imagesKept": self.images_kept,
            "bytesExpired": self.bytes_expired,
            "bytesReclaimed": self.bytes_reclaimed,
            "imagesToArchive": self.images_to_archive,
            "imagesArchived": self.images_archived,
            "bytesArchived": self.bytes_archived,
            "deleteFailures": [failure.to_dict() for failure in self.delete_failures],
            "keptByProtection": dict(sorted(self.kept_by_protection.items())),
        }
        if self.target:
            data["target"] = self.target
        if self.reason:
            data["reason"] = self.reason
        if self.error_code:
            data["errorCode"] = self.error_code
        if self.uncertain:
            data["uncertain"] = self.uncertain
        if self.policy_change:
            data["nativeLifecyclePolicy"] = self.policy_change
        if self.plan is not None:
            data["notes"] = list(self.plan.notes)
            if include_decisions:
                data["decisions"] = [decision_to_dict(d) for d in self.plan.decisions]
        return data

    def to_record(self) -> dict[str, Any]:
        """The `repository.summary` record: `to_dict()` with its lists (delete failures, notes)
        cut to their first LIST_LIMIT entries, and how many there are in all."""
        data = self.to_dict()
        data["deleteFailures"] = data["deleteFailures"][:LIST_LIMIT]
        data["deleteFailureCount"] = len(self.delete_failures)
        if "notes" in data:
            data["noteCount"] = len(data["notes"])
            data["notes"] = data["notes"][:LIST_LIMIT]
        return data

    @property
    def label(self) -> str:
        """The repository, after its target (account/region) when the run swept several."""
        return f"{self.target} {self.repository}" if self.target else self.repository


@dataclass
class RunSummary:
    """The whole run, as the handler returns it and the CLI prints it."""

    run_id: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None = None
    results: list[RepositoryResult] = field(default_factory=list)
    throttled_calls: int = 0
    """ECR calls the service throttled (each was retried)."""
    lowest_concurrency: int = 0
    """The fewest ECR calls in flight the limiter came down to under throttling."""
    resumed_from: str | None = None
    """Where the previous run's time budget ran out; this run started there."""
    guard: GuardDecision | None = None
    """The deletion guard's decision over the run's plan (live runs only)."""
    cursor_failure: str | None = None
    """Why the resume cursor could not be read or written (the next run would start at the
    beginning again): a failure of the run."""

    @property
    def held(self) -> bool:
        """The guard held the run, or a repository whose plan grew: nothing deleted there."""
        return (self.guard is not None and self.guard.held) or bool(self.held_repositories)

    @property
    def outcome(self) -> str:
        """held (the guard held the run or a repository: nothing deleted there), failed (it had
        failures) or succeeded: the function's result and the CLI's exit code tell them apart."""
        if self.held:
            return OUTCOME_HELD
        return OUTCOME_FAILED if self.failures else OUTCOME_SUCCEEDED

    @property
    def held_repositories(self) -> list[str]:
        return [result.repository for result in self.results if result.status == HELD]

    def total(self, name: str) -> int:
        return sum(int(getattr(result, name)) for result in self.results)

    @property
    def repositories_swept(self) -> int:
        return sum(1 for result in self.results if result.status == SWEPT)

    @property
    def delete_failures(self) -> int:
        return sum(len(result.delete_failures) for result in self.results)

    @property
    def failed_repositories(self) -> int:
        return sum(1 for result in self.results if result.status == FAILED)

    @property
    def uncertain_repositories(self) -> int:
        """Repositories where nothing could be decided safely, so nothing was deleted."""
        return sum(1 for result in self.results if result.uncertain)

    @property
    def failures(self) -> int:
        return (
            self.delete_failures
            + self.failed_repositories
            + self.uncertain_repositories
            + (1 if self.cursor_failure else 0)
        )

    @property
    def unfinished_repositories(self) -> list[str]:
        """Repositories the time budget left unstarted or half done, in repository order."""
        return [result.repository for result in self.results if result.status == UNFINISHED]

    @property
    def kept_by_protection(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for result in self.results:
            total.update(result.kept_by_protection)
        return total

    @property
    def duration_seconds(self) -> float:
        end = self.finished_at or self.started_at
        return (end - self.started_at).total_seconds()

    def to_dict(self, *, include_decisions: bool = False) -> dict[str, Any]:
        """The whole run, every repository's entry included (the CLI's `--output json`)."""
        return {
            **self.head(),
            PER_REPOSITORY: [r.to_dict(include_decisions=include_decisions) for r in self.results],
        }

    def head(self) -> dict[str, Any]:
        """`to_dict()` but its last key, PER_REPOSITORY (the CLI streams that list entry by
        entry)."""
        return {**self._totals(), "repositoriesUnfinished": self.unfinished_repositories}

    def to_record(self) -> dict[str, Any]:
        """The `run.summary` record and the function's result, of a bounded size at any number of
        repositories: the totals, the repositories counted by status, and the first LIST_LIMIT
        unfinished, failed and held ones by name with how many there are. Each repository's own
        entry is its `repository.summary` record (`ecr-sweeper runs show` reads those)."""
        by_status = Counter(result.status for result in self.results)
        failed = [r.label for r in self.results if r.status == FAILED or r.uncertain]
        held = [r.label for r in self.results if r.status == HELD]
        unfinished = [r.label for r in self.results if r.status == UNFINISHED]
        return {
            **self._totals(),
            "repositoriesByStatus": dict(sorted(by_status.items())),
            "repositoriesUnfinished": unfinished[:LIST_LIMIT],
            "repositoriesUnfinishedCount": len(unfinished),
            "repositoriesFailedNames": failed[:LIST_LIMIT],
            "repositoriesFailedCount": len(failed),
            "repositoriesHeld": held[:LIST_LIMIT],
            "repositoriesHeldCount": len(held),
        }

    def _totals(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "outcome": self.outcome,
            "dryRun": self.dry_run,
            "startedAt": self.started_at.isoformat(),
            "finishedAt": self.finished_at.isoformat() if self.finished_at else None,
            "durationSeconds": round(self.duration_seconds, 3),
            "repositories": self.repositories_swept,
            "repositoriesSkipped": sum(1 for r in self.results if r.status == SKIPPED),
            "repositoriesFailed": self.failed_repositories,
            "repositoriesUncertain": self.uncertain_repositories,
            "imagesScanned": self.total("images_scanned"),
            "imagesExpired": self.total("images_expired"),
            "imagesDeleted": self.total("images_deleted"),
            "imagesKept": self.total("images_kept"),
            "bytesExpired": self.total("bytes_expired"),
            "bytesReclaimed": self.total("bytes_reclaimed"),
            "imagesToArchive": self.total("images_to_archive"),
            "imagesArchived": self.total("images_archived"),
            "bytesArchived": self.total("bytes_archived"),
            "deleteFailures": self.delete_failures,
            "failures": self.failures,
            "resumedFrom": self.resumed_from,
            "cursorFailure": self.cursor_failure,
            "throttledCalls": self.throttled_calls,
            "lowestConcurrency": self.lowest_concurrency,
            "keptByProtection": dict(sorted(self.kept_by_protection.items())),
            "held": self.held,
            "guard": self.guard.to_dict() if self.guard else None,
        }


def decision_to_dict(decision: Decision) -> dict[str, Any]:
    image = decision.image
    return {
        "imageDigest": image.digest,
        "imageTags": list(image.tags),
        "imagePushedAt": image.pushed_at.isoformat(),
        "imageSizeInBytes": image.size_bytes,
        "action": decision.action.value,
        "rulePriority": decision.rule_priority,
        "protection": decision.protection.value if decision.protection else None,
        "reason": decision.reason,
    }
