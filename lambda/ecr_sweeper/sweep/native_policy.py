"""One ECR native lifecycle policy across the registry: compare, evaluate and apply it safely.

A native policy is run by ECR itself, for free, but it knows nothing of images in use, index
children or referrers. So before writing, each repository's current policy is compared with the
wanted one in canonical form (key order, whitespace, rule order and optional fields at their
defaults don't count), both are evaluated by our own lifecycle engine against the repository's
images, and the policy is checked against the sweep's plan of the repository: an image it would
expire that the sweep keeps (in use, a child of a kept index, a referrer of a kept image) is
named, and the repository skipped unless forced. PutLifecyclePolicy is called only where the
canonical policies differ, so a second apply writes nothing.

Talks to ECR only through the `ports.Registry` protocol (no AWS SDK here).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ecr_sweeper.core import lifecycle, overrides
from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core.model import Image, Protection, RepositoryPlan
from ecr_sweeper.core.references import InUse, Usage
from ecr_sweeper.core.settings import Settings
from ecr_sweeper.ports import Registry, RegistryError, Repository, RepositoryGone
from ecr_sweeper.sweep.context import RunContext
from ecr_sweeper.sweep.facts import SweepView, kept_by_the_sweep, sweep_view
from ecr_sweeper.sweep.selection import selected_repositories

if TYPE_CHECKING:
    from ecr_sweeper.core.results import RepositoryResult

CREATE = "create"
UPDATE = "update"
UNCHANGED = "unchanged"
SKIPPED = "skipped"
FAILED = "failed"
CHANGES: tuple[str, ...] = (CREATE, UPDATE, UNCHANGED, SKIPPED, FAILED)
WRITES: tuple[str, ...] = (CREATE, UPDATE)


def policy_text(policy: lifecycle.LifecyclePolicy) -> str:
    """The text written with PutLifecyclePolicy: the canonical document, compact."""
    return json.dumps(lifecycle.policy_document(policy), separators=(",", ":"), ensure_ascii=False)


def text_hash(text: str | None) -> str | None:
    """sha256 of a policy text as ECR returned it, for the audit log (None: there was none)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest() if text is not None else None


def _pretty(document: Any) -> list[str]:
    return json.dumps(document, indent=2, ensure_ascii=False).splitlines()


def _diff(before: list[str], after: list[str]) -> list[str]:
    return list(difflib.unified_diff(before, after, "current", "wanted", lineterm=""))


@dataclass
class PolicyChange:
    """What applying the wanted policy does (or did) to one repository."""

    repository: str
    change: str
    would_expire: int | None = None
    """Images the wanted policy would expire now, by our engine (None: not evaluated)."""
    current_would_expire: int | None = None
    """The same for the current policy, where it differs from the wanted one."""
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    """The AWS error code of a failed repository."""
    reason: str | None = None
    """Why the repository was skipped or failed, in words."""
    diff: list[str] = field(default_factory=list)
    """Unified diff of the canonical current policy and the wanted one, for create/update."""
    previous_text: str | None = None
    written: bool = False
    """PutLifecyclePolicy succeeded for this repository in this run."""

    @property
    def in_use_warnings(self) -> list[str]:
        return [w for w in self.warnings if " in use by " in w]

    def to_dict(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "change": self.change,
            "wouldExpire": self.would_expire,
            "currentWouldExpire": self.current_would_expire,
            "warnings": list(self.warnings),
            "error": self.error,
            "reason": self.reason,
            "diff": list(self.diff),
        }


