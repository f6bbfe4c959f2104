"""Archive instead of delete, and archived images left alone, on the local ECR."""

from __future__ import annotations

import logging
import random

import pytest
from helpers.sweep import push, sweep

from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core.settings import Settings
from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory

ARCHIVE = Settings(expired_image_action="archive")
HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def statuses(local_ecr: LocalEcr, repository: str) -> dict[str, str]:
    """digest -> imageStatus of every image, archived ones included."""
    client = local_ecr.client("ecr")
    found: dict[str, str] = {}
    pages = client.get_paginator("describe_images").paginate(
        repositoryName=repository, filter={"imageStatus": "ANY"}
    )
    for page in pages:
        for detail in page["imageDetails"]:
            found[detail["imageDigest"]] = detail["imageStatus"]
    return found


def twelve_active_five_archived(local_ecr: LocalEcr) -> tuple[list[str], list[str]]:
    """17 tagged images, one a day; the 5 oldest moved to the archive by hand."""
    make = ManifestFactory(random.Random(13))
    digests = [
        push(local_ecr, "app", make.image(compact=True), f"v{n}", days_ago=40 - n)
        for n in range(17)
    ]
    client = local_ecr.client("ecr")
    for digest in digests[:5]:
        client.update_image_storage_class(
            repositoryName="app", imageId={"imageDigest": digest}, targetStorageClass="ARCHIVE"
        )
    return digests[:5], digests[5:]


def test_by_default_archived_images_are_left_alone_and_not_counted(local_ecr: LocalEcr) -> None:
    archived, active = twelve_active_five_archived(local_ecr)
    summary = sweep(local_ecr)
    now = statuses(local_ecr, "app")
    assert set(active[2:]) == {d for d, s in now.items() if s == "ACTIVE"}, "keeps 10 active"
    assert set(archived) == {d for d, s in now.items() if s == "ARCHIVED"}
    assert active[0] not in now and active[1] not in now, "the 2 oldest active ones go"
    assert summary.total("images_deleted") == 2 and summary.failures == 0
    assert summary.results[0].images_scanned == 17


def test_archive_instead_of_delete_moves_what_expires(
    local_ecr: LocalEcr, caplog: pytest.LogCaptureFixture
) -> None:
    archived, active = twelve_active_five_archived(local_ecr)
    with caplog.at_level(logging.INFO, logger="test.sweep"):
        summary = sweep(local_ecr, ARCHIVE)
    now = statuses(local_ecr, "app")
    assert sorted(now.values()).count("ACTIVE") == 10 and len(now) == 17
    assert {d for d, s in now.items() if s == "ARCHIVED"} == {*archived, *active[:2]}
    assert summary.total("images_deleted") == 0 and summary.total("images_archived") == 2
    assert summary.to_dict()["imagesArchived"] == 2 and summary.failures == 0
    audits = [r for r in caplog.records if getattr(r, "event", None) == ev.IMAGE_ARCHIVED]
    assert sorted(r.imageDigest for r in audits) == sorted(active[:2])  # type: ignore[attr-defined]
    assert local_ecr.calls_for("ecr")["UpdateImageStorageClass"] == 2 + 5  # ours + the setup's


def test_a_dry_run_archives_nothing(local_ecr: LocalEcr) -> None:
    twelve_active_five_archived(local_ecr)
    before = statuses(local_ecr, "app")
    summary = sweep(local_ecr, ARCHIVE, dry_run=True)
    assert statuses(local_ecr, "app") == before
    assert summary.to_dict()["imagesToArchive"] == 2 and summary.total("images_archived") == 0


def test_an_image_in_use_is_never_archived(local_ecr: LocalEcr) -> None:
    _, active = twelve_active_five_archived(local_ecr)
    ecs = local_ecr.client("ecs")
    ecs.create_cluster(clusterName="prod")
    definition = ecs.register_task_definition(
        family="web",
        containerDefinitions=[{"name": "web", "image": f"{HOST}/app:v5", "memory": 64}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.run_task(cluster="prod", taskDefinition=definition, launchType="FARGATE")
    summary = sweep(local_ecr, ARCHIVE)
    now = statuses(local_ecr, "app")
    assert now[active[0]] == "ACTIVE", "v5 runs in ECS: archiving it would break the task"
    assert now[active[1]] == "ARCHIVED"
    assert summary.results[0].kept_by_protection["in-use"] == 1


def test_a_failed_archive_call_is_a_failure_and_the_image_stays(local_ecr: LocalEcr) -> None:
    _, active = twelve_active_five_archived(local_ecr)
    local_ecr.faults.throttle("UpdateImageStorageClass", code="AccessDeniedException", times=1)
    summary = sweep(local_ecr, ARCHIVE, max_concurrency=1)
    now = statuses(local_ecr, "app")
    assert [now[active[0]], now[active[1]]].count("ARCHIVED") == 1
    (failure,) = summary.results[0].delete_failures
    assert failure.code == "AccessDeniedException" and summary.failures == 1
