"""Lambda entry points of the Step Functions fan-out (settings: fanOut): Powertools decorators,
settings, then one call into `fan_out`. Nothing else."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from ecr_sweeper.aws.clients import AwsTarget
from ecr_sweeper.aws.ssm import STATE_PARAMETER_VARIABLE, ParameterApprovals
from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core.settings import ENVIRONMENT_VARIABLE, Settings, SettingsError
from ecr_sweeper.handlers.records import SweepLogger
from ecr_sweeper.handlers.sweeper import EventError, own_account, requested_dry_run
from ecr_sweeper.handlers.telemetry import publish_run_metrics, publish_target_metrics
from ecr_sweeper.sweep import budget, fan_out

logger = SweepLogger(json_deserializer=ev.json_message, json_serializer=ev.encode_record)
ev.skip_unused_record_fields()
metrics = Metrics()
tracer = Tracer()

BatchStep = Callable[..., dict[str, Any]]
"""fan_out.plan_batch or fan_out.sweep_batch."""

__all__ = [
    "EventError",
    "check_handler",
    "list_handler",
    "plan_handler",
    "summarize_handler",
    "sweep_handler",
]


def _environment(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SettingsError([f"{name}: not set; the stack passes it"])
    return value


def _settings() -> Settings:
    return Settings.from_json(_environment(ENVIRONMENT_VARIABLE))


def _partition(context: LambdaContext) -> str:
    """aws, aws-cn, aws-us-gov, ...: from the function's own ARN."""
    return context.invoked_function_arn.split(":")[1]


def _run_id(event: Any) -> str:
    run_id = event.get("runId") if isinstance(event, dict) else None
    if not isinstance(run_id, str) or not run_id:
        raise EventError(f"event.runId: expected the run id List returned, got {run_id!r}")
    return run_id


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def list_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """List: the execution's input is the event (`{}` from the schedule, or `{"dryRun": true}`)."""
    settings = _settings()
    dry_run = requested_dry_run(event) or settings.dry_run
    run_id = context.aws_request_id
    logger.set_correlation_id(run_id)
    logger.append_keys(**{ev.RUN_ID: run_id, ev.DRY_RUN: dry_run})
    return fan_out.list_work(
        AwsTarget(bucket_owner=own_account(context)),
        settings,
        logger,
        run_id=run_id,
        dry_run=dry_run,
        bucket=_environment(fan_out.BUCKET_VARIABLE),
        started_at=datetime.now(UTC),
        partition=_partition(context),
    )


def _batch_step(work: BatchStep, event: Any, context: LambdaContext) -> dict[str, Any]:
    """One work item, with its run, through `work` (Plan or Sweep): what their handlers share."""
    settings = _settings()
    _item, run_id, _digest = fan_out.child_run(event)
    logger.set_correlation_id(run_id)
    logger.append_keys(**{ev.RUN_ID: run_id})
    return work(
        AwsTarget(bucket_owner=own_account(context)),
        settings,
        logger,
        event,
        bucket=_environment(fan_out.BUCKET_VARIABLE),
        account=own_account(context),
        tracer=tracer,
        budget=budget.for_lambda(context.get_remaining_time_in_millis()),
        partition=_partition(context),
    )


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def plan_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Plan: one work item per child execution, with its run, planned for the deletion guard
    (live runs)."""
    return _batch_step(fan_out.plan_batch, event, context)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def check_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Check: the deletion guard over every planning child's counts, with the approval on record
    in the stack's state parameter."""
    settings = _settings()
    run_id = _run_id(event)
    logger.set_correlation_id(run_id)
    logger.append_keys(**{ev.RUN_ID: run_id, ev.DRY_RUN: False})
    target = AwsTarget(bucket_owner=own_account(context))
    parameter = _environment(STATE_PARAMETER_VARIABLE)
    return fan_out.check_run(
        target,
        settings,
        logger,
        run_id=run_id,
        bucket=_environment(fan_out.BUCKET_VARIABLE),
        approvals=ParameterApprovals(target.client("ssm"), parameter, logger),
    )


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def sweep_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Sweep: one work item (a batch of repositories) per child execution, with its run."""
    return _batch_step(fan_out.sweep_batch, event, context)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def summarize_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Summarize: the same run summary, metrics and `run.summary` record as the single Lambda."""
    run_id = _run_id(event)
    logger.set_correlation_id(run_id)
    summary = fan_out.summarize(
        AwsTarget(bucket_owner=own_account(context)),
        logger,
        run_id=run_id,
        bucket=_environment(fan_out.BUCKET_VARIABLE),
        finished_at=datetime.now(UTC),
    )
    logger.append_keys(**{ev.RUN_ID: run_id, ev.DRY_RUN: summary.dry_run})
    publish_run_metrics(metrics, summary)
    publish_target_metrics(summary)
    result = summary.to_record()
    logger.info("run summary", extra={ev.EVENT: ev.RUN_SUMMARY, **result})
    return result
