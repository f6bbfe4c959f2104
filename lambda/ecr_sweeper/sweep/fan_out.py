"""The steps of the Step Functions fan-out (settings: fanOut): List, Plan (one child execution
per batch of repositories), Check (the deletion guard over the whole run), Sweep (one child
execution per batch again) and Summarize. A dry run goes from List straight to Sweep.

Each run keeps its documents under `runs/<runId>/` in the run bucket: `run.json` (what List
found), `in-use/<account>/<region>.json` (each target's images in use, read once by List, then
by every child of that target), `manifest.json`
(the work items, when too many to travel inline), `plans/<batch>.json` (each planning child's
per-repository results and the images each repository's plan deletes), `guard.json` (Check's
decision) and `results/<batch>.json` (each sweeping child's per-repository results). List
measures in bytes what it puts in the state, its output and each child's input, and keeps both
under PAYLOAD_LIMIT_BYTES (below Step Functions' 256 KB); the other states carry only ids and
counts.

A live run's total is known before any child deletes: Check sums the plans and decides
(core.guard), and if the run holds, the state machine skips the sweeping Map. A sweeping child
still reads the decision and acts as a dry run unless it says proceed, and re-checks each
repository's plan against the count planned for it: a repository whose plan grew is held (nothing
deleted there), so a held run can't be split into small approved-looking pieces.

Every child hands its work item's repositories to the same `engine.Sweeper` (and so the same
`repository.sweep_repository` unit) as the single Lambda, so the rules, the logs and the failure
isolation are the same.

A child's input is untrusted: it takes from it only what List decided, and checks that against
the run document List wrote, whose SHA-256 travels in the execution's state (`child_run`), not
in the item. The run document holds each target's in-use snapshot digest in turn. Dry run,
repository ARNs, the target and the selection are derived again from the deployed settings
(`checked_batch`); anything else is refused (BatchError) and nothing is deleted.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecr_sweeper.aws import s3
from ecr_sweeper.aws.clients import AwsTarget
from ecr_sweeper.aws.ecr import EcrRegistry, error_code
from ecr_sweeper.aws.limiter import AdaptiveLimiter
from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core.guard import GuardDecision
from ecr_sweeper.core.references import InUse, Usage
from ecr_sweeper.core.results import FAILED, DeleteFailure, RepositoryResult, RunSummary
from ecr_sweeper.core.settings import Settings
from ecr_sweeper.ports import ApprovalStore, EventLogger, RegistryError, Repository
from ecr_sweeper.sweep.budget import TimeBudget
from ecr_sweeper.sweep.engine import PlannedRun, Sweeper, log_repository_summary
from ecr_sweeper.sweep.guard import RunGuard
from ecr_sweeper.sweep.in_use import (
    References,
    UsageUnavailable,
    extra_references,
    images_in_use,
    learn_usage,
)
from ecr_sweeper.sweep.selection import selected, selected_repositories
from ecr_sweeper.sweep.targets import TargetSpec, is_multi_target, resolve, target_specs

BUCKET_VARIABLE = "SWEEPER_RUN_BUCKET"
"""The Lambda environment variable naming the run bucket (the stack sets it)."""

STATE_LIMIT_BYTES = 262_144
"""Step Functions' limit on one state's input or output, in bytes of UTF-8 JSON."""

PAYLOAD_LIMIT_BYTES = 200_000
"""The most List lets a state payload it makes weigh (`encoded_size`): its own output with the
work items inline (more goes by S3 manifest, which the Map reads with its ItemReader), and each
child's input (a batch is cut at this size as well as at `fanOutBatchSize`). The margin under
STATE_LIMIT_BYTES is for what is added after List measures: the Lambda integration's response
around List's output and the fields later states add to it (Check's `guard`); `encoded_size`
counts whitespace and escapes too, so it overstates what Step Functions counts (by under 5%)."""

RUN_DOCUMENT = "run.json"
IN_USE_FOLDER = "in-use/"
MANIFEST_DOCUMENT = "manifest.json"
RESULTS_FOLDER = "results/"
PLANS_FOLDER = "plans/"
GUARD_DOCUMENT = "guard.json"
RUNS_FOLDER = "runs/"


def run_prefix(run_id: str) -> str:
    return f"{RUNS_FOLDER}{run_id}/"


def in_use_key(run_id: str, label: str) -> str:
    """Where List puts one target's images in use (`label` is account/region)."""
    return f"{run_prefix(run_id)}{IN_USE_FOLDER}{label}.json"