def compare(
    repository: str,
    wanted: lifecycle.LifecyclePolicy,
    current_text: str | None,
    images: Sequence[Image] | None,
    *,
    now: datetime,
    in_use_by_digest: Mapping[str, str] | None = None,
    in_use_by_tag: Mapping[str, str] | None = None,
) -> PolicyChange:
    """Pure: the change from `current_text` to `wanted`, and what each would expire now.

    `images` None skips the evaluation (the nightly enforcement doesn't need the counts).
    """
    wanted_lines = _pretty(lifecycle.policy_document(wanted))
    result = PolicyChange(repository, UNCHANGED, previous_text=current_text)
    current: lifecycle.LifecyclePolicy | None = None
    if current_text is None:
        result.change, result.diff = CREATE, _diff([], wanted_lines)
    else:
        try:
            current = lifecycle.parse_policy(current_text)
        except lifecycle.PolicyError as error:
            result.change = UPDATE
            result.warnings.append(f"the current policy can't be evaluated by ecr-sweeper: {error}")
            try:
                before = _pretty(json.loads(current_text))
            except json.JSONDecodeError:
                before = current_text.splitlines()
            result.diff = _diff(before, wanted_lines)
        else:
            if current != wanted:
                result.change = UPDATE
                result.diff = _diff(_pretty(lifecycle.policy_document(current)), wanted_lines)
    if images is None:
        return result
    verdicts = lifecycle.evaluate(wanted, images, now)
    expired = [image for image in images if verdicts[image.digest].expired]
    result.would_expire = len(expired)
    if current is not None and result.change == UPDATE:
        result.current_would_expire = sum(
            verdict.expired for verdict in lifecycle.evaluate(current, images, now).values()
        )
    by_digest, by_tag = in_use_by_digest or {}, in_use_by_tag or {}
    for image in sorted(expired, key=lambda i: (i.pushed_at, i.digest)):
        holder = by_digest.get(image.digest) or next(
            (by_tag[tag] for tag in image.tags if tag in by_tag), None
        )
        if holder is not None:
            result.warnings.append(
                f"{image.label()} ({image.digest}): the policy would expire it, "
                f"but it is in use by {holder}"
            )
    return result


def risks(wanted: lifecycle.LifecyclePolicy, view: SweepView, now: datetime) -> list[str]:
    """Pure: each image `wanted` would expire (ECR evaluates every image of the repository) that
    the sweep keeps for a reason ECR knows nothing of, and why; or, where what the sweep keeps is
    unknown, that the policy can't be checked."""
    verdicts = lifecycle.evaluate(wanted, view.images, now)
    expired = sorted(
        (image for image in view.images if verdicts[image.digest].expired),
        key=lambda image: (image.pushed_at, image.digest),
    )
    if not expired:
        return []
    if view.facts.uncertain is not None:
        return [
            f"the policy would expire {len(expired)} image(s), and what the sweep keeps is "
            f"unknown: {view.facts.uncertain}"
        ]
    kept = kept_by_the_sweep(view)
    return [
        f"{image.label()} ({image.digest}): the policy would expire it, but {kept[image.digest]}"
        for image in expired
        if image.digest in kept
    ]


def reconcile(
    registry: Registry,
    repository: Repository,
    wanted: lifecycle.LifecyclePolicy,
    *,
    now: datetime,
    in_use: InUse,
    in_use_unknown: str | None = None,
    write: bool,
    protect_in_use: bool = False,
    evaluate: bool = True,
    sweep: Callable[[], SweepView] | None = None,
    force: bool = False,
    escape: str = "--force",
) -> PolicyChange:
    """Read, compare and (if `write` and it differs) put the policy of one repository.

    Never raises for a registry error: the change is then `failed` with the error code.
    With `protect_in_use`, a repository where the policy would expire an image in use (or where
    that is unknown, because an in-use source could not be read) is skipped. With `sweep` (what
    the sweep sees and keeps there), a repository where the policy would expire what the sweep
    keeps (in use, a child of a kept index, a referrer of a kept image) is skipped with a
    warning per image, unless `force`; the reason names the `escape` that forces it.
    """
    name = repository.name
    try:
        current = registry.lifecycle_policy(name)
        view = sweep() if sweep is not None and evaluate else None
        images = view.images if view is not None else None
        if images is None and evaluate:
            images = registry.images(name)
        by_digest, by_tag = (
            ({}, {})
            if view is not None
            else in_use.for_repository(repository.registry_id, repository.region, name)
        )
        result = compare(
            name,
            wanted,
            current,
            images,
            now=now,
            in_use_by_digest=by_digest,
            in_use_by_tag=by_tag,
        )
        if in_use_unknown is not None and evaluate:
            result.warnings.append(f"images in use are unknown: {in_use_unknown}")
        found: list[str] = []
        if sweep is not None and (view is not None or result.change in WRITES):
            found = risks(wanted, view or sweep(), now)
            result.warnings.extend(found)
        if protect_in_use and result.change in WRITES:
            if result.in_use_warnings:
                count = len(result.in_use_warnings)
                result.change = SKIPPED
                result.reason = f"--protect-in-use: the policy would expire {count} image(s) in use"
            elif in_use_unknown is not None:
                result.change = SKIPPED
                result.reason = f"--protect-in-use: images in use are unknown ({in_use_unknown})"
        if found and result.change in WRITES and not force:
            result.change = SKIPPED
            result.reason = (
                f"the policy would expire what the sweep keeps ({len(found)} warning(s)); "
                f"{escape} writes it anyway"
            )
        if write and result.change in WRITES:
            registry.put_lifecycle_policy(name, policy_text(wanted))
            result.written = True
        return result
    except RepositoryGone:
        return PolicyChange(name, SKIPPED, reason="repository was deleted during the run")
    except RegistryError as error:
        return PolicyChange(name, FAILED, error=error.code, reason=str(error))
    except Exception as error:  # one repository's surprise must not stop the others
        return PolicyChange(
            name, FAILED, error=type(error).__name__, reason=f"{type(error).__name__}: {error}"
        )


