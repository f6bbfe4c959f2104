"""Several regions and accounts from one deployment (settings: regions, accounts).

Each target, an account and region, gets its own clients and its own sweep, one after the other,
within the run's one time budget. A target whose role can't be assumed, or whose sweep fails, is
reported as a failed target and never stops the others. Results carry `account/region`. When the
budget runs out, the next run starts with the target it ran out in, at the repository it stopped
at, and goes on from there (wrapping around), so that no target is left behind night after
night; the cursor that says so stays small at any number of targets (core.cursor).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecr_sweeper.aws import sts
from ecr_sweeper.aws.clients import AwsTarget
from ecr_sweeper.aws.ecr import error_code
from ecr_sweeper.aws.ssm import TargetCursors
from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core.results import FAILED, UNFINISHED, RepositoryResult, RunSummary
from ecr_sweeper.core.settings import Settings
from ecr_sweeper.ports import EventLogger
from ecr_sweeper.sweep.budget import TimeBudget
from ecr_sweeper.sweep.engine import (
    PLANNING_SHARE,
    RegistryPlan,
    RegistrySweep,
    log_repository_summary,
    sweeper_for,
)
from ecr_sweeper.sweep.guard import RunGuard
from ecr_sweeper.sweep.in_use import extra_references

SESSION_NAME = "ecr-sweeper"


@dataclass(frozen=True)
class TargetSpec:
    """One registry to sweep: an account (None: the caller's own) and a region (None: the
    caller's default)."""

    account: str | None
    region: str | None

    def label(self, own_region: str | None) -> str:
        return f"{self.account or 'self'}/{self.region or own_region or 'default'}"


def target_specs(settings: Settings) -> list[TargetSpec]:
    """Every (account, region) the settings name, accounts first; one default target if none."""
    regions: list[str | None] = list(settings.regions) or [None]
    owners: list[str | None] = list(settings.accounts) or [None]
    return [TargetSpec(account, region) for account in owners for region in regions]


def is_multi_target(settings: Settings) -> bool:
    return len(target_specs(settings)) > 1 or bool(settings.accounts)


def role_arns(settings: Settings, partition: str = "aws") -> list[str]:
    """The exact roles the sweeper assumes: one per account, never a wildcard."""
    return [
        sts.role_arn(partition, account, settings.cross_account_role_name)
        for account in settings.accounts
    ]


def resolve(base: AwsTarget, spec: TargetSpec, settings: Settings, partition: str) -> AwsTarget:
    """The AwsTarget of one spec: its region, and its account's role assumed if another."""
    target = base.in_region(spec.region)
    if spec.account is None:
        return target
    arn = sts.role_arn(partition, spec.account, settings.cross_account_role_name)
    return target.assuming(arn, SESSION_NAME)


def sweep_targets(
    base: AwsTarget,
    settings: Settings,
    logger: EventLogger,
    *,
    dry_run: bool,
    run_id: str | None = None,
    tracer: Any | None = None,
    approved: Mapping[str, Mapping[str, frozenset[str]]] | None = None,
    max_concurrency: int | None = None,
    budget: TimeBudget | None = None,
    partition: str = "aws",
    uncertain: str | None = None,
    cursor_parameter: str | None = None,
    guard: RunGuard | None = None,
) -> RunSummary:
    """Plan every target in turn, let the `guard` judge the whole run's plan, then act on each
    target; one summary whose results name their target, in the settings' order of targets.

    `uncertain` (an SDK too old to trust) makes every target delete nothing, as `sweeper_for`.
    `approved` maps a target label to the digests a person confirmed per repository.
    `cursor_parameter` (the stack's SSM parameter, in the caller's own account and region) keeps
    the cursor: a live run starts with the first target the last one left unfinished, at its
    first unfinished repository, and goes on through the others, wrapping around. A cursor that
    can't be read or written makes the run a failure (`cursor_failure`).
    """
    shared_budget = budget or TimeBudget(None)
    combined = RunSummary(
        run_id=run_id or str(uuid.uuid4()), dry_run=dry_run, started_at=datetime.now(UTC)
    )
    own_region = base.effective_region()
    specs = {spec.label(own_region): spec for spec in target_specs(settings)}
    cursors = (
        TargetCursors(base.client("ssm"), cursor_parameter, logger, list(specs))
        if cursor_parameter and not dry_run
        else None
    )
    references = extra_references(settings, base.client)  # once, with our own credentials
    ordered = cursors.order() if cursors else list(specs)
    by_target: dict[str, list[RepositoryResult]] = {}
    planned: dict[str, tuple[RegistrySweep, RegistryPlan]] = {}
    planning = shared_budget.portion(PLANNING_SHARE) if not dry_run else shared_budget
    for label in ordered:
        try:
            sweep = sweeper_for(
                resolve(base, specs[label], settings, partition),
                settings,
                logger,
                dry_run=dry_run,
                tracer=tracer,
                run_id=combined.run_id,
                approved=None if approved is None else approved.get(label, {}),
                max_concurrency=max_concurrency,
                budget=shared_budget,
                cursor=cursors.cursor(label) if cursors else None,
                uncertain=uncertain,
                references=references,
                label=label,
            )
            planned[label] = (sweep, sweep.plan(planning))
        except (ClientError, BotoCoreError) as error:
            failure = _failed_target(logger, label, error)
            log_repository_summary(logger, combined.run_id, failure, dry_run=dry_run)
            by_target[label] = [failure]
    runs = [plan.run for _, plan in planned.values() if plan.run is not None]
    decision = None
    if guard is not None and not dry_run:
        counts = [
            (f"{label} {name}", count)
            for label, (_, plan) in planned.items()
            if plan.run is not None
            for name, count in plan.run.counts()
        ]
        decision = guard.decide(combined.run_id, counts, sum(run.scanned for run in runs))
    combined.guard = decision
    lowest: list[int] = []
    for label, (sweep, plan) in planned.items():
        summary = sweep.act(plan, decision)
        lowest.append(summary.lowest_concurrency)
        combined.throttled_calls += summary.throttled_calls
        by_target[label] = summary.results  # each result names its target (`label`)
    if cursors and not (decision is not None and decision.held):
        cursors.save(next((t for t in ordered if _unfinished(by_target[t])), None))
    combined.cursor_failure = cursors.problem if cursors else None
    combined.results = [result for label in specs for result in by_target[label]]
    combined.lowest_concurrency = min(lowest, default=0)
    combined.finished_at = datetime.now(UTC)
    return combined


def _failed_target(
    logger: EventLogger, label: str, error: ClientError | BotoCoreError
) -> RepositoryResult:
    code = error_code(error)
    logger.error(
        f"target {label} failed: {code}: {error}",
        extra={ev.EVENT: ev.TARGET_FAILED, ev.TARGET: label, ev.ERROR_CODE: code},
    )
    return RepositoryResult("*", status=FAILED, reason=str(error), error_code=code, target=label)


def _unfinished(results: list[RepositoryResult]) -> bool:
    return any(result.status == UNFINISHED for result in results)
