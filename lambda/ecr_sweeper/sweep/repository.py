"""One repository's sweep, step by step, in two halves. Planning: its rules, its images, the
facts about them, one plan (nothing written). Acting: its native policy, a re-check of the
tags, then the deletes (or archive moves) in waves.

The engine plans every repository of a run before acting on any, so the deletion guard
(core.guard) can judge the run's total first. It runs the halves per repository in its worker
pool, as a fan-out child does for its work item. Neither raises for a registry error: the
result says what happened. Every step is linear in the repository's images.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace

from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core import overrides
from ecr_sweeper.core.model import Protection, RepositoryPlan
from ecr_sweeper.core.results import FAILED, HELD, SKIPPED, SWEPT, UNFINISHED, RepositoryResult
from ecr_sweeper.ports import RegistryError, Repository, RepositoryGone
from ecr_sweeper.sweep import native_policy
from ecr_sweeper.sweep.context import RunContext
from ecr_sweeper.sweep.facts import SweepView, sweep_view
from ecr_sweeper.sweep.waves import Archiving, Deletion, audit_all


@dataclass
class PlannedRepository:
    """One repository after planning: its result so far and its plan (None when it was
    skipped, failed, or its images are not swept)."""

    repository: Repository
    result: RepositoryResult
    plan: RepositoryPlan | None = None
    rules: overrides.RepositoryRules | None = None
    view: SweepView | None = None
    """What the sweep sees and keeps here: listed when planning (images swept), or on the first
    need of native policy enforcement (a policy to write is checked against it)."""

    def sweep_view(self, context: RunContext) -> SweepView:
        if self.view is None:
            assert self.rules is not None, "a skipped repository is never acted on"
            self.view = _view(context, self.repository, self.rules)
        return self.view

    @property
    def would_delete(self) -> int:
        """Images the plan deletes or archives: what the deletion guard counts."""
        if self.plan is None:
            return 0
        return len(self.plan.expired) + len(self.plan.transitioned)


def sweep_repository(context: RunContext, repository: Repository) -> RepositoryResult:
    """Plan and (unless dry run) delete in one repository."""
    return act_on(context, plan_repository(context, repository))


def plan_repository(context: RunContext, repository: Repository) -> PlannedRepository:
    """Read the repository's rules, images and the facts about them, and plan; writes nothing."""
    planned = PlannedRepository(repository, RepositoryResult(repository.name))
    result = planned.result
    with _reported(result):
        rules = overrides.repository_rules(
            context.settings, context.registry.repository_tags(repository)
        )
        for why in rules.ignored:
            context.log.warning(
                f"repository {repository.name}: {why}",
                extra={ev.EVENT: ev.OVERRIDE_IGNORED, ev.REPOSITORY: repository.name},
            )
        if rules.skip:
            result.status, result.reason = SKIPPED, f"tagged {overrides.SKIP_TAG}=true"
            return planned
        planned.rules = rules
        if context.settings.sweep_images:
            view = planned.sweep_view(context)
            result.images_scanned = len(view.images)
            planned.plan = view.plan
            _count_plan(view.plan, result)
    return planned


def act_on(
    context: RunContext, planned: PlannedRepository, *, cap: int | None = None
) -> RepositoryResult:
    """Enforce the native policy and act on the plan (a dry run only audits). `cap`, when
    given, is what the run's plan counted for this repository: a plan that now deletes more is
    held (nothing deleted here)."""
    result = planned.result
    if result.status != SWEPT:
        return result
    with _reported(result):
        notes = native_policy.enforce(
            context, planned.repository, result, lambda: planned.sweep_view(context)
        )
        if planned.plan is not None:
            plan = planned.plan
            if notes:
                plan = replace(plan, notes=(*plan.notes, *notes))
            _act(context, plan, result, cap)
    return result


@contextlib.contextmanager
def _reported(result: RepositoryResult) -> Iterator[None]:
    """A registry error or a surprise becomes the result's status: never raised."""
    try:
        yield
    except RepositoryGone:
        result.status, result.reason = SKIPPED, "repository was deleted during the run"
    except overrides.OverrideError as error:
        result.status, result.reason = SKIPPED, f"override tags not applied: {error}"
    except RegistryError as error:
        result.status, result.reason, result.error_code = FAILED, str(error), error.code
    except Exception as error:  # one repository's surprise must not stop the others
        result.status, result.reason = FAILED, f"{type(error).__name__}: {error}"
        result.error_code = type(error).__name__


def _view(
    context: RunContext, repository: Repository, rules: overrides.RepositoryRules
) -> SweepView:
    """List, learn the facts and plan once."""
    name = repository.name
    confirmed = None if context.confirmed is None else context.confirmed.get(name, frozenset())
    return sweep_view(
        context.registry,
        context.usage,
        repository,
        rules,
        now=context.started_at,
        confirmed=confirmed,
    )


def _act(
    context: RunContext, plan: RepositoryPlan, result: RepositoryResult, cap: int | None
) -> None:
    """Re-check the tags (live runs with something to do), record, act."""
    name = plan.repository
    if cap is not None and not context.dry_run:
        planned = len(plan.expired) + len(plan.transitioned)
        if planned > cap:
            _record_plan(context, plan, result)
            result.status = HELD
            result.reason = (
                f"held: this plan deletes {planned} images here, the run's plan counted {cap}"
            )
            return
    gone: frozenset[str] = frozenset()
    if not context.dry_run and (plan.expired or plan.transitioned):
        plan, gone = plan.rechecked(context.registry.current_tags(name))
    _record_plan(context, plan, result)
    archived = [d for d in plan.transitioned if d.image.digest not in gone]
    expired = [d for d in plan.expired if d.image.digest not in gone]
    if context.dry_run:
        audit_all(context, ev.IMAGE_ARCHIVED_DRY_RUN, name, archived)
        audit_all(context, ev.IMAGE_EXPIRED_DRY_RUN, name, expired)
        return
    if archived:
        Archiving(context, name, result).run(archived, gone)
    if expired and result.status != UNFINISHED:
        Deletion(context, name, result).run(expired, gone)


def _count_plan(plan: RepositoryPlan, result: RepositoryResult) -> None:
    """The plan and its counts on the result (again after the re-check), without a record."""
    result.plan = plan
    result.images_expired = len(plan.expired)
    result.bytes_expired = sum(d.image.size_bytes for d in plan.expired)
    result.images_to_archive = len(plan.transitioned)
    result.kept_by_protection = Counter()
    for decision in plan.decisions:
        if decision.protection is None:
            continue
        result.kept_by_protection[decision.protection.value] += 1
        if decision.protection is Protection.UNCERTAIN and result.uncertain is None:
            result.uncertain = decision.reason


def _record_plan(context: RunContext, plan: RepositoryPlan, result: RepositoryResult) -> None:
    """Count the plan, and write a record for each image a protection kept."""
    _count_plan(plan, result)
    for decision in plan.decisions:
        if decision.protection is None:
            continue
        context.log.info(
            f"kept {plan.repository} {decision.image.label()}: "
            f"{decision.reason.removeprefix('kept: ')}",
            extra={
                ev.EVENT: ev.IMAGE_PROTECTED,
                ev.REPOSITORY: plan.repository,
                ev.IMAGE_DIGEST: decision.image.digest,
                ev.IMAGE_TAGS: list(decision.image.tags),
                ev.PROTECTION: decision.protection.value,
                ev.REASON: decision.reason,
            },
        )
