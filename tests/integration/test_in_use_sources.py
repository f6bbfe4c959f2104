"""Images that scheduled tasks, Batch job definitions and ECS rollback targets hold are kept,
each source can be turned off, and a source that can't be read deletes nothing anywhere."""

from __future__ import annotations

import json
import logging
import random
from typing import Any

import pytest
from helpers.sweep import push, remaining, sweep

from ecr_sweeper.core.settings import Settings
from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory

ACCOUNT = "123456789012"
HOST = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
CLUSTER_ARN = f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/jobs"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/scheduler"


@pytest.fixture
def make() -> ManifestFactory:
    return ManifestFactory(random.Random(12))


def keep_newest_only(**overrides: Any) -> Settings:
    return Settings(keep_tagged_images=1, **overrides)


def app_images(local_ecr: LocalEcr, make: ManifestFactory, count: int) -> dict[int, str]:
    """app:v0 (oldest) .. app:v{count-1} (newest): a keep-1 sweep deletes all but the newest."""
    return {
        n: push(local_ecr, "app", make.image(compact=True), f"v{n}", 40 - n) for n in range(count)
    }


def register(ecs: Any, family: str, image: str) -> str:
    response = ecs.register_task_definition(
        family=family, containerDefinitions=[{"name": family, "image": image, "memory": 128}]
    )
    return str(response["taskDefinition"]["taskDefinitionArn"])


def ecs_target(definition: str) -> dict[str, Any]:
    return {
        "Arn": CLUSTER_ARN,
        "RoleArn": ROLE_ARN,
        "EcsParameters": {"TaskDefinitionArn": definition},
    }


def nightly_rule(local_ecr: LocalEcr, definition: str, *, bus: str | None = None) -> None:
    events = local_ecr.client("events")
    where = {"EventBusName": bus} if bus else {}
    if bus:
        events.create_event_bus(Name=bus)
        events.put_rule(Name="on-upload", EventPattern='{"source": ["my.app"]}', **where)
        events.put_targets(
            Rule="on-upload", Targets=[{"Id": "1", **ecs_target(definition)}], **where
        )
        return
    events.put_rule(Name="nightly-job", ScheduleExpression="cron(0 2 * * ? *)", State="DISABLED")
    events.put_targets(Rule="nightly-job", Targets=[{"Id": "job", **ecs_target(definition)}])


def nightly_schedule(local_ecr: LocalEcr, definition: str) -> None:
    local_ecr.client("scheduler").create_schedule(
        Name="nightly",
        ScheduleExpression="cron(0 2 * * ? *)",
        FlexibleTimeWindow={"Mode": "OFF"},
        State="DISABLED",
        Target=ecs_target(definition),
    )


def kept_reason(summary: Any, digest: str) -> str:
    (decision,) = [d for d in summary.results[0].plan.decisions if d.image.digest == digest]
    assert decision.action == "keep", decision
    return str(decision.reason)


def test_tasks_that_rules_and_schedules_start_keep_their_images_described_once(
    local_ecr: LocalEcr, make: ManifestFactory, caplog: pytest.LogCaptureFixture
) -> None:
    digests = app_images(local_ecr, make, 4)
    ecs = local_ecr.client("ecs")
    job = register(ecs, "job", f"{HOST}/app:v0")
    nightly_rule(local_ecr, job)
    nightly_schedule(local_ecr, job)
    nightly_rule(local_ecr, register(ecs, "ingest", f"{HOST}/app@{digests[1]}"), bus="uploads")
    caplog.set_level(logging.INFO, logger="test.sweep")
    local_ecr.reset_counters()

    summary = sweep(local_ecr, keep_newest_only())

    assert set(remaining(local_ecr, "app")) == {digests[0], digests[1], digests[3]}
    assert local_ecr.calls_for("ecs")["DescribeTaskDefinition"] == 2, "job:1 described once"
    assert "EventBridge rule nightly-job (job:1)" in kept_reason(summary, digests[0])
    assert "EventBridge rule uploads/on-upload (ingest:1)" in kept_reason(summary, digests[1])
    assert "EventBridge rule nightly-job (job:1)" in caplog.text
    assert summary.failures == 0