class BatchError(ValueError):
    """A work item or run document that is not what List writes."""


# -- the in-use snapshot ---------------------------------------------------------------------------


def in_use_document(in_use: InUse, uncertain: str | None) -> dict[str, Any]:
    """The images in use as JSON; `uncertain` (why nothing may be deleted) travels with it."""
    return {
        "uncertain": uncertain,
        "repositories": [
            {
                "account": account,
                "region": region,
                "repository": repository,
                "byDigest": by_digest,
                "byTag": by_tag,
            }
            for (account, region, repository), (by_digest, by_tag) in sorted(
                in_use.by_repository.items()
            )
        ],
    }


def in_use_from_document(document: Any) -> Usage:
    """Read `in_use_document` back; anything malformed raises BatchError (nothing deleted)."""
    try:
        in_use = InUse()
        for entry in document["repositories"]:
            key = (str(entry["account"]), str(entry["region"]), str(entry["repository"]))
            in_use.by_repository[key] = (
                {str(k): str(v) for k, v in entry["byDigest"].items()},
                {str(k): str(v) for k, v in entry["byTag"].items()},
            )
        uncertain = document["uncertain"]
    except (KeyError, TypeError, AttributeError) as error:
        raise BatchError(f"in-use snapshot: malformed ({error!r})") from error
    return Usage(in_use, None if uncertain is None else str(uncertain))


# -- results ---------------------------------------------------------------------------------------


def result_from_dict(data: dict[str, Any]) -> RepositoryResult:
    """A RepositoryResult from `RepositoryResult.to_dict()` (decisions and notes aside)."""
    return RepositoryResult(
        str(data["repository"]),
        target=data.get("target"),
        status=str(data["status"]),
        reason=data.get("reason"),
        error_code=data.get("errorCode"),
        uncertain=data.get("uncertain"),
        images_scanned=int(data["imagesScanned"]),
        images_expired=int(data["imagesExpired"]),
        images_deleted=int(data["imagesDeleted"]),
        bytes_expired=int(data["bytesExpired"]),
        bytes_reclaimed=int(data["bytesReclaimed"]),
        delete_failures=[
            DeleteFailure(dict(f["imageId"]), str(f["failureCode"]), str(f["failureReason"]))
            for f in data["deleteFailures"]
        ],
        kept_by_protection=Counter({str(k): int(v) for k, v in data["keptByProtection"].items()}),
    )


def encoded_size(value: Any) -> int:
    """Bytes of `value` as JSON with Python's default spacing and escapes (as Lambda's runtime
    and moto send it): never less than the compact UTF-8 Step Functions counts."""
    return len(json.dumps(value).encode("utf-8"))


def work_entry(repository: Repository) -> dict[str, str]:
    """One repository as a work item lists it (its child checks the ARN against the name)."""
    return {"name": repository.name, "arn": repository.arn}


_SEPARATOR = encoded_size([0, 0]) - encoded_size([0]) - encoded_size(0)
"""What `encoded_size` counts between two entries of a list (", ")."""


