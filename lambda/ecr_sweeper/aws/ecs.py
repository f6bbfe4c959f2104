"""The one module that talks to Amazon ECS: which images tasks and services use.

Every list call is paginated and each task definition is described once per run (cached), since
large accounts throttle ECS's describe calls. Scheduled tasks (EventBridge rules and Scheduler
schedules) name task definitions that are described here too, through the same cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

DESCRIBE_TASKS_LIMIT = 100
DESCRIBE_SERVICES_LIMIT = 10


class EcsImages:
    """Image references held by running and pending tasks and by every service's deployments
    and task sets (CODE_DEPLOY and EXTERNAL deployment controllers use task sets).

    `previous_revisions` also keeps that many ACTIVE revisions older than each one a service
    runs, in the same family: what a circuit-breaker or CodeDeploy rollback goes back to.
    """

    def __init__(self, client: Any, *, previous_revisions: int = 0) -> None:
        self._client = client
        self._previous_revisions = previous_revisions
        self._task_definitions: dict[str, list[str]] = {}
        self._families: dict[str, list[tuple[int, str]]] = {}

    def references(self) -> Iterator[tuple[str, str]]:
        """(image reference, holder) pairs for the whole account and region."""
        for cluster_arn in self._paginate("list_clusters", "clusterArns"):
            cluster = cluster_arn.rsplit("/", 1)[-1]
            yield from self._task_references(cluster_arn, cluster)
            yield from self._service_references(cluster_arn, cluster)

    def _paginate(self, operation: str, key: str, **params: Any) -> Iterator[str]:
        for page in self._client.get_paginator(operation).paginate(**params):
            yield from page.get(key, [])

    def _task_references(self, cluster_arn: str, cluster: str) -> Iterator[tuple[str, str]]:
        task_arns = sorted(
            {
                arn
                for status in ("RUNNING", "PENDING")
                for arn in self._paginate(
                    "list_tasks", "taskArns", cluster=cluster_arn, desiredStatus=status
                )
            }
        )
        for start in range(0, len(task_arns), DESCRIBE_TASKS_LIMIT):
            batch = task_arns[start : start + DESCRIBE_TASKS_LIMIT]
            response = self._client.describe_tasks(cluster=cluster_arn, tasks=batch)
            for task in response.get("tasks", []):
                holder = f"ECS task {cluster}/{task['taskArn'].rsplit('/', 1)[-1]}"
                for container in task.get("containers", []):
                    image = container.get("image")
                    if image:
                        yield image, holder
                        digest = container.get("imageDigest")
                        if digest:
                            yield f"{image.split('@')[0].rsplit(':', 1)[0]}@{digest}", holder
                if task.get("taskDefinitionArn"):
                    for image in self.task_definition_images(task["taskDefinitionArn"]):
                        yield image, holder

    def _service_references(self, cluster_arn: str, cluster: str) -> Iterator[tuple[str, str]]:
        service_arns = list(self._paginate("list_services", "serviceArns", cluster=cluster_arn))
        for start in range(0, len(service_arns), DESCRIBE_SERVICES_LIMIT):
            batch = service_arns[start : start + DESCRIBE_SERVICES_LIMIT]
            response = self._client.describe_services(cluster=cluster_arn, services=batch)
            for service in response.get("services", []):
                holder = f"ECS service {cluster}/{service['serviceName']}"
                definitions = {d["taskDefinition"] for d in service.get("deployments", [])}
                definitions |= {t["taskDefinition"] for t in service.get("taskSets", [])}
                if service.get("taskDefinition"):
                    definitions.add(service["taskDefinition"])
                rollback_targets: set[str] = set()
                for definition in sorted(definitions):
                    for image in self.task_definition_images(definition):
                        yield image, f"{holder} ({_short(definition)})"
                    rollback_targets.update(self._older_revisions(definition))
                for definition in sorted(rollback_targets - definitions):
                    for image in self.task_definition_images(definition):
                        yield image, f"{holder} rollback target ({_short(definition)})"

    def _older_revisions(self, arn: str) -> list[str]:
        """The ACTIVE revisions just before `arn` in its family, newest first."""
        if self._previous_revisions == 0:
            return []
        family, _, revision = _short(arn).rpartition(":")
        if not family or not revision.isdigit():
            return []  # a family name without revision: no rollback target to know of
        if family not in self._families:
            # familyPrefix is a prefix match ("web" also lists "web-admin"): keep the exact family.
            found = []
            for listed in self._paginate(
                "list_task_definitions",
                "taskDefinitionArns",
                familyPrefix=family,
                status="ACTIVE",
                sort="DESC",
            ):
                listed_family, _, listed_revision = _short(listed).rpartition(":")
                if listed_family == family and listed_revision.isdigit():
                    found.append((int(listed_revision), listed))
            self._families[family] = sorted(found, reverse=True)
        older = [listed for number, listed in self._families[family] if number < int(revision)]
        return older[: self._previous_revisions]

    def task_definition_images(self, arn: str) -> list[str]:
        """The container images of one task definition (ARN, family:revision or family),
        described once per run."""
        if arn not in self._task_definitions:
            response = self._client.describe_task_definition(taskDefinition=arn)
            containers = response["taskDefinition"].get("containerDefinitions", [])
            self._task_definitions[arn] = [c["image"] for c in containers if c.get("image")]
        return self._task_definitions[arn]


def _short(arn: str) -> str:
    """`family:revision` of a task definition ARN (or the string itself if it's no ARN)."""
    return arn.rsplit("/", 1)[-1]
