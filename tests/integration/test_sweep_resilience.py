"""Real ECR's paging and limits, throttling, failures and vanishing repositories."""

from __future__ import annotations

import random
from typing import Any

from botocore.exceptions import ClientError
from helpers.sweep import NOW, push, remaining, sweep, sweeper

from ecr_sweeper.core.settings import Settings
from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory


def untagged_leftovers(local_ecr: LocalEcr, repository: str, count: int) -> None:
    factory = ManifestFactory(random.Random(count))
    for _ in range(count):
        push(local_ecr, repository, factory.image(compact=True, layers=1), None, days_ago=5)


def test_every_page_is_read_and_deletes_go_100_at_a_time(local_ecr: LocalEcr) -> None:
    untagged_leftovers(local_ecr, "big", 1150)
    local_ecr.reset_counters()
    summary = sweep(local_ecr)
    calls = local_ecr.calls_for("ecr")
    assert summary.total("images_scanned") == 1150
    assert summary.total("images_deleted") == 1150
    assert remaining(local_ecr, "big") == {}
    assert calls["DescribeImages"] == 2, "2 pages of 1000"
    assert calls["ListImages"] == 2 + 1, "re-check before deleting (2 pages), verify after (1)"
    assert calls["BatchDeleteImage"] == 12


def test_every_page_of_repositories_is_swept(local_ecr: LocalEcr) -> None:
    local_ecr.seed("large:25x1")
    local_ecr.reset_counters()
    summary = sweeper(local_ecr, dry_run=True, page_size=10).run()
    assert summary.to_dict()["repositories"] == 25
    assert local_ecr.calls_for("ecr")["DescribeRepositories"] == 3


def test_throttling_is_retried_and_nothing_is_lost(local_ecr: LocalEcr) -> None:
    untagged_leftovers(local_ecr, "app", 150)
    for operation in ("DescribeRepositories", "DescribeImages", "BatchDeleteImage"):
        local_ecr.faults.throttle(operation, times=3)
    summary = sweep(local_ecr)
    assert summary.failures == 0
    assert summary.total("images_deleted") == 150 and remaining(local_ecr, "app") == {}


def test_a_batch_that_keeps_failing_is_counted_and_nothing_else_is_claimed(
    local_ecr: LocalEcr,
) -> None:
    untagged_leftovers(local_ecr, "app", 150)
    attempts = 1 + 10  # the first call and standard mode's 10 retries (RETRY_CONFIG)
    local_ecr.faults.error(500, "BatchDeleteImage", times=attempts)
    summary = sweep(local_ecr, max_concurrency=1)  # one batch after the other: the first fails
    left = remaining(local_ecr, "app")
    assert len(left) == 100, "the first batch of 100 failed on every attempt"
    assert summary.delete_failures == 100
    assert summary.total("images_deleted") == 50
    assert summary.to_dict()["failures"] == 100


def test_a_repository_deleted_mid_run_is_skipped_and_the_others_are_swept(
    local_ecr: LocalEcr,
) -> None:
    for repository in ("a-first", "b-vanishing", "c-last"):
        untagged_leftovers(local_ecr, repository, 3)
    client = local_ecr.client("ecr")

    def delete_repository(params: dict[str, Any], **_: Any) -> None:
        if params.get("repositoryName") == "b-vanishing" and "imageIds" not in params:
            local_ecr.client("ecr").delete_repository(repositoryName="b-vanishing", force=True)

    client.meta.events.register("provide-client-params.ecr.DescribeImages", delete_repository)
    summary = sweeper(local_ecr, client=client).run()
    status = {r.repository: (r.status, r.reason) for r in summary.results}
    assert status["b-vanishing"] == ("skipped", "repository was deleted during the run")
    assert status["a-first"][0] == status["c-last"][0] == "swept"
    assert remaining(local_ecr, "a-first") == remaining(local_ecr, "c-last") == {}
    assert summary.failures == 0


def test_one_repository_failing_does_not_stop_the_others(local_ecr: LocalEcr) -> None:
    for repository in ("a-first", "b-broken", "c-last"):
        untagged_leftovers(local_ecr, repository, 2)
    client = local_ecr.client("ecr")

    def deny_one(params: dict[str, Any], **_: Any) -> None:
        if params.get("repositoryName") == "b-broken":
            error = {"Error": {"Code": "AccessDeniedException", "Message": "denied by policy"}}
            raise ClientError(error, "DescribeImages")

    client.meta.events.register("provide-client-params.ecr.DescribeImages", deny_one)
    summary = sweeper(local_ecr, client=client).run()
    status = {r.repository: r.status for r in summary.results}
    assert status == {"a-first": "swept", "b-broken": "failed", "c-last": "swept"}
    assert summary.failed_repositories == 1 and summary.failures == 1
    assert remaining(local_ecr, "c-last") == {}
    assert len(remaining(local_ecr, "b-broken")) == 2


def test_include_and_exclude_patterns_pick_the_repositories(local_ecr: LocalEcr) -> None:
    for repository in ("team/app", "team/base", "other/app"):
        untagged_leftovers(local_ecr, repository, 1)
    settings = Settings(include_repositories=("team/*",), exclude_repositories=("*/base",))
    summary = sweep(local_ecr, settings)
    assert [r.repository for r in summary.results] == ["team/app"]
    assert len(remaining(local_ecr, "team/base")) == len(remaining(local_ecr, "other/app")) == 1


def test_repository_tags_override_the_settings(local_ecr: LocalEcr) -> None:
    factory = ManifestFactory(random.Random(5))
    for repository, tags in (
        ("skipped", [{"Key": "ecr-sweeper:skip", "Value": "true"}]),
        ("keep-two", [{"Key": "ecr-sweeper:keep-tagged-images", "Value": "2"}]),
        ("bad-tag", [{"Key": "ecr-sweeper:keep-tagged-images", "Value": "lots"}]),
    ):
        local_ecr.client("ecr").create_repository(repositoryName=repository, tags=tags)
        for index in range(4):
            push(local_ecr, repository, factory.image(compact=True), f"v{index}", 9 - index)
    summary = sweep(local_ecr, Settings(keep_tagged_images=1))
    status = {r.repository: (r.status, r.reason or "") for r in summary.results}
    assert status["skipped"] == ("skipped", "tagged ecr-sweeper:skip=true")
    assert status["bad-tag"][0] == "skipped" and "expected a whole number" in status["bad-tag"][1]
    assert sorted(t for tags in remaining(local_ecr, "keep-two").values() for t in tags) == [
        "v2",
        "v3",
    ]
    assert len(remaining(local_ecr, "skipped")) == len(remaining(local_ecr, "bad-tag")) == 4
    assert NOW