def batches(
    repositories: Sequence[Repository],
    size: int,
    *,
    max_bytes: int = PAYLOAD_LIMIT_BYTES,
    overhead: int = len("[]"),
) -> list[list[Repository]]:
    """Consecutive groups of repositories, in name order, each of at most `size` repositories
    and at most `max_bytes` once encoded: `overhead` (what holds the list of their
    `work_entry`s, with it empty: a child's input, or by default the bare list) plus the
    entries and the separators between them.

    A count alone is not enough: with long names, 1,000 repositories pass the state limit.
    A repository whose entry alone doesn't fit raises BatchError (with ECR's 256-character
    names it can't happen under PAYLOAD_LIMIT_BYTES).
    """
    if size < 1:
        raise ValueError(f"batches: size must be at least 1, got {size}")
    room = max_bytes - overhead
    if room <= 0:
        raise ValueError(
            f"batches: an overhead of {overhead} bytes leaves no room under {max_bytes}"
        )
    groups: list[list[Repository]] = []
    group: list[Repository] = []
    used = 0
    for repository in sorted(repositories, key=lambda r: r.name):
        cost = encoded_size(work_entry(repository))  # and a separator after the first
        if cost > room:
            raise BatchError(
                f"repository {repository.name!r}: its work item entry alone is {cost} bytes, "
                f"more than the {room} a child's input has for it (limit {max_bytes} bytes)"
            )
        if group and (len(group) == size or used + _SEPARATOR + cost > room):
            groups.append(group)
            group, used = [], 0
        used += cost + (_SEPARATOR if group else 0)
        group.append(repository)
    if group:
        groups.append(group)
    return groups


_WIDEST_BATCH_NUMBER = 10**12 - 1
"""Stands in for a batch's number while its size is reckoned: no run has more batches."""


def _child_overhead(run_id: str, dry_run: bool, target: dict[str, Any]) -> int:
    """The bytes of a child's input (`child_input` in infra/fan_out.py: the item and the run)
    with no repository: what each of its batches has on top of its repositories' entries."""
    item = {
        "runId": run_id,
        "dryRun": dry_run,
        "batch": _WIDEST_BATCH_NUMBER,
        "target": target,
        "repositories": [],
    }
    return encoded_size({"item": item, "run": {"runId": run_id, "sha256": "0" * 64}})


# -- List ------------------------------------------------------------------------------------------


def list_work(
    base: AwsTarget,
    settings: Settings,
    logger: EventLogger,
    *,
    run_id: str,
    dry_run: bool,
    bucket: str,
    started_at: datetime,
    partition: str = "aws",
) -> dict[str, Any]:
    """List every target's selected repositories, snapshot each target's images in use, and
    write the work items. Returns the state for the Map: the items inline, or the manifest's key.

    A target that can't be listed (its role can't be assumed, ...) is recorded as failed; the
    others go on.
    """
    objects = base.client("s3")
    prefix = run_prefix(run_id)
    own_region = base.effective_region()
    run: dict[str, Any] = {
        "runId": run_id,
        "dryRun": dry_run,
        "startedAt": started_at.isoformat(),
        "multiTarget": is_multi_target(settings),
        "batches": [],
        "failures": [],
        "snapshots": {},
    }
    items: list[dict[str, Any]] = []
    selected_count = 0
    references = extra_references(settings, base.client)  # once, with our own credentials
    for spec in target_specs(settings):
        label = spec.label(own_region)
        try:
            target = resolve(base, spec, settings, partition)
            registry = EcrRegistry(target.registry_client(), limiter=AdaptiveLimiter(1))
            selected = selected_repositories(registry, settings)
        except (RegistryError, ClientError, BotoCoreError) as failure:
            code = failure.code if isinstance(failure, RegistryError) else error_code(failure)
            logger.error(
                f"could not list repositories of {label}: {code}",
                extra={ev.EVENT: ev.REPOSITORY_FAILED, ev.ERROR_CODE: code, ev.TARGET: label},
            )
            run["failures"].append({"target": label, "errorCode": code, "reason": str(failure)})
            continue
        where = {"account": spec.account, "region": spec.region, "label": label}
        groups = batches(
            selected,
            settings.fan_out_batch_size,
            overhead=_child_overhead(run_id, dry_run, where),
        )
        if groups:
            snapshot = _snapshot(settings, target, logger, references)
            key = in_use_key(run_id, label)
            run["snapshots"][label] = s3.write_json(objects, bucket, key, snapshot)
        selected_count += len(selected)
        for group in groups:
            run["batches"].append({"target": label, "repositories": [r.name for r in group]})
            items.append(
                {
                    "runId": run_id,
                    "dryRun": dry_run,
                    "batch": len(items),
                    "target": where,
                    "repositories": [work_entry(r) for r in group],
                }
            )
    digest = s3.write_json(objects, bucket, prefix + RUN_DOCUMENT, run)
    logger.info(
        f"listed {selected_count} repositories in {len(items)} batches",
        extra={
            ev.EVENT: ev.RUN_STARTED,
            ev.REPOSITORIES_SELECTED: selected_count,
            ev.RUN_ID: run_id,
        },
    )
    state: dict[str, Any] = {
        "runId": run_id,
        "dryRun": dry_run,
        "batches": len(items),
        "run": {"runId": run_id, "sha256": digest},
    }
    inline = {**state, "items": items}
    if encoded_size(inline) <= PAYLOAD_LIMIT_BYTES:
        return inline
    s3.write_json(objects, bucket, prefix + MANIFEST_DOCUMENT, items)
    return {**state, "bucket": bucket, "manifestKey": prefix + MANIFEST_DOCUMENT}