@dataclass
class PolicyReport:
    """Every selected repository's change, in name order."""

    changes: list[PolicyChange] = field(default_factory=list)
    applied: bool = False

    def count(self, change: str) -> int:
        return sum(1 for c in self.changes if c.change == change)

    @property
    def failures(self) -> int:
        return self.count(FAILED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "repositories": [change.to_dict() for change in self.changes],
            "created": self.count(CREATE),
            "updated": self.count(UPDATE),
            "unchanged": self.count(UNCHANGED),
            "skipped": self.count(SKIPPED),
            "failed": self.count(FAILED),
        }


NATIVE_RISKS = (Protection.IN_USE, Protection.INDEX_CHILD, Protection.REFERRER)
"""Protections a native policy knows nothing of: what it expires anyway breaks things."""


def native_policy_notes(current_text: str | None, plan: RepositoryPlan, now: datetime) -> list[str]:
    """Pure: where the repository's own native policy would expire an image the sweep keeps for
    a protection ECR doesn't have (in use, a child of a kept index, a referrer of a kept image).

    ECR evaluates every image of the repository, children and referrers included, so the
    policy is evaluated over all of the plan's images.
    """
    if current_text is None:
        return []
    try:
        policy = lifecycle.parse_policy(current_text)
    except lifecycle.PolicyError as error:
        return [f"native lifecycle policy: can't be evaluated by ecr-sweeper ({error})"]
    verdicts = lifecycle.evaluate(policy, [d.image for d in plan.decisions], now)
    notes = []
    for decision in plan.decisions:
        rule = verdicts[decision.image.digest].expired_by
        protection = decision.protection
        if protection is not None and protection in NATIVE_RISKS and rule is not None:
            notes.append(
                f"native lifecycle policy: ECR's own {rule.label} would expire "
                f"{decision.image.label()} ({decision.image.digest}), which the sweep keeps "
                f"({protection.value}: {decision.reason.removeprefix('kept: ')})"
            )
    return notes


def _utc_now() -> datetime:
    return datetime.now(UTC)