def test_a_schedule_alone_keeps_its_image_and_names_itself(
    local_ecr: LocalEcr, make: ManifestFactory
) -> None:
    digests = app_images(local_ecr, make, 2)
    nightly_schedule(local_ecr, register(local_ecr.client("ecs"), "job", f"{HOST}/app:v0"))
    summary = sweep(local_ecr, keep_newest_only())
    assert set(remaining(local_ecr, "app")) == set(digests.values())
    assert "Scheduler schedule default/nightly (job:1)" in kept_reason(summary, digests[0])


def test_turning_scheduled_tasks_off_lets_their_images_go_and_calls_neither_service(
    local_ecr: LocalEcr, make: ManifestFactory
) -> None:
    digests = app_images(local_ecr, make, 2)
    job = register(local_ecr.client("ecs"), "job", f"{HOST}/app:v0")
    nightly_rule(local_ecr, job)
    nightly_schedule(local_ecr, job)
    local_ecr.reset_counters()
    sweep(local_ecr, keep_newest_only(protect_scheduled_task_images=False))
    assert set(remaining(local_ecr, "app")) == {digests[1]}
    assert not local_ecr.calls_for("events") and not local_ecr.calls_for("scheduler")


def test_active_batch_job_definitions_keep_their_images_and_inactive_ones_do_not(
    local_ecr: LocalEcr, make: ManifestFactory
) -> None:
    digests = app_images(local_ecr, make, 4)
    batch = local_ecr.client("batch")
    batch.register_job_definition(
        jobDefinitionName="etl",
        type="container",
        containerProperties={"image": f"{HOST}/app:v0", "vcpus": 1, "memory": 128},
    )
    # moto leaves nodeProperties out of DescribeJobDefinitions: multi-node is a unit test.
    batch.register_job_definition(
        jobDefinitionName="train",
        type="container",
        eksProperties={
            "podProperties": {
                "containers": [{"name": "train", "image": f"{HOST}/app@{digests[1]}"}]
            }
        },
    )
    batch.register_job_definition(
        jobDefinitionName="old",
        type="container",
        containerProperties={"image": f"{HOST}/app:v2", "vcpus": 1, "memory": 128},
    )
    batch.deregister_job_definition(jobDefinition="old:1")

    summary = sweep(local_ecr, keep_newest_only())

    assert set(remaining(local_ecr, "app")) == {digests[0], digests[1], digests[3]}
    assert "Batch job definition etl:1" in kept_reason(summary, digests[0])
    assert "Batch job definition train:1" in kept_reason(summary, digests[1])

    sweep(local_ecr, keep_newest_only(protect_batch_images=False))
    assert set(remaining(local_ecr, "app")) == {digests[3]}


def service_with_history(local_ecr: LocalEcr, *, retire: tuple[int, ...] = ()) -> None:
    """web:1..web:4 use app:v0..v3; the service runs web:3 (web:4 is registered, not deployed);
    web-admin:1 shares the prefix 'web' and uses app:v4."""
    ecs = local_ecr.client("ecs")
    ecs.create_cluster(clusterName="prod")
    arns = [register(ecs, "web", f"{HOST}/app:v{n}") for n in range(4)]
    register(ecs, "web-admin", f"{HOST}/app:v4")
    ecs.create_service(cluster="prod", serviceName="web", taskDefinition=arns[2], desiredCount=0)
    for revision in retire:
        ecs.deregister_task_definition(taskDefinition=f"web:{revision}")