def _snapshot(
    settings: Settings, target: AwsTarget, logger: EventLogger, references: References | None
) -> dict[str, Any]:
    """The images in use, or (fail-closed) why none could be read: then nothing is deleted."""
    usage = learn_usage(lambda: images_in_use(settings, target.client, references), logger)
    return in_use_document(usage.in_use, usage.uncertain)


# -- Sweep -----------------------------------------------------------------------------------------


ITEM_KEYS = frozenset({"runId", "dryRun", "batch", "target", "repositories"})
"""Exactly the keys List writes into a work item."""


def child_run(event: Any) -> tuple[Any, str, str]:
    """(work item, run id, run document SHA-256) of a child's input: the item as the Map read
    it, and the run from the execution's own state (List's output), never from the item."""
    try:
        item, run = event["item"], event["run"]
        run_id, digest = run["runId"], run["sha256"]
    except (KeyError, TypeError) as error:
        raise BatchError(
            f"child input: expected {{item, run: {{runId, sha256}}}} as the Map passes it, "
            f"missing {error}"
        ) from None
    if not isinstance(run_id, str) or not run_id or not isinstance(digest, str):
        raise BatchError("child input: run.runId and run.sha256 must be non-empty strings")
    return item, run_id, digest


@dataclass(frozen=True)
class CheckedBatch:
    """A work item once checked: exactly a batch List decided, with what the settings derive."""

    number: int
    spec: TargetSpec
    label: str
    repositories: list[Repository]
    dry_run: bool
    snapshot_sha256: str


def checked_batch(
    item: Any,
    run_id: str,
    run: Any,
    settings: Settings,
    *,
    account: str,
    region: str | None,
    partition: str,
) -> CheckedBatch:
    """The item, if it is exactly one of the batches of `run` (List's run document, already
    checked against its digest); else BatchError, and nothing is deleted.

    Dry run comes from the settings and List's run document only; each repository's ARN (which
    its tags are read from) is derived from its name, target, `account` and `region` (the
    function's own) and must be the item's; the target must be one the settings name.
    """
    if not isinstance(item, dict) or set(item) != ITEM_KEYS:
        keys = sorted(item) if isinstance(item, dict) else type(item).__name__
        raise BatchError(f"work item: expected the keys {sorted(ITEM_KEYS)}, got {keys}")
    number, where = item["batch"], item["target"]
    if item["runId"] != run_id:
        raise BatchError(f"work item: runId {item['runId']!r} is not this execution's {run_id!r}")
    recorded = run["batches"]
    if type(number) is not int or not 0 <= number < len(recorded):
        raise BatchError(f"work item: batch {number!r} is not one of the run's {len(recorded)}")
    dry_run = settings.dry_run or run["dryRun"] is True
    if item["dryRun"] is not dry_run:
        raise BatchError(
            f"work item: dryRun {item['dryRun']!r}, but the settings and the run say {dry_run}"
        )
    specs = {spec.label(region): spec for spec in target_specs(settings)}
    label = where.get("label") if isinstance(where, dict) else None
    spec = specs.get(label) if isinstance(label, str) else None
    if spec is None or where != {"account": spec.account, "region": spec.region, "label": label}:
        raise BatchError(f"work item: target {where!r} is not one the settings name")
    try:
        names = [str(r["name"]) for r in item["repositories"]]
        arns = [str(r["arn"]) for r in item["repositories"]]
    except (KeyError, TypeError) as error:
        raise BatchError(f"work item: malformed repositories ({error!r})") from None
    batch = recorded[number]
    if batch != {"target": label, "repositories": names}:
        raise BatchError(f"work item: batch {number} is not the batch List wrote for this run")
    owner, where_region = spec.account or account, spec.region or region
    repositories = [
        Repository(name, f"arn:{partition}:ecr:{where_region}:{owner}:repository/{name}")
        for name in names
    ]
    forged = [r.name for r, arn in zip(repositories, arns, strict=True) if r.arn != arn]
    if forged:
        raise BatchError(f"work item: the ARN given for {forged[0]!r} is not that repository's")
    return CheckedBatch(
        number, spec, str(label), repositories, dry_run, str(run["snapshots"][label])
    )


