"""Runs a sweep: discovery, planning and deletion, with a summary of what happened.

A sweep of one repository (`Sweeper.sweep_repository`) is a self-contained unit, so a later
fan-out (Step Functions Distributed Map) can run one per repository. One repository's error never
stops the others.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from ecr_sweeper import log_events as ev
from ecr_sweeper import planner
from ecr_sweeper.aws import AwsTarget
from ecr_sweeper.ecr import DeleteFailure, EcrRegistry, Repository, RepositoryGone, error_code
from ecr_sweeper.model import Action, Decision, Image, Protection, RepositoryPlan
from ecr_sweeper.references import InUse
from ecr_sweeper.settings import Settings
from ecr_sweeper.usage import UsageUnavailable, images_in_use


class EventLogger(Protocol):
    """The logging calls the engine makes: stdlib logging and Powertools Logger both fit."""

    def info(self, msg: str, *args: Any, extra: dict[str, Any] | None = ...) -> None: ...
    def warning(self, msg: str, *args: Any, extra: dict[str, Any] | None = ...) -> None: ...
    def error(self, msg: str, *args: Any, extra: dict[str, Any] | None = ...) -> None: ...


SWEPT = "swept"
SKIPPED = "skipped"
FAILED = "failed"


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
    delete_failures: list[DeleteFailure] = field(default_factory=list)
    kept_by_protection: Counter[str] = field(default_factory=Counter)
    plan: RepositoryPlan | None = None

    @property
    def images_kept(self) -> int:
        return self.images_scanned - self.images_expired

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
            "deleteFailures": [failure.to_dict() for failure in self.delete_failures],
            "keptByProtection": dict(sorted(self.kept_by_protection.items())),
        }
        if self.reason:
            data["reason"] = self.reason
        if self.error_code:
            data["errorCode"] = self.error_code
        if self.uncertain:
            data["uncertain"] = self.uncertain
        if self.plan is not None:
            data["notes"] = list(self.plan.notes)
            if include_decisions:
                data["decisions"] = [decision_to_dict(d) for d in self.plan.decisions]
        return data


@dataclass
class RunSummary:
    """The whole run, as the handler returns it and the CLI prints it."""

    run_id: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None = None
    results: list[RepositoryResult] = field(default_factory=list)

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
        return self.delete_failures + self.failed_repositories + self.uncertain_repositories

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
        return {
            "runId": self.run_id,
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
            "deleteFailures": self.delete_failures,
            "failures": self.failures,
            "keptByProtection": dict(sorted(self.kept_by_protection.items())),
            "perRepository": [r.to_dict(include_decisions=include_decisions) for r in self.results],
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


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Sweeper:
    """Sweeps the repositories the settings select, deleting what the plan expires."""

    def __init__(
        self,
        registry: EcrRegistry,
        settings: Settings,
        logger: EventLogger,
        *,
        dry_run: bool,
        clock: Callable[[], datetime] = _utc_now,
        tracer: Any | None = None,
        run_id: str | None = None,
        images_in_use: Callable[[], InUse],
        approved: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self._registry = registry
        self._settings = settings
        self._log = logger
        self._clock = clock
        self._tracer = tracer
        self._images_in_use = images_in_use
        self._approved = approved
        self._in_use = InUse()
        self._uncertain: str | None = None
        self.summary = RunSummary(
            run_id=run_id or str(uuid.uuid4()), dry_run=dry_run, started_at=clock()
        )

    def run(self) -> RunSummary:
        """Sweep every selected repository; the summary holds one result per repository."""
        try:
            repositories = [
                repo
                for repo in self._registry.repositories()
                if planner.select_repository(repo.name, self._settings)
            ]
        except (ClientError, BotoCoreError) as error:
            self._log.error(
                "could not list repositories",
                extra={ev.EVENT: ev.REPOSITORY_FAILED, ev.ERROR_CODE: error_code(error)},
            )
            self.summary.results.append(
                RepositoryResult(
                    "*", status=FAILED, reason=str(error), error_code=error_code(error)
                )
            )
        else:
            self.load_images_in_use()
            for repository in repositories:
                self.summary.results.append(self.sweep_repository(repository))
        self.summary.finished_at = self._clock()
        return self.summary

    def load_images_in_use(self) -> None:
        """Learn which images are in use; if that fails, nothing is deleted anywhere this run."""
        try:
            self._in_use = self._images_in_use()
        except UsageUnavailable as error:
            self._uncertain = str(error)
            self._log.error(
                f"deleting nothing this run: {error}",
                extra={ev.EVENT: ev.USAGE_UNAVAILABLE, ev.REASON: str(error)},
            )

    def sweep_repository(self, repository: Repository) -> RepositoryResult:
        """Plan and (unless dry run) delete in one repository. Never raises for AWS errors."""
        with self._subsegment(repository.name) as annotate:
            result = self._sweep_repository(repository)
            annotate(result)
        self._log_repository(result)
        return result

    def _sweep_repository(self, repository: Repository) -> RepositoryResult:
        result = RepositoryResult(repository.name)
        try:
            rules = planner.repository_rules(
                self._settings, self._registry.repository_tags(repository)
            )
            if rules.skip:
                result.status, result.reason = SKIPPED, f"tagged {planner.SKIP_TAG}=true"
                return result
            images = self._registry.images(repository.name)
            result.images_scanned = len(images)
            plan = planner.plan_repository(
                repository.name,
                images,
                rules,
                now=self.summary.started_at,
                facts=self._facts(repository, images),
            )
            gone: set[str] = set()
            if self._approved is not None:
                plan = _only_approved(plan, self._approved.get(repository.name, frozenset()))
            if not self.summary.dry_run and plan.expired:
                plan, gone = self._recheck(repository.name, plan)
            result.plan = plan
            result.uncertain = next(
                (d.reason for d in plan.decisions if d.protection is Protection.UNCERTAIN), None
            )
            self._count_plan(plan, result)
            for decision in plan.decisions:
                if decision.protection is not None:
                    self._log.info(
                        f"kept {decision.image.label()}: {decision.reason}",
                        extra={
                            ev.EVENT: ev.IMAGE_PROTECTED,
                            ev.REPOSITORY: repository.name,
                            ev.IMAGE_DIGEST: decision.image.digest,
                            ev.PROTECTION: decision.protection.value,
                            ev.REASON: decision.reason,
                        },
                    )
            if plan.expired:
                self._delete(repository.name, plan, result, gone)
        except RepositoryGone:
            result.status, result.reason = SKIPPED, "repository was deleted during the run"
        except planner.OverrideError as error:
            result.status, result.reason = SKIPPED, f"override tags not applied: {error}"
        except (ClientError, BotoCoreError) as error:
            result.status, result.reason = FAILED, str(error)
            result.error_code = error_code(error)
        except Exception as error:  # one repository's surprise must not stop the others
            result.status, result.reason = FAILED, f"{type(error).__name__}: {error}"
            result.error_code = type(error).__name__
        return result

    def _facts(self, repository: Repository, images: list[Image]) -> planner.RepositoryFacts:
        """Index children and images in use; any doubt makes the repository uncertain."""
        by_digest, by_tag = self._in_use.for_repository(
            repository.registry_id, repository.region, repository.name
        )
        indexes = sorted(image.digest for image in images if image.is_index)
        manifests = self._registry.index_manifests(repository.name, indexes) if indexes else None
        uncertain = self._uncertain or (manifests.problem if manifests else None)
        return planner.RepositoryFacts(
            children=manifests.children if manifests else {},
            in_use_by_digest=by_digest,
            in_use_by_tag=by_tag,
            uncertain=uncertain,
        )

    def _recheck(self, repository: str, plan: RepositoryPlan) -> tuple[RepositoryPlan, set[str]]:
        """Read the repository's tags again right before deleting anything.

        An expired image whose tags changed since the listing is kept: it was tagged or
        retagged during the run. Returns the plan with those kept, and the digests already gone.
        """
        current = self._registry.current_tags(repository)
        gone = {d.image.digest for d in plan.expired} - set(current)
        decisions = []
        for decision in plan.decisions:
            now = current.get(decision.image.digest)
            if (
                decision.action is Action.EXPIRE
                and now is not None
                and now != set(decision.image.tags)
            ):
                listed = ", ".join(sorted(now)) or "none"
                decision = Decision.kept(
                    replace(decision.image, tags=tuple(sorted(now))),
                    Protection.CHANGED_DURING_RUN,
                    f"its tags changed during the run (now: {listed})",
                )
            decisions.append(decision)
        return replace(plan, decisions=tuple(decisions)), gone

    def _count_plan(self, plan: RepositoryPlan, result: RepositoryResult) -> None:
        result.images_expired = len(plan.expired)
        result.bytes_expired = sum(d.image.size_bytes for d in plan.expired)
        for decision in plan.kept:
            if decision.protection is not None:
                result.kept_by_protection[decision.protection.value] += 1

    def _delete(
        self, repository: str, plan: RepositoryPlan, result: RepositoryResult, gone: set[str]
    ) -> None:
        """Delete in waves: indexes before their children, subjects before their referrers.

        After each wave the repository is listed again: only an image that is really gone
        counts as deleted and lets what follows it go. An image that stays (its delete failed,
        or it gained a tag) keeps everything that follows it.
        """
        remaining = [d for d in plan.expired if d.image.digest not in gone]
        if self.summary.dry_run:
            for decision in remaining:
                self._audit(ev.IMAGE_EXPIRED_DRY_RUN, repository, decision)
            return
        deleted = set(gone)
        stuck: list[Decision] = []
        while remaining:
            wave = [d for d in remaining if all(f in deleted for f in d.follows)]
            if not wave:
                break
            remaining = [d for d in remaining if d not in wave]
            outcome = self._registry.delete(
                repository, [image_id for d in wave for image_id in _image_ids(d.image)]
            )
            result.delete_failures.extend(outcome.failures)
            for failure in outcome.failures:
                self._log.error(
                    f"delete failed in {repository}: {failure.image_id} {failure.code}",
                    extra={
                        ev.EVENT: ev.IMAGE_DELETE_FAILED,
                        ev.REPOSITORY: repository,
                        "imageId": failure.image_id,
                        ev.ERROR_CODE: failure.code,
                        "failureReason": failure.reason,
                    },
                )
            still_there = self._registry.current_tags(repository)
            for decision in wave:
                if decision.image.digest in still_there:
                    stuck.append(decision)
                    continue
                deleted.add(decision.image.digest)
                result.images_deleted += 1
                result.bytes_reclaimed += decision.image.size_bytes
                self._audit(ev.IMAGE_DELETED, repository, decision)
        for decision in stuck + remaining:
            self._log.warning(
                f"not deleted: {decision.image.label()} in {repository} is still there, or "
                "what it belongs to is",
                extra={
                    ev.EVENT: ev.IMAGE_DELETE_SKIPPED,
                    ev.REPOSITORY: repository,
                    ev.IMAGE_DIGEST: decision.image.digest,
                },
            )

    def _audit(self, event: str, repository: str, decision: Decision) -> None:
        image = decision.image
        self._log.info(
            "image deleted" if event == ev.IMAGE_DELETED else "image would be deleted (dry run)",
            extra={
                ev.EVENT: event,
                ev.RUN_ID: self.summary.run_id,
                ev.DRY_RUN: self.summary.dry_run,
                ev.REPOSITORY: repository,
                ev.IMAGE_DIGEST: image.digest,
                ev.IMAGE_TAGS: list(image.tags),
                ev.IMAGE_PUSHED_AT: image.pushed_at.isoformat(),
                ev.LAST_PULLED_AT: image.last_pulled_at.isoformat()
                if image.last_pulled_at
                else None,
                ev.IMAGE_SIZE: image.size_bytes,
                ev.REASON: decision.reason,
                ev.RULE_PRIORITY: decision.rule_priority,
            },
        )

    def _log_repository(self, result: RepositoryResult) -> None:
        record = {ev.EVENT: ev.REPOSITORY_SUMMARY, ev.RUN_ID: self.summary.run_id}
        record.update(result.to_dict())
        if result.status == SKIPPED:
            self._log.warning(
                f"repository {result.repository} skipped: {result.reason}",
                extra={ev.EVENT: ev.REPOSITORY_SKIPPED, ev.REPOSITORY: result.repository},
            )
        elif result.status == FAILED:
            self._log.error(
                f"repository {result.repository} failed: {result.reason}",
                extra={
                    ev.EVENT: ev.REPOSITORY_FAILED,
                    ev.REPOSITORY: result.repository,
                    ev.ERROR_CODE: result.error_code,
                },
            )
        self._log.info(f"repository {result.repository}: {result.status}", extra=record)

    @contextlib.contextmanager
    def _subsegment(self, repository: str) -> Iterator[Callable[[RepositoryResult], None]]:
        """An X-Ray subsegment per repository when a Powertools Tracer is given."""
        if self._tracer is None:
            yield lambda result: None
            return
        with self._tracer.provider.in_subsegment(f"## repository {repository}") as subsegment:

            def annotate(result: RepositoryResult) -> None:
                subsegment.put_annotation("repository", repository)
                subsegment.put_annotation("status", result.status)
                subsegment.put_annotation("imagesScanned", result.images_scanned)
                subsegment.put_annotation("imagesDeleted", result.images_deleted)

            yield annotate


def _only_approved(plan: RepositoryPlan, approved: frozenset[str]) -> RepositoryPlan:
    """Keep what a person did not see expire in the plan they confirmed."""
    decisions = tuple(
        Decision.kept(d.image, Protection.CHANGED_DURING_RUN, "not in the plan that was confirmed")
        if d.action is Action.EXPIRE and d.image.digest not in approved
        else d
        for d in plan.decisions
    )
    return replace(plan, decisions=decisions)


def sweeper_for(
    target: AwsTarget,
    settings: Settings,
    logger: EventLogger,
    *,
    dry_run: bool,
    tracer: Any | None = None,
    run_id: str | None = None,
    approved: Mapping[str, frozenset[str]] | None = None,
) -> Sweeper:
    """A Sweeper whose every AWS client (ECR, ECS, Lambda, S3, SSM) goes to `target`."""
    return Sweeper(
        EcrRegistry(target.client("ecr")),
        settings,
        logger,
        dry_run=dry_run,
        tracer=tracer,
        run_id=run_id,
        images_in_use=lambda: images_in_use(settings, target.client),
        approved=approved,
    )


def _image_ids(image: Image) -> list[dict[str, str]]:
    """Tagged images are deleted tag by tag, each tag pinned to the image's digest.

    An image that gains a tag meanwhile survives under it, and a tag that moved to a newer image
    meanwhile fails with ImageTagDoesNotMatchDigest instead of deleting that newer image.
    """
    if image.tags:
        return [{"imageDigest": image.digest, "imageTag": tag} for tag in image.tags]
    return [{"imageDigest": image.digest}]
