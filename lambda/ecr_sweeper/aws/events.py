"""The one module that talks to Amazon EventBridge: ECS tasks that rules start.

A nightly job's task definition is in use even while no task of it runs: the rule will start one.
Every event bus is read, since a rule on a custom bus can start a task on an event.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

DEFAULT_BUS = "default"


class EventBridgeTasks:
    """(task definition ARN, holder) for every rule target with EcsParameters, enabled or not."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def task_definitions(self) -> Iterator[tuple[str, str]]:
        for bus in self._event_buses():
            for rule in self._paginate("list_rules", "Rules", EventBusName=bus):
                name = rule["Name"]
                holder = f"EventBridge rule {name if bus == DEFAULT_BUS else f'{bus}/{name}'}"
                targets = self._paginate(
                    "list_targets_by_rule", "Targets", Rule=name, EventBusName=bus
                )
                for target in targets:
                    arn = target.get("EcsParameters", {}).get("TaskDefinitionArn")
                    if arn:
                        yield arn, holder

    def _paginate(self, operation: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        for page in self._client.get_paginator(operation).paginate(**params):
            yield from page.get(key, [])

    def _event_buses(self) -> Iterator[str]:
        """ListEventBuses has no botocore paginator: follow NextToken by hand."""
        token: str | None = None
        while True:
            response = self._client.list_event_buses(**({"NextToken": token} if token else {}))
            for bus in response.get("EventBuses", []):
                yield bus["Name"]
            token = response.get("NextToken")
            if not token:
                return