def _batch_sweeper(
    base: AwsTarget,
    settings: Settings,
    logger: EventLogger,
    event: Any,
    *,
    bucket: str,
    account: str,
    tracer: Any | None,
    budget: TimeBudget | None,
    partition: str,
) -> tuple[_Batch, Sweeper]:
    """A child's input, checked (`child_run`, `checked_batch`, the digests of the run document
    and the in-use snapshot), and the Sweeper for its target with that snapshot."""
    item, run_id, run_sha256 = child_run(event)
    objects = base.client("s3")
    prefix = run_prefix(run_id)
    try:
        run = s3.read_json(objects, bucket, prefix + RUN_DOCUMENT, sha256=run_sha256)
        checked = checked_batch(
            item,
            run_id,
            run,
            settings,
            account=account,
            region=base.effective_region(),
            partition=partition,
        )
        document = s3.read_json(
            objects, bucket, in_use_key(run_id, checked.label), sha256=checked.snapshot_sha256
        )
    except s3.StorageError as error:
        raise BatchError(f"refused: {error}; List wrote otherwise") from error
    usage = in_use_from_document(document)
    target = resolve(base, checked.spec, settings, partition)

    def snapshot() -> InUse:
        if usage.uncertain is not None:
            raise UsageUnavailable(usage.uncertain)
        return usage.in_use

    workers = settings.max_concurrency
    sweeper = Sweeper(
        EcrRegistry(target.registry_client(), limiter=AdaptiveLimiter(workers)),
        settings,
        logger,
        dry_run=checked.dry_run,
        tracer=tracer,
        run_id=run_id,
        images_in_use=snapshot,
        max_concurrency=workers,
        budget=budget,
        target=checked.label if is_multi_target(settings) else None,
    )
    return _Batch(run_id, checked, objects, bucket), sweeper


@dataclass(frozen=True)
class _Batch:
    """A checked batch of one run, and where its documents go."""

    run_id: str
    checked: CheckedBatch
    objects: Any
    bucket: str

    def key(self, folder: str) -> str:
        return f"{run_prefix(self.run_id)}{folder}{self.checked.number:06d}.json"

    def write(self, folder: str, results: list[RepositoryResult], **extra: Any) -> None:
        document = {"batch": self.checked.number, "results": [r.to_dict() for r in results]}
        s3.write_json(self.objects, self.bucket, self.key(folder), {**document, **extra})


def plan_batch(
    base: AwsTarget,
    settings: Settings,
    logger: EventLogger,
    event: Any,
    *,
    bucket: str,
    account: str,
    tracer: Any | None = None,
    budget: TimeBudget | None = None,
    partition: str = "aws",
) -> dict[str, Any]:
    """Plan: plan one work item's repositories (nothing written to ECR, nothing audited); write
    each repository's result and the images its plan deletes or archives; return the counts.

    The input is checked as Sweep's is (`sweep_batch`); only the repositories the settings
    select are planned.
    """
    batch, sweeper = _batch_sweeper(
        base, settings, logger, event,
        bucket=bucket, account=account, tracer=tracer, budget=budget, partition=partition,
    )  # fmt: skip
    repositories = selected(batch.checked.repositories, settings)
    planned = sweeper.plan(repositories, budget=budget or TimeBudget(None))
    results = _labelled(planned, batch.checked.label, settings)
    batch.write(
        PLANS_FOLDER,
        results,
        wouldDelete=dict(planned.counts()),
        throttledCalls=sweeper.registry.throttled_calls,
        lowestConcurrency=sweeper.registry.lowest_concurrency,
    )
    return {
        "batch": batch.checked.number,
        "repositories": len(results),
        "wouldDelete": sum(count for _, count in planned.counts()),
        "imagesScanned": planned.scanned,
    }