@pytest.mark.parametrize(
    ("previous", "retire", "kept"),
    [
        (1, (), {1, 2}),  # web:2, the rollback target, and web:3 that runs
        (2, (), {0, 1, 2}),
        (0, (), {2}),
        (1, (2,), {0, 2}),  # an INACTIVE revision is no rollback target: the one before it is
    ],
)
def test_rollback_targets_keep_earlier_active_revisions_of_the_exact_family(
    local_ecr: LocalEcr,
    make: ManifestFactory,
    previous: int,
    retire: tuple[int, ...],
    kept: set[int],
) -> None:
    digests = app_images(local_ecr, make, 6)  # v5 is the newest, kept by keep-1
    service_with_history(local_ecr, retire=retire)
    summary = sweep(local_ecr, keep_newest_only(protect_previous_task_definitions=previous))
    assert set(remaining(local_ecr, "app")) == {digests[n] for n in kept} | {digests[5]}
    if previous:
        target = max(kept - {2})
        expected = f"ECS service prod/web rollback target (web:{target + 1})"
        assert expected in kept_reason(summary, digests[target])


@pytest.mark.parametrize(
    ("service", "operation", "source"),
    [
        ("events", "ListRules", "EventBridge rules"),
        ("events", "ListTargetsByRule", "EventBridge rules"),
        ("scheduler", "GetSchedule", "EventBridge Scheduler"),
        ("batch", "DescribeJobDefinitions", "AWS Batch"),
        ("ecs", "ListTaskDefinitions", "ECS"),
        ("ecs", "DescribeTaskDefinition", "EventBridge rules"),
    ],
)
def test_a_source_that_cannot_be_read_deletes_nothing_anywhere(
    local_ecr: LocalEcr, make: ManifestFactory, service: str, operation: str, source: str
) -> None:
    digests = app_images(local_ecr, make, 3)
    local_ecr.client("ecr").create_repository(repositoryName="other")
    other = push(local_ecr, "other", make.image(compact=True), None, 30)
    ecs = local_ecr.client("ecs")
    ecs.create_cluster(clusterName="prod")
    job = register(ecs, "job", f"{HOST}/app:v0")
    nightly_rule(local_ecr, job)
    nightly_schedule(local_ecr, job)
    if operation == "ListTaskDefinitions":  # only a service's rollback targets need it
        ecs.create_service(cluster="prod", serviceName="job", taskDefinition=job, desiredCount=0)
    local_ecr.faults.error(500, operation, service=service)

    summary = sweep(local_ecr, keep_newest_only())

    assert set(remaining(local_ecr, "app")) == set(digests.values())
    assert other in remaining(local_ecr, "other")
    assert summary.total("images_deleted") == 0 and summary.failures == 2
    reason = summary.results[0].plan.decisions[0].reason  # type: ignore[union-attr]
    assert f"images in use could not be read from {source}" in reason


def test_a_universal_run_task_target_keeps_its_image_and_an_unreadable_one_holds_the_run(
    local_ecr: LocalEcr, make: ManifestFactory
) -> None:
    digests = app_images(local_ecr, make, 2)
    job = register(local_ecr.client("ecs"), "job", f"{HOST}/app:v0")
    scheduler = local_ecr.client("scheduler")
    universal = {"Arn": "arn:aws:scheduler:::aws-sdk:ecs:runTask", "RoleArn": ROLE_ARN}
    scheduler.create_schedule(
        Name="sdk-run",
        ScheduleExpression="rate(1 day)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={**universal, "Input": json.dumps({"Cluster": "jobs", "TaskDefinition": job})},
    )
    summary = sweep(local_ecr, keep_newest_only())
    assert set(remaining(local_ecr, "app")) == set(digests.values())
    assert "Scheduler schedule default/sdk-run (job:1)" in kept_reason(summary, digests[0])

    scheduler.create_schedule(
        Name="templated-input",
        ScheduleExpression="rate(1 day)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={**universal, "Input": "<aws.scheduler.execution-id>"},
    )
    held = sweep(local_ecr, keep_newest_only())
    assert set(remaining(local_ecr, "app")) == set(digests.values())
    reason = held.results[0].plan.decisions[-1].reason  # type: ignore[union-attr]
    assert "default/templated-input" in reason and "names no TaskDefinition" in reason
