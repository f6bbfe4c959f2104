"""The one module that talks to AWS Batch: images of ACTIVE job definitions.

A job can be submitted against any ACTIVE revision at any time, so every one of them holds its
images: single-container, each node range of multi-node jobs, and ECS and EKS task properties.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class BatchImages:
    """(image reference, holder) of every ACTIVE job definition."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def references(self) -> Iterator[tuple[str, str]]:
        paginator = self._client.get_paginator("describe_job_definitions")
        for page in paginator.paginate(status="ACTIVE"):
            for definition in page.get("jobDefinitions", []):
                if definition.get("status", "ACTIVE") != "ACTIVE":
                    continue
                holder = (
                    f"Batch job definition {definition['jobDefinitionName']}:"
                    f"{definition.get('revision', '?')}"
                )
                for image in sorted(set(job_definition_images(definition))):
                    yield image, holder


def job_definition_images(definition: dict[str, Any]) -> Iterator[str]:
    """Every container image a job definition names, whatever its type."""
    yield from _images([definition.get("containerProperties")])
    ranges = definition.get("nodeProperties", {}).get("nodeRangeProperties", [])
    for node_range in ranges:
        yield from _images([node_range.get("container")])
        for task in node_range.get("ecsProperties", {}).get("taskProperties", []):
            yield from _images(task.get("containers", []))
        yield from _eks_images(node_range.get("eksProperties"))
    for task in definition.get("ecsProperties", {}).get("taskProperties", []):
        yield from _images(task.get("containers", []))
    yield from _eks_images(definition.get("eksProperties"))


def _images(containers: list[Any]) -> Iterator[str]:
    for container in containers:
        if isinstance(container, dict) and container.get("image"):
            yield str(container["image"])


def _eks_images(properties: Any) -> Iterator[str]:
    if not isinstance(properties, dict):
        return
    pod = properties.get("podProperties", {})
    yield from _images([*pod.get("containers", []), *pod.get("initContainers", [])])
