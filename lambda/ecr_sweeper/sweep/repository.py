"""One repository's sweep, step by step: its rules, its native policy, its images, the facts
about them, one plan, a re-check of the tags, then the deletes (or archive moves) in waves.

A self-contained unit: the engine runs one per repository in its worker pool, and a fan-out
child one per repository of its work item. It never raises for a registry error: the result
says what happened. Every step is linear in the repository's images.
"""

from __future__ import annotations

from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core import overrides, planner
from ecr_sweeper.core.model import Image, ImageStatus, Protection, RepositoryPlan
from ecr_sweeper.core.results import FAILED, SKIPPED, UNFINISHED, RepositoryResult
from ecr_sweeper.ports import RegistryError, Repository, RepositoryGone
from ecr_sweeper.sweep import native_policy
from ecr_sweeper.sweep.context import RunContext
from ecr_sweeper.sweep.waves import Archiving, Deletion, audit_all


def sweep_repository(context: RunContext, repository: Repository) -> RepositoryResult:
    """Plan and (unless dry run) delete in one repository."""
    result = RepositoryResult(repository.name)
    try:
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
        else:
            native_policy.enforce(context, repository, result)
            if context.settings.sweep_images:
                _sweep(context, repository, rules, result)
    except RepositoryGone:
        result.status, result.reason = SKIPPED, "repository was deleted during the run"
    except overrides.OverrideError as error:
        result.status, result.reason = SKIPPED, f"override tags not applied: {error}"
    except RegistryError as error:
        result.status, result.reason, result.error_code = FAILED, str(error), error.code
    except Exception as error:  # one repository's surprise must not stop the others
        result.status, result.reason = FAILED, f"{type(error).__name__}: {error}"
        result.error_code = type(error).__name__
    return result


def _sweep(
    context: RunContext,
    repository: Repository,
    rules: overrides.RepositoryRules,
    result: RepositoryResult,
) -> None:
    """List, plan once, re-check the tags (live runs with something to do), record, act."""
    name = repository.name
    images = context.registry.images(name)
    result.images_scanned = len(images)
    facts = _facts(context, repository, images)
    confirmed = None if context.confirmed is None else context.confirmed.get(name, frozenset())
    plan = planner.plan_repository(
        name, images, rules, now=context.started_at, facts=facts, confirmed=confirmed
    )
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


def _facts(
    context: RunContext, repository: Repository, images: list[Image]
) -> planner.RepositoryFacts:
    """Index children and images in use; any doubt makes the repository uncertain."""
    indexes = [image for image in images if image.is_index]
    readable = sorted(i.digest for i in indexes if i.status is ImageStatus.ACTIVE)
    manifests = context.registry.index_manifests(repository.name, readable) if readable else None
    by_digest, by_tag = context.in_use.for_repository(
        repository.registry_id, repository.region, repository.name
    )
    return planner.RepositoryFacts(
        children=manifests.children if manifests else {},
        in_use_by_digest=by_digest,
        in_use_by_tag=by_tag,
        uncertain=context.uncertain or (manifests.problem if manifests else None),
        unreadable_indexes=tuple(
            sorted(i.digest for i in indexes if i.status is not ImageStatus.ACTIVE)
        ),
    )


def _record_plan(context: RunContext, plan: RepositoryPlan, result: RepositoryResult) -> None:
    result.plan = plan
    result.images_expired = len(plan.expired)
    result.bytes_expired = sum(d.image.size_bytes for d in plan.expired)
    result.images_to_archive = len(plan.transitioned)
    for decision in plan.decisions:
        if decision.protection is None:
            continue
        result.kept_by_protection[decision.protection.value] += 1
        if decision.protection is Protection.UNCERTAIN and result.uncertain is None:
            result.uncertain = decision.reason
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
