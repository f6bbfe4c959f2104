"""Runs a sweep: learns the images in use, plans every repository it is handed, lets the
deletion guard judge the run's total, then acts on each plan, in a bounded worker pool within
the time budget, and sums it all up.

Each repository is planned by `repository.plan_repository` and acted on by `repository.act_on`;
one repository's error never stops the others. Results come back in repository order, whichever
finished first. `RegistrySweep` is one registry's run: it chooses the repositories
(`selection`), hands them to the `Sweeper`, and keeps the cursor, so that when the budget runs
out the next run starts with the repositories not finished.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from ecr_sweeper.aws.clients import AwsTarget
from ecr_sweeper.aws.ecr import EcrRegistry
from ecr_sweeper.aws.limiter import AdaptiveLimiter
from ecr_sweeper.aws.ssm import ParameterCursor
from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core.guard import GuardDecision
from ecr_sweeper.core.references import InUse, Usage
from ecr_sweeper.core.results import (
    FAILED,
    HELD,
    SKIPPED,
    SWEPT,
    UNFINISHED,
    RepositoryResult,
    RunSummary,
)
from ecr_sweeper.core.settings import Settings
from ecr_sweeper.ports import Cursor, EventLogger, Registry, RegistryError, Repository
from ecr_sweeper.sweep.budget import TimeBudget
from ecr_sweeper.sweep.context import RunContext
from ecr_sweeper.sweep.guard import RunGuard
from ecr_sweeper.sweep.in_use import References, images_in_use, learn_usage
from ecr_sweeper.sweep.repository import PlannedRepository, act_on, plan_repository
from ecr_sweeper.sweep.selection import first_unfinished, resume_order, selected_repositories

_T = TypeVar("_T")
_R = TypeVar("_R")


GC_FIRST_GENERATION_THRESHOLD = 10_000
"""Allocations between young-generation collections during a run (Python's default: 700)."""


class _FewerCollections:
    """Collect the young generation less often while runs last. A sweep allocates millions of
    short-lived objects while it holds every image of the repositories in flight, and with the
    default threshold the cyclic collector took about a tenth of the run's CPU (measured on
    200 x 500 images). Cycles are still collected. Runs may overlap (one per target): the first
    to start raises the threshold and the last to finish puts the previous one back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs = 0
        self._previous: tuple[int, int, int] = gc.get_threshold()

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._runs == 0:
                self._previous = gc.get_threshold()
                first, *older = self._previous
                gc.set_threshold(max(first, GC_FIRST_GENERATION_THRESHOLD), *older)
            self._runs += 1
        try:
            yield
        finally:
            with self._lock:
                self._runs -= 1
                if self._runs == 0:
                    gc.set_threshold(*self._previous)


_fewer_collections = _FewerCollections()


PLANNING_SHARE = 0.5
"""A live run plans within this share of its time budget, so that time is left to delete what it
planned (planning and deleting each list the repository; deleting adds a listing per wave).
Repositories it could not plan in time are left unfinished, and the next run starts with them."""


@dataclass
class PlannedRun:
    """Every repository of one run, planned, with the context the run acts in."""

    context: RunContext
    repositories: list[PlannedRepository]

    def counts(self) -> list[tuple[str, int]]:
        """(repository, images its plan deletes or archives), as the guard counts them."""
        return [(p.result.repository, p.would_delete) for p in self.repositories]

    @property
    def scanned(self) -> int:
        return sum(p.result.images_scanned for p in self.repositories)


def _writes_info(logger: EventLogger) -> bool:
    """Whether info records reach a handler (stdlib and Powertools loggers both tell)."""
    is_enabled_for = getattr(logger, "isEnabledFor", None)
    return bool(is_enabled_for(logging.INFO)) if callable(is_enabled_for) else True


def _counted(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Sweeper:
    """Sweeps exactly the repositories it is handed, deleting what each one's plan expires.

    Which repositories, and in what order, is the orchestrator's to say (`RegistrySweep` for one
    registry, a fan-out child for its work item)."""

    def __init__(
        self,
        registry: Registry,
        settings: Settings,
        logger: EventLogger,
        *,
        dry_run: bool,
        clock: Callable[[], datetime] = _utc_now,
        tracer: Any | None = None,
        run_id: str | None = None,
        images_in_use: Callable[[], InUse],
        approved: Mapping[str, frozenset[str]] | None = None,
        max_concurrency: int | None = None,
        budget: TimeBudget | None = None,
        uncertain: str | None = None,
        target: str | None = None,
    ) -> None:
        self.registry = registry
        self._target = target
        self.settings = settings
        self.log = logger
        self._clock = clock
        self._tracer = tracer
        self._images_in_use = images_in_use
        self._approved = approved
        self._workers = max_concurrency or settings.max_concurrency
        self._budget = budget or TimeBudget(None)
        self._uncertain = uncertain
        self.summary = RunSummary(
            run_id=run_id or str(uuid.uuid4()), dry_run=dry_run, started_at=clock()
        )

    def run(
        self,
        repositories: Sequence[Repository],
        *,
        resumed_from: str | None = None,
        guard: RunGuard | None = None,
    ) -> RunSummary:
        """Sweep these repositories in this order (`resumed_from`: the one the cursor started
        at); the summary holds one result per repository, in name order. A live run with a
        `guard` plans every repository first and acts only if the guard lets it."""
        planned = self.plan(repositories, resumed_from=resumed_from)
        return self.act(planned, self.judge(guard, [planned]))

    def judge(self, guard: RunGuard | None, runs: Sequence[PlannedRun]) -> GuardDecision | None:
        """The guard's decision over these planned runs (None: a dry run, or no guard)."""
        if guard is None or self.summary.dry_run:
            return None
        return guard.decide(
            self.summary.run_id,
            [count for run in runs for count in run.counts()],
            sum(run.scanned for run in runs),
        )

    def plan(
        self,
        repositories: Sequence[Repository],
        *,
        resumed_from: str | None = None,
        budget: TimeBudget | None = None,
    ) -> PlannedRun:
        """Plan every repository (writing nothing) within `budget`, by default PLANNING_SHARE of
        a live run's budget so that time is left to act; those not reached are left unfinished."""
        self.summary.resumed_from = resumed_from
        self.log.info(
            f"sweeping {_counted(len(repositories), 'repository', 'repositories')} "
            f"with {_counted(self._workers, 'worker', 'workers')}"
            + (f", starting at {resumed_from}" if resumed_from else ""),
            extra={
                ev.EVENT: ev.RUN_STARTED,
                ev.REPOSITORIES_SELECTED: len(repositories),
                ev.RUN_ID: self.summary.run_id,
            },
        )
        if budget is None:
            dry = self.summary.dry_run
            budget = self._budget if dry else self._budget.portion(PLANNING_SHARE)
        with (
            _fewer_collections(),
            ThreadPoolExecutor(1, thread_name_prefix="in-use") as in_use,
            self._pools(),
        ):
            usage = in_use.submit(self._in_trace(self._load_usage))
            context = self._context(usage.result)
            work = self._in_trace(self._plan_one)
            futures = [self._repositories.submit(work, context, r, budget) for r in repositories]
            planned = [future.result() for future in futures]
        return PlannedRun(context, planned)

    def act(
        self,
        planned: PlannedRun,
        guard: GuardDecision | None = None,
        *,
        caps: Mapping[str, int] | None = None,
    ) -> RunSummary:
        """Act on every planned repository; a run the guard held acts as a dry run (its audit
        records say what it would have deleted) and deletes nothing anywhere. `caps`, when
        given, are what the run's own planning counted per repository (the fan-out plans in
        other children): a repository whose plan now deletes more is held."""
        self.summary.guard = guard
        context = planned.context
        if guard is not None and guard.held:
            context = replace(context, dry_run=True)
        with _fewer_collections(), self._pools():
            work = self._in_trace(self._act_one)
            futures = [
                self._repositories.submit(
                    work, context, r, None if caps is None else caps.get(r.result.repository, 0)
                )
                for r in planned.repositories
            ]
            results = [future.result() for future in futures]
        self.summary.results = sorted(results, key=lambda r: r.repository)
        return self._finished()

    def not_run(self, failure: RepositoryResult) -> RunSummary:
        """The summary of a run that had nothing it could sweep: `failure` says why."""
        if self._target is not None:
            failure.target = self._target
        log_repository_summary(self.log, self.summary.run_id, failure, dry_run=self.summary.dry_run)
        self.summary.results.append(failure)
        return self._finished()

    def _finished(self) -> RunSummary:
        self.summary.throttled_calls = self.registry.throttled_calls
        self.summary.lowest_concurrency = self.registry.lowest_concurrency
        self.summary.finished_at = self._clock()
        return self.summary

    def _load_usage(self) -> Usage:
        """Learn which images are in use; if that fails (or the run was told it can't decide),
        nothing is deleted anywhere this run."""
        if self._uncertain is not None:
            return Usage(InUse(), self._uncertain)
        return learn_usage(self._images_in_use, self.log)

    def _context(self, usage: Callable[[], Usage]) -> RunContext:
        return RunContext(
            registry=self.registry,
            settings=self.settings,
            log=self.log,
            run_id=self.summary.run_id,
            dry_run=self.summary.dry_run,
            started_at=self.summary.started_at,
            usage=usage,
            confirmed=self._approved,
            budget=self._budget,
            parallel=self._parallel,
            audited=_writes_info(self.log),
        )

    @contextlib.contextmanager
    def _pools(self) -> Iterator[None]:
        """One unit per repository in the repository pool; delete batches go to a pool of their
        own, so a repository waiting on its batches never holds up the workers that run them.
        While planning, the images in use are learned on a thread of their own meanwhile: a
        unit lists its repository first and waits for them only to plan."""
        with (
            ThreadPoolExecutor(self._workers, thread_name_prefix="repository") as repositories,
            ThreadPoolExecutor(self._workers, thread_name_prefix="delete") as batches,
        ):
            self._repositories = repositories
            self._batches = batches
            yield

    def _parallel(self, work: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        if len(items) <= 1:
            return [work(item) for item in items]
        return list(self._batches.map(self._in_trace(work), items))

    def _plan_one(
        self, context: RunContext, repository: Repository, budget: TimeBudget
    ) -> PlannedRepository:
        if budget.exhausted():
            return PlannedRepository(
                repository,
                RepositoryResult(
                    repository.name,
                    status=UNFINISHED,
                    reason=f"{budget.why} before it started",
                ),
            )
        return plan_repository(context, repository)

    def _act_one(
        self, context: RunContext, planned: PlannedRepository, cap: int | None
    ) -> RepositoryResult:
        if planned.result.status == SWEPT and self._budget.exhausted():
            result = planned.result
            result.status = UNFINISHED
            result.reason = f"{self._budget.why} before its deletes started"
        else:
            with self._subsegment(planned.repository.name) as annotate:
                result = act_on(context, planned, cap=cap)
                annotate(result)
        self._log_repository(result)
        return result

    def _log_repository(self, result: RepositoryResult) -> None:
        if self._target is not None:
            result.target = self._target
        log_repository_result(self.log, self.summary.run_id, result, dry_run=self.summary.dry_run)

    def _in_trace(self, work: Callable[..., _R]) -> Callable[..., _R]:
        """Run `work` in a pool thread under the run's X-Ray segment (X-Ray context is
        per thread), when a Powertools Tracer is given."""
        provider: Any = getattr(self._tracer, "provider", None)
        entity = provider.get_trace_entity() if provider is not None else None
        if entity is None:
            return work

        def traced(*args: Any) -> _R:
            provider.set_trace_entity(entity)
            try:
                return work(*args)
            finally:
                provider.clear_trace_entities()

        return traced

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


_WARNING_EVENTS = {
    SKIPPED: ev.REPOSITORY_SKIPPED,
    UNFINISHED: ev.REPOSITORY_UNFINISHED,
    HELD: ev.REPOSITORY_HELD,
}


def log_repository_result(
    log: EventLogger, run_id: str, result: RepositoryResult, *, dry_run: bool
) -> None:
    """A warning or error record if the repository was not swept, then its summary record."""
    if result.status in (SKIPPED, UNFINISHED, HELD):
        log.warning(
            f"repository {result.repository} {result.status}: {result.reason}",
            extra={ev.EVENT: _WARNING_EVENTS[result.status], ev.REPOSITORY: result.repository},
        )
    elif result.status == FAILED:
        log.error(
            f"repository {result.repository} failed: {result.reason}",
            extra={
                ev.EVENT: ev.REPOSITORY_FAILED,
                ev.REPOSITORY: result.repository,
                ev.ERROR_CODE: result.error_code,
            },
        )
    log_repository_summary(log, run_id, result, dry_run=dry_run)


def log_repository_summary(
    log: EventLogger, run_id: str, result: RepositoryResult, *, dry_run: bool
) -> None:
    """A repository's `repository.summary` record (bounded: `RepositoryResult.to_record`).
    `ecr-sweeper runs show` rebuilds a run's per-repository table from these, so every
    repository of a run gets one, a target or fan-out batch that failed as a whole included."""
    record = {ev.EVENT: ev.REPOSITORY_SUMMARY, ev.RUN_ID: run_id}
    record.update(result.to_record())
    status, done = (
        ("planned" if result.status == SWEPT else result.status, "to delete")
        if dry_run
        else (result.status, "deleted")
    )
    count = result.images_expired if dry_run else result.images_deleted
    log.info(
        f"repository {result.repository}: {status}, {result.images_scanned} images, {count} {done}",
        extra=record,
    )


@dataclass
class RegistryPlan:
    """One registry's run after planning: its repositories in the run's order, or why none
    could be listed."""

    run: PlannedRun | None
    ordered: list[Repository]
    resumed_from: str | None
    failure: RepositoryResult | None = None


@dataclass(frozen=True)
class RegistrySweep:
    """One registry's run: the repositories the settings select, in name order from where the
    last live run's budget ran out (the cursor), swept by `sweeper`; the cursor then keeps
    where this run ran out (a run the guard held leaves it). A registry that can't be listed is
    one failed result, "*"."""

    sweeper: Sweeper
    cursor: Cursor | None = None

    def run(self, guard: RunGuard | None = None) -> RunSummary:
        planned = self.plan()
        runs = [planned.run] if planned.run is not None else []
        return self.act(planned, self.sweeper.judge(guard, runs) if runs else None)

    def plan(self, budget: TimeBudget | None = None) -> RegistryPlan:
        """List, select and order the repositories, and plan them (within `budget`, if given)."""
        sweeper = self.sweeper
        try:
            repositories = selected_repositories(sweeper.registry, sweeper.settings)
        except RegistryError as error:
            sweeper.log.error(
                f"could not list repositories: {error}",
                extra={ev.EVENT: ev.REPOSITORY_FAILED, ev.ERROR_CODE: error.code},
            )
            failure = RepositoryResult("*", status=FAILED, reason=str(error), error_code=error.code)
            return RegistryPlan(None, [], None, failure)
        cursor = self._cursor()
        ordered, resumed_from = resume_order(repositories, cursor.load() if cursor else None)
        run = sweeper.plan(ordered, resumed_from=resumed_from, budget=budget)
        return RegistryPlan(run, ordered, resumed_from)

    def act(self, planned: RegistryPlan, guard: GuardDecision | None) -> RunSummary:
        if planned.run is None:
            assert planned.failure is not None
            self.sweeper.summary.guard = guard
            return self.sweeper.not_run(planned.failure)
        summary = self.sweeper.act(planned.run, guard)
        cursor = self._cursor()
        if cursor is not None and not (guard is not None and guard.held):
            unfinished = first_unfinished(planned.ordered, summary.results)
            if unfinished != planned.resumed_from:
                cursor.save(unfinished)
        if cursor is not None and cursor.problem:
            summary.cursor_failure = cursor.problem
        return summary

    def _cursor(self) -> Cursor | None:
        return None if self.sweeper.summary.dry_run else self.cursor


def sweeper_for(
    target: AwsTarget,
    settings: Settings,
    logger: EventLogger,
    *,
    dry_run: bool,
    tracer: Any | None = None,
    run_id: str | None = None,
    approved: Mapping[str, frozenset[str]] | None = None,
    max_concurrency: int | None = None,
    budget: TimeBudget | None = None,
    cursor_parameter: str | None = None,
    cursor: Cursor | None = None,
    uncertain: str | None = None,
    references: References | None = None,
    label: str | None = None,
) -> RegistrySweep:
    """A registry's run whose every AWS client (ECR, ECS, Lambda, S3, SSM) goes to `target`.

    `cursor_parameter` names the SSM parameter that carries where the last run's time budget
    ran out (the deployed stack creates it); without it every run starts at the first repository.
    A run over several registries passes each one's `cursor` instead (`targets.sweep_targets`).
    `uncertain` says why nothing may be deleted anywhere this run (an SDK too old to trust): every
    repository is then planned and reported as undecidable, which counts as a failure.
    `references` reads the extra references document with the deployment's own credentials
    (`in_use.extra_references`); by default with the target's. `label` (`account/region`)
    names the target on each result when the run sweeps several.

    The clients are built once per run and shared by the workers (boto3 clients are
    thread-safe; sessions are not).
    """
    workers = max_concurrency or settings.max_concurrency
    sweeper = Sweeper(
        EcrRegistry(target.registry_client(), limiter=AdaptiveLimiter(workers)),
        settings,
        logger,
        dry_run=dry_run,
        tracer=tracer,
        run_id=run_id,
        images_in_use=lambda: images_in_use(settings, target.client, references),
        approved=approved,
        max_concurrency=workers,
        budget=budget,
        uncertain=uncertain,
        target=label,
    )
    if cursor is None and cursor_parameter:
        cursor = ParameterCursor(target.client("ssm"), cursor_parameter, logger)
    return RegistrySweep(sweeper, cursor)