class PolicyRollout:
    """Plans or applies one policy to every repository the settings select, concurrently.

    Selection is the sweep's: include/exclude patterns, then the `ecr-sweeper:skip` tag (and a
    repository whose override tags can't be read is skipped, as the sweep skips it).
    `images_in_use` returns the images in use, or why they are unknown. Each repository is
    planned as the sweep plans it, and one where the policy would expire what the sweep keeps
    is skipped unless `force`.
    """

    def __init__(
        self,
        registry: Registry,
        settings: Settings,
        wanted: lifecycle.LifecyclePolicy,
        *,
        images_in_use: Callable[[], Usage],
        workers: int,
        protect_in_use: bool = False,
        force: bool = False,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._registry = registry
        self._settings = settings
        self._wanted = wanted
        self._images_in_use = images_in_use
        self._workers = workers
        self._protect_in_use = protect_in_use
        self._force = force
        self._clock = clock

    def run(self, *, write: bool, only: frozenset[str] | None = None) -> PolicyReport:
        """`only`: write to these repositories at most (the ones a person confirmed)."""
        report = PolicyReport(applied=write)
        try:
            repositories = selected_repositories(self._registry, self._settings)
        except RegistryError as error:
            report.changes.append(
                PolicyChange("*", FAILED, error=error.code, reason=f"listing failed: {error}")
            )
            return report
        usage = self._images_in_use()
        in_use, unknown = usage.in_use, usage.uncertain
        now = self._clock()

        def known() -> Usage:
            """What is in use, without its doubt: --protect-in-use and the warnings say that."""
            return Usage(in_use)

        def one(repository: Repository) -> PolicyChange:
            try:
                tags = self._registry.repository_tags(repository)
                rules = overrides.repository_rules(self._settings, tags)
                if rules.skip:
                    return PolicyChange(
                        repository.name, SKIPPED, reason=f"tagged {overrides.SKIP_TAG}=true"
                    )
            except overrides.OverrideError as error:
                return PolicyChange(
                    repository.name, SKIPPED, reason=f"override tags not applied: {error}"
                )
            except RepositoryGone:
                return PolicyChange(
                    repository.name, SKIPPED, reason="repository was deleted during the run"
                )
            except RegistryError as error:
                return PolicyChange(repository.name, FAILED, error=error.code, reason=str(error))
            return reconcile(
                self._registry,
                repository,
                self._wanted,
                now=now,
                in_use=in_use,
                in_use_unknown=unknown,
                write=write and (only is None or repository.name in only),
                protect_in_use=self._protect_in_use,
                sweep=lambda: sweep_view(self._registry, known, repository, rules, now=now),
                force=self._force,
            )

        with ThreadPoolExecutor(max(1, self._workers), thread_name_prefix="policy") as pool:
            report.changes = list(pool.map(one, repositories))
        return report


NATIVE_FORCE = "nativeLifecyclePolicyForce: true"
MAX_REPORTED_WARNINGS = 20
"""Warnings per repository a run logs and notes; the rest are counted. A record stays far below
CloudWatch Logs' 256 KiB, and the run summary below Lambda's 6 MB response."""


def _first_warnings(warnings: Sequence[str]) -> list[str]:
    shown = list(warnings[:MAX_REPORTED_WARNINGS])
    if len(warnings) > MAX_REPORTED_WARNINGS:
        shown.append(f"... and {len(warnings) - MAX_REPORTED_WARNINGS} more")
    return shown


def enforce(
    context: RunContext,
    repository: Repository,
    result: RepositoryResult,
    sweep: Callable[[], SweepView],
) -> list[str]:
    """The nightly run's hook: put `nativeLifecyclePolicy` on the repository where it differs.

    A no-op unless the setting is set; a dry run only reports. Where the policy would expire
    what the sweep keeps (`sweep`: the repository as the sweep sees it, read only when the
    policy would be written), it is not written, with a warning, unless
    nativeLifecyclePolicyForce. A failure marks the repository failed (the sweep of its images
    still runs) and never stops the run. Returns notes for the repository's plan.
    """
    settings = context.settings
    document = settings.native_lifecycle_policy
    if document is None:
        return []
    change = reconcile(
        context.registry,
        repository,
        lifecycle.parse_native_policy(document),
        now=context.started_at,
        in_use=context.in_use,
        write=not context.dry_run,
        evaluate=False,
        sweep=sweep,
        force=settings.native_lifecycle_policy_force,
        escape=NATIVE_FORCE,
    )
    result.policy_change = change.change
    fields = {
        ev.RUN_ID: context.run_id,
        ev.DRY_RUN: context.dry_run,
        ev.REPOSITORY: repository.name,
        ev.POLICY_CHANGE: change.change,
    }
    warnings = _first_warnings(change.warnings)
    notes = [f"nativeLifecyclePolicy: {warning}" for warning in warnings]
    reported = {ev.WARNINGS: warnings, ev.WARNING_COUNT: len(change.warnings)}
    if change.change == FAILED:
        result.status, result.error_code = FAILED, change.error
        result.reason = f"lifecycle policy not applied: {change.reason}"
        context.log.error(
            f"lifecycle policy not applied to {repository.name}: {change.error}",
            extra={ev.EVENT: ev.POLICY_FAILED, ev.ERROR_CODE: change.error, **fields},
        )
    elif change.change == SKIPPED and change.warnings:
        notes.insert(0, f"nativeLifecyclePolicy not written: {change.reason}")
        if not settings.sweep_images:
            result.reason = notes[0]
        context.log.warning(
            f"lifecycle policy not written to {repository.name}: {change.reason}",
            extra={ev.EVENT: ev.POLICY_SKIPPED, **reported, **fields},
        )
    elif change.change in WRITES:
        written = "" if change.written else "would be "
        context.log.info(
            f"lifecycle policy {written}{change.change}d on {repository.name}",
            extra={
                ev.EVENT: ev.POLICY_APPLIED if change.written else ev.POLICY_WOULD_APPLY,
                ev.PREVIOUS_POLICY_SHA256: text_hash(change.previous_text),
                **fields,
            },
        )
        if change.warnings:
            context.log.warning(
                f"lifecycle policy {written}{change.change}d on {repository.name} although it "
                f"would expire what the sweep keeps ({NATIVE_FORCE})",
                extra={ev.EVENT: ev.POLICY_FORCED, **reported, **fields},
            )
    return notes
