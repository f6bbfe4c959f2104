"""Reads what the deployed function logged: the one CLI module that talks to CloudWatch Logs and
CloudFormation.

The function writes Powertools JSON lines (one per record) to its log group; a `run.summary` record
carries a run's totals, a `repository.summary` record each repository's, and `image.deleted` ones
each deletion. Lambda's own START/END/REPORT lines and anything else that is not one of our JSON
records are skipped, except a `run.summary` line that doesn't parse: it comes back as an
unreadable summary (`log_events.UNREADABLE`), so a run is never hidden.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from ecr_sweeper.aws.clients import AwsTarget
from ecr_sweeper.core import log_events as ev

LOG_GROUP_OUTPUT = "LogGroupName"
"""The stack output that names the function's log group (infra/stack.py)."""
_HEAD = 4096
"""How much of an unparsable line is searched for the event and run id (Powertools writes
them near the start)."""
_RUN_ID_FIELD = re.compile(rf'"{ev.RUN_ID}":\s*"([A-Za-z0-9._:-]{{1,128}})"')
_SUMMARY_EVENT = re.compile(rf'"{ev.EVENT}":\s*"{re.escape(ev.RUN_SUMMARY)}"')


class LogsError(Exception):
    """The log group or stack can't be read; the message says which and why."""


def stack_outputs(target: AwsTarget, stack_name: str) -> dict[str, str]:
    """The stack's outputs, by key."""
    client = target.client("cloudformation")
    try:
        stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        raise LogsError(
            f"--stack-name {stack_name}: {error.response['Error'].get('Message', error)}; "
            "pass the stack's name, or the log group with --log-group"
        ) from error
    outputs = stacks[0].get("Outputs", []) if stacks else []
    return {str(o["OutputKey"]): str(o["OutputValue"]) for o in outputs if "OutputKey" in o}


def log_group_of_stack(target: AwsTarget, stack_name: str) -> str:
    """The stack's LogGroupName output."""
    group = stack_outputs(target, stack_name).get(LOG_GROUP_OUTPUT)
    if group is None:
        raise LogsError(
            f"--stack-name {stack_name}: the stack has no {LOG_GROUP_OUTPUT} output; "
            "pass the log group with --log-group"
        )
    return group


def _filter_pattern(event: str, run_id: str | None) -> str:
    """A JSON pattern, but a term for `run.summary`: a JSON pattern can't match a line that
    doesn't parse, and an unreadable summary must still be found (and its run id is checked
    here)."""
    if event == ev.RUN_SUMMARY:
        return f'"{ev.RUN_SUMMARY}"'
    if run_id is None:
        return f'{{ $.{ev.EVENT} = "{event}" }}'
    return f'{{ ($.{ev.EVENT} = "{event}") && ($.{ev.RUN_ID} = "{run_id}") }}'


def records(
    target: AwsTarget,
    log_group: str,
    events: tuple[str, ...],
    *,
    start: datetime,
    run_id: str | None = None,
    page_size: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Our JSON records of the given event names since `start`, every page, oldest first.

    The filter pattern lets CloudWatch Logs do the selecting; the records are checked again
    here, so a pattern the service reads differently can't let a stranger's line through.
    """
    client = target.client("logs")
    paginator = client.get_paginator("filter_log_events")
    pagination = {"PageSize": page_size} if page_size else {}
    for event in events:
        pages = paginator.paginate(
            logGroupName=log_group,
            startTime=int(start.timestamp() * 1000),
            filterPattern=_filter_pattern(event, run_id),
            PaginationConfig=pagination,
        )
        try:
            for page in pages:
                for logged in page.get("events", []):
                    record = _record(logged.get("message", ""), logged.get("timestamp"))
                    if record is None or record.get(ev.EVENT) != event:
                        continue
                    if run_id is not None and record.get(ev.RUN_ID) != run_id:
                        continue
                    record.setdefault("logTimestamp", logged.get("timestamp"))
                    yield record
        except ClientError as error:
            raise LogsError(
                f"log group {log_group}: {error.response['Error'].get('Message', error)}"
            ) from error


def _record(message: str, timestamp: Any = None) -> dict[str, Any] | None:
    text = message.strip()
    if not text.startswith("{"):
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return _unreadable_summary(text, timestamp)
    return record if isinstance(record, dict) else None


def _unreadable_summary(text: str, timestamp: Any) -> dict[str, Any] | None:
    """A line that starts like a `run.summary` record but doesn't parse: its run id and time,
    marked UNREADABLE. Any other broken line is skipped."""
    head = text[:_HEAD]
    if not _SUMMARY_EVENT.search(head):
        return None
    found = _RUN_ID_FIELD.search(head)
    record: dict[str, Any] = {
        ev.EVENT: ev.RUN_SUMMARY,
        ev.RUN_ID: found.group(1) if found else "?",
        ev.UNREADABLE: True,
    }
    if isinstance(timestamp, int):
        record["startedAt"] = datetime.fromtimestamp(timestamp / 1000, UTC).isoformat()
    return record
