"""The one module that talks to Amazon EventBridge Scheduler: ECS tasks that schedules start.

ListSchedules doesn't return targets, so each schedule is read with GetSchedule. Disabled
schedules count too: enabling one again must find its image.
"""

from __future__ import annotations

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
                arn = schedule.get("Target", {}).get("EcsParameters", {}).get("TaskDefinitionArn")
                if arn:
                    yield arn, f"Scheduler schedule {group}/{name}"
