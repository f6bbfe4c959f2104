"""Turns a run summary into CloudWatch metrics (EMF through Powertools Metrics)."""

from __future__ import annotations

from aws_lambda_powertools import Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from ecr_sweeper.core import metrics_catalog as names
from ecr_sweeper.core.results import FAILED, RunSummary


def publish_run_metrics(metrics: Metrics, summary: RunSummary) -> None:
    """Run-level metrics only: per-repository detail lives in the logs (cheaper, no cardinality)."""
    metrics.add_dimension(
        names.MODE_DIMENSION, names.MODE_DRY_RUN if summary.dry_run else names.MODE_LIVE
    )
    count = MetricUnit.Count
    values: list[tuple[str, MetricUnit, float]] = [
        (names.REPOSITORIES_SCANNED, count, summary.repositories_swept),
        (names.IMAGES_SCANNED, count, summary.total("images_scanned")),
        (names.IMAGES_EXPIRED, count, summary.total("images_expired")),
        (names.IMAGES_DELETED, count, summary.total("images_deleted")),
        (names.IMAGES_KEPT, count, summary.total("images_kept")),
        (names.BYTES_EXPIRED, MetricUnit.Bytes, summary.total("bytes_expired")),
        (names.BYTES_RECLAIMED, MetricUnit.Bytes, summary.total("bytes_reclaimed")),
        (names.IMAGES_ARCHIVED, count, summary.total("images_archived")),
        (names.BYTES_ARCHIVED, MetricUnit.Bytes, summary.total("bytes_archived")),
        (names.DELETE_FAILURES, count, summary.delete_failures),
        (
            names.FAILED_REPOSITORIES,
            count,
            summary.failed_repositories + summary.uncertain_repositories,
        ),
        (names.UNFINISHED_REPOSITORIES, count, len(summary.unfinished_repositories)),
        (names.THROTTLED_CALLS, count, summary.throttled_calls),
        (names.RUN_DURATION_SECONDS, MetricUnit.Seconds, summary.duration_seconds),
        (names.RUN_COMPLETED, count, 1),
        (
            names.LIFECYCLE_POLICIES_CHANGED,
            count,
            sum(1 for r in summary.results if r.policy_change in ("create", "update")),
        ),
        (names.GUARD_HELD, count, 1 if summary.held else 0),
        (names.CURSOR_FAILURES, count, 1 if summary.cursor_failure else 0),
        (
            names.LIFECYCLE_POLICIES_SKIPPED,
            count,
            sum(1 for r in summary.results if r.policy_change == "skipped"),
        ),
    ]
    kept = summary.kept_by_protection
    values.extend(
        (metric, count, kept.get(protection.value, 0))
        for protection, metric in names.KEPT_BY_PROTECTION.items()
    )
    for name, unit, value in values:
        metrics.add_metric(name=name, unit=unit, value=value)


def publish_target_metrics(summary: RunSummary) -> None:
    """With several targets (settings regions, accounts), each target's deletions and failures
    under a `Target` dimension (`account/region`), next to the run's totals. A few series per
    target, so the dashboard and alarms, which read the totals, are unchanged."""
    targets = sorted({result.target for result in summary.results if result.target})
    mode = names.MODE_DRY_RUN if summary.dry_run else names.MODE_LIVE
    for target in targets:
        results = [result for result in summary.results if result.target == target]
        values: list[tuple[str, MetricUnit, float]] = [
            (names.IMAGES_DELETED, MetricUnit.Count, sum(r.images_deleted for r in results)),
            (names.BYTES_RECLAIMED, MetricUnit.Bytes, sum(r.bytes_reclaimed for r in results)),
            (
                names.FAILED_REPOSITORIES,
                MetricUnit.Count,
                sum(1 for r in results if r.status == FAILED or r.uncertain),
            ),
        ]
        for name, unit, value in values:
            with single_metric(
                name=name,
                unit=unit,
                value=value,
                default_dimensions={names.MODE_DIMENSION: mode, names.TARGET_DIMENSION: target},
            ):
                pass
