"""The one module that talks to Amazon EventBridge Scheduler: ECS tasks that schedules start.

ListSchedules doesn't return targets, so each schedule is read with GetSchedule. Disabled
schedules count too: enabling one again must find its image. Both the templated ECS target and
the universal `aws-sdk:ecs:runTask` target are read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError


class ScheduledTasks:
    """(task definition ARN, holder) for every schedule whose target has EcsParameters."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def task_definitions(self) -> Iterator[tuple[str, str]]:
        for page in self._client.get_paginator("list_schedules").paginate():
            for summary in page.get("Schedules", []):
                group, name = summary.get("GroupName", "default"), summary["Name"]
                try:
                    schedule = self._client.get_schedule(Name=name, GroupName=group)
                except ClientError as error:
                    if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                        continue  # deleted since it was listed: it starts nothing any more
                    raise
                arn = task_definition_of(schedule.get("Target", {}), f"{group}/{name}")
                if arn:
                    yield arn, f"Scheduler schedule {group}/{name}"


class ScheduleUnreadable(ValueError):
    """A schedule that starts an ECS task whose task definition can't be read from it."""


def task_definition_of(target: dict[str, Any], schedule: str) -> str | None:
    """The task definition a schedule's target starts: the templated ECS target's
    EcsParameters, or the `TaskDefinition` of the universal target `aws-sdk:ecs:runTask`."""
    arn = target.get("EcsParameters", {}).get("TaskDefinitionArn")
    if arn:
        return str(arn)
    if not str(target.get("Arn", "")).endswith(":aws-sdk:ecs:runTask"):
        return None
    try:
        definition = json.loads(target.get("Input") or "{}").get("TaskDefinition")
    except (ValueError, AttributeError, RecursionError):
        definition = None
    if not isinstance(definition, str) or not definition:
        raise ScheduleUnreadable(
            f"Scheduler schedule {schedule} runs an ECS task (aws-sdk:ecs:runTask) but its Input "
            "names no TaskDefinition that can be read"
        )
    return definition