def _labelled(planned: PlannedRun, label: str, settings: Settings) -> list[RepositoryResult]:
    results = [p.result for p in planned.repositories]
    if is_multi_target(settings):
        for result in results:
            result.target = label
    return results


def sweep_batch(
    base: AwsTarget,
    settings: Settings,
    logger: EventLogger,
    event: Any,
    *,
    bucket: str,
    account: str,
    tracer: Any | None = None,
    budget: TimeBudget | None = None,
    partition: str = "aws",
) -> dict[str, Any]:
    """Sweep one work item's repositories; write their results to S3 and return only counts.

    `event` is the child's input (`child_run`), untrusted: the item must be exactly a batch of
    the run document List wrote (`checked_batch`), and the run document and the in-use snapshot
    must be the ones List wrote (their digests); else BatchError, and nothing is deleted. Only
    the repositories the settings select are swept, whatever the item names. `account` is the
    function's own. A live child acts only on Check's decision to proceed (else as a dry run),
    and holds a repository whose plan deletes more than its planning child counted.

    A target whose role can't be assumed now fails the invocation: the Map retries it, then
    Summarize reports the batch's repositories as failed.
    """
    batch, sweeper = _batch_sweeper(
        base, settings, logger, event,
        bucket=bucket, account=account, tracer=tracer, budget=budget, partition=partition,
    )  # fmt: skip
    decision, caps = (None, None) if batch.checked.dry_run else _guarded(batch)
    planned = sweeper.plan(selected(batch.checked.repositories, settings))
    summary = sweeper.act(planned, decision, caps=caps)
    batch.write(
        RESULTS_FOLDER,
        _labelled(planned, batch.checked.label, settings),
        throttledCalls=summary.throttled_calls,
        lowestConcurrency=summary.lowest_concurrency,
    )
    return {
        "batch": batch.checked.number,
        "repositories": len(summary.results),
        "imagesDeleted": summary.total("images_deleted"),
        "failures": summary.failures,
    }


_NOT_DECIDED = GuardDecision(
    held=True,
    would_delete=0,
    scanned=0,
    reason="the run's deletion guard decision could not be read; nothing is deleted",
)


def _guarded(batch: _Batch) -> tuple[GuardDecision, dict[str, int]]:
    """Check's decision and what the planning child counted per repository. Fail-closed: no
    decision holds the batch, and a repository without a planned count may delete nothing."""
    prefix = run_prefix(batch.run_id)
    try:
        decision = GuardDecision.from_dict(
            s3.read_json(batch.objects, batch.bucket, prefix + GUARD_DOCUMENT)
        )
    except (ClientError, s3.StorageError, KeyError, TypeError, ValueError):
        return _NOT_DECIDED, {}
    try:
        plan = s3.read_json(batch.objects, batch.bucket, batch.key(PLANS_FOLDER))
        caps = {str(name): int(count) for name, count in plan["wouldDelete"].items()}
    except (ClientError, s3.StorageError, KeyError, TypeError, ValueError, AttributeError):
        caps = {}
    return decision, caps


# -- Check -----------------------------------------------------------------------------------------


