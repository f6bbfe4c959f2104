"""The Lambda entry point: Powertools decorators, settings, then the engine. Nothing else."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from ecr_sweeper.aws import sdk_check
from ecr_sweeper.aws.clients import AwsTarget
from ecr_sweeper.aws.ssm import STATE_PARAMETER_VARIABLE, ParameterApprovals
from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core.settings import ENVIRONMENT_VARIABLE, Settings, SettingsError
from ecr_sweeper.handlers.records import SweepLogger
from ecr_sweeper.handlers.telemetry import publish_run_metrics, publish_target_metrics
from ecr_sweeper.sweep import budget, targets
from ecr_sweeper.sweep.engine import sweeper_for
from ecr_sweeper.sweep.guard import RunGuard
from ecr_sweeper.sweep.in_use import extra_references

logger = SweepLogger(json_deserializer=ev.json_message, json_serializer=ev.encode_record)
ev.skip_unused_record_fields()
metrics = Metrics()
tracer = Tracer()

EVENT_KEYS = ("dryRun",)

SCHEDULED_SOURCES = ("aws.events", "aws.scheduler")
ENVELOPE_KEYS = (
    "version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail",
    "replay-name",
)  # fmt: skip
"""An EventBridge event's envelope: a rule or schedule that sends it runs a plain sweep."""


"""In the returned summary when the function made the run a dry run itself (an unusable SDK)."""


class EventError(ValueError):
    """An invocation payload the handler doesn't accept."""


def requested_dry_run(event: Any) -> bool:
    """`{"dryRun": true}` asks for a dry run; an empty event (the schedule's) asks nothing."""
    if event is None:
        return False
    if not isinstance(event, dict):
        raise EventError(f'event: expected a JSON object such as {{"dryRun": true}}, got {event!r}')
    if event.get("source") in SCHEDULED_SOURCES:
        event = _without_envelope(event)
    unknown = sorted(set(event) - set(EVENT_KEYS))
    if unknown:
        raise EventError(
            f"event: unknown key {unknown[0]!r}; accepted keys are {', '.join(EVENT_KEYS)}"
        )
    dry_run = event.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise EventError(f"event.dryRun: expected true or false, got {dry_run!r}")
    return dry_run


def _without_envelope(event: dict[str, Any]) -> dict[str, Any]:
    """Check the envelope with Powertools' EventBridge model, then drop it (its fields are ignored).

    Imported here: pydantic (in the Powertools layer) costs import time only when it is needed.
    """
    from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
    from pydantic import ValidationError

    envelope = {key: value for key, value in event.items() if key in ENVELOPE_KEYS}
    try:
        EventBridgeModel.model_validate(envelope)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "envelope"
        raise EventError(
            f"event: not a valid {event['source']} event: {where}: {first['msg']}"
        ) from None
    return {key: value for key, value in event.items() if key not in ENVELOPE_KEYS}


def own_account(context: LambdaContext) -> str:
    """The function's own account, from its ARN: the owner of every bucket it reads."""
    return context.invoked_function_arn.split(":")[4]


def _missing_settings() -> str:
    raise SettingsError([f"{ENVIRONMENT_VARIABLE}: not set; the stack passes the settings there"])


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    settings = Settings.from_json(os.environ.get(ENVIRONMENT_VARIABLE) or _missing_settings())
    sdk_problem = sdk_check.sdk_problem()
    dry_run = requested_dry_run(event) or settings.dry_run
    logger.set_correlation_id(context.aws_request_id)
    logger.append_keys(**{ev.RUN_ID: context.aws_request_id, ev.DRY_RUN: dry_run})
    if sdk_problem:
        logger.error(sdk_problem, extra={ev.EVENT: ev.SDK_UNSUPPORTED, ev.REASON: sdk_problem})
    run_budget = budget.for_lambda(context.get_remaining_time_in_millis())
    own = AwsTarget(bucket_owner=own_account(context))
    state_parameter = os.environ.get(STATE_PARAMETER_VARIABLE)
    guard = RunGuard(
        settings,
        logger,
        approvals=ParameterApprovals(own.client("ssm"), state_parameter, logger)
        if state_parameter
        else None,
    )
    if targets.is_multi_target(settings):
        summary = targets.sweep_targets(
            own,
            settings,
            logger,
            dry_run=dry_run,
            tracer=tracer,
            run_id=context.aws_request_id,
            budget=run_budget,
            partition=context.invoked_function_arn.split(":")[1],
            uncertain=sdk_problem,
            cursor_parameter=state_parameter,
            guard=guard,
        )
    else:
        sweeper = sweeper_for(
            own.in_region(next(iter(settings.regions), None)),
            settings,
            logger,
            dry_run=dry_run,
            tracer=tracer,
            run_id=context.aws_request_id,
            budget=run_budget,
            cursor_parameter=state_parameter,
            uncertain=sdk_problem,
            references=extra_references(settings, own.client),  # in the deployment's region
        )
        summary = sweeper.run(guard)
    publish_run_metrics(metrics, summary)
    publish_target_metrics(summary)
    result = summary.to_record()
    logger.info("run summary", extra={ev.EVENT: ev.RUN_SUMMARY, **result})
    return result