def check_run(
    base: AwsTarget,
    settings: Settings,
    logger: EventLogger,
    *,
    run_id: str,
    bucket: str,
    approvals: ApprovalStore | None = None,
) -> dict[str, Any]:
    """Check: the deletion guard over every planning child's counts; writes the decision for
    the sweeping children and Summarize, and returns whether the run holds.

    A batch whose planning child failed counts nothing here; its repositories then have no
    planned count, so its sweeping child deletes nothing in them.
    """
    objects = base.client("s3")
    prefix = run_prefix(run_id)
    run = s3.read_json(objects, bucket, prefix + RUN_DOCUMENT)
    multi = bool(run["multiTarget"])
    counts: list[tuple[str, int]] = []
    scanned = 0
    for key in s3.keys(objects, bucket, prefix + PLANS_FOLDER):
        document = s3.read_json(objects, bucket, key)
        for result in document["results"]:
            scanned += int(result["imagesScanned"])
        targets = {str(r["repository"]): r.get("target") for r in document["results"]}
        for name, count in document["wouldDelete"].items():
            where = targets.get(str(name)) if multi else None
            counts.append((f"{where} {name}" if where else str(name), int(count)))
    decision = RunGuard(settings, logger, approvals=approvals).decide(run_id, counts, scanned)
    s3.write_json(objects, bucket, prefix + GUARD_DOCUMENT, decision.to_dict())
    return {"runId": run_id, "held": decision.held, "wouldDelete": decision.would_delete}


# -- Summarize -------------------------------------------------------------------------------------

BATCH_FAILED = "BatchFailed"
"""The error code of a repository whose fan-out batch reported no result."""


def summarize(
    target: AwsTarget,
    logger: EventLogger,
    *,
    run_id: str,
    bucket: str,
    finished_at: datetime,
) -> RunSummary:
    """The run summary from List's run document and every child's results.

    A batch that wrote no results (its child failed after the Map's retries) reports each of its
    repositories as failed, so the failure shows up in the summary, the metrics and the alarms.
    Every repository no sweeping child logged (those of a failed batch or target, and all of a
    held run, whose Sweep Map never ran) gets its `repository.summary` record here.
    """
    objects = target.client("s3")
    prefix = run_prefix(run_id)
    run = s3.read_json(objects, bucket, prefix + RUN_DOCUMENT)
    summary = RunSummary(
        run_id=run_id,
        dry_run=bool(run["dryRun"]),
        started_at=datetime.fromisoformat(run["startedAt"]),
    )
    if not summary.dry_run:
        summary.guard = GuardDecision.from_dict(
            s3.read_json(objects, bucket, prefix + GUARD_DOCUMENT)
        )
    # A held run swept nothing: its repositories are what the planning children found.
    folder = PLANS_FOLDER if summary.guard is not None and summary.guard.held else RESULTS_FOLDER
    multi = bool(run["multiTarget"])
    # What no sweeping child logged: failed targets and batches, and every plan of a held run.
    unlogged = [
        RepositoryResult(
            "*",
            status=FAILED,
            reason=failure["reason"],
            error_code=failure["errorCode"],
            target=failure["target"] if multi else None,
        )
        for failure in run["failures"]
    ]
    reported: dict[int, dict[str, Any]] = {}
    for key in s3.keys(objects, bucket, prefix + folder):
        document = s3.read_json(objects, bucket, key)
        reported[int(document["batch"])] = document
    lowest: list[int] = []
    for number, batch in enumerate(run["batches"]):
        document = reported.get(number)
        if document is None:
            unlogged.extend(
                RepositoryResult(
                    name,
                    status=FAILED,
                    reason="its fan-out batch reported no result (the child execution failed)",
                    error_code=BATCH_FAILED,
                    target=batch["target"] if multi else None,
                )
                for name in batch["repositories"]
            )
            continue
        results = [result_from_dict(r) for r in document["results"]]
        (unlogged if folder == PLANS_FOLDER else summary.results).extend(results)
        summary.throttled_calls += int(document["throttledCalls"])
        lowest.append(int(document["lowestConcurrency"]))
    unlogged.sort(key=lambda r: (r.target or "", r.repository))
    for result in unlogged:
        log_repository_summary(logger, run_id, result, dry_run=summary.dry_run)
    summary.results.extend(unlogged)
    summary.results.sort(key=lambda r: (r.target or "", r.repository))
    summary.lowest_concurrency = min(lowest, default=0)
    summary.finished_at = finished_at
    return summary
