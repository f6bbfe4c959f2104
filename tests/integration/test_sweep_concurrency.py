"""The worker pool, the limiter, reconciliation and the time budget, against the local ECR."""

from __future__ import annotations

import gc
import logging
import random
from typing import Any

import pytest
from botocore.config import Config
from helpers.sweep import build_registry, default_keeps, push, remaining, sweep, sweeper

from ecr_sweeper.aws.clients import AwsTarget
from ecr_sweeper.aws.ecr import EcrRegistry
from ecr_sweeper.aws.ssm import ParameterCursor
from ecr_sweeper.core.references import InUse
from ecr_sweeper.core.results import UNFINISHED, RunSummary
from ecr_sweeper.core.settings import Settings
from ecr_sweeper.sweep.budget import TimeBudget
from ecr_sweeper.sweep.engine import GC_FIRST_GENERATION_THRESHOLD, _fewer_collections
from ecr_sweeper.sweep.in_use import images_in_use
from local_ecr import LocalEcr
from local_ecr.manifests import Built, ManifestFactory

KEEP_TWO = Settings(keep_tagged_images=2)


def tagged_history(
    local_ecr: LocalEcr, repository: str, images: int, tags_each: int, seed: int = 0
) -> list[Built]:
    """`images` images of `tags_each` tags each, one day apart, newest last."""
    factory = ManifestFactory(random.Random(seed))
    built = []
    for number in range(images):
        image = factory.image(compact=True, layers=1)
        for tag in range(tags_each):
            push(local_ecr, repository, image, f"build-{number}-t{tag}", images - number + 2)
        built.append(image)
    return built


@pytest.mark.parametrize("whole_image", [False, True], ids=["tag-only", "whole-image"])
def test_multi_tag_images_are_deleted_without_false_failures_on_either_reading(
    local_ecr: LocalEcr, whole_image: bool
) -> None:
    """ECR's reference doesn't say what {imageDigest, imageTag} deletes: only that tag, or the
    whole image (moto). Either way the sweep ends right, with zero failures."""
    local_ecr.digest_and_tag_deletes_image = whole_image
    built = tagged_history(local_ecr, "app", images=40, tags_each=3)
    summary = sweep(local_ecr, KEEP_TWO)
    left = remaining(local_ecr, "app")
    assert set(left) == {built[-1].digest, built[-2].digest}
    assert all(len(tags) == 3 for tags in left.values()), "kept images keep every tag"
    assert summary.failures == 0 and summary.delete_failures == 0
    assert summary.total("images_deleted") == 38
    calls = local_ecr.calls_for("ecr")
    assert calls["BatchDeleteImage"] == 2, "114 ids go in two batches"
    assert calls["ListImages"] == 2, "one re-check before, one confirmation after"


def test_a_lost_response_to_a_delete_that_worked_is_a_deletion_not_a_failure(
    local_ecr: LocalEcr,
) -> None:
    built = tagged_history(local_ecr, "app", images=12, tags_each=1)
    local_ecr.faults.lose_response("BatchDeleteImage", times=1)
    summary = sweep(local_ecr, KEEP_TWO)
    assert set(remaining(local_ecr, "app")) == {b.digest for b in built[-2:]}
    assert summary.failures == 0
    assert summary.total("images_deleted") == 10
    assert local_ecr.calls_for("ecr")["BatchDeleteImage"] == 2, "the lost call was retried"


def test_a_failure_counts_only_for_an_image_still_there(local_ecr: LocalEcr) -> None:
    """Every attempt of one batch fails, but another client deleted half of its images."""
    built = tagged_history(local_ecr, "app", images=6, tags_each=1)
    client = local_ecr.client("ecr")

    def someone_else_deletes(**_: Any) -> None:
        if not hasattr(someone_else_deletes, "done"):
            someone_else_deletes.done = True  # type: ignore[attr-defined]
            ids = [{"imageDigest": b.digest} for b in built[:2]]
            local_ecr.client("ecr").batch_delete_image(repositoryName="app", imageIds=ids)
            local_ecr.faults.error(500, "BatchDeleteImage", times=11)  # every attempt of ours

    client.meta.events.register_first("before-call.ecr.BatchDeleteImage", someone_else_deletes)
    summary = sweeper(local_ecr, KEEP_TWO, client=client).run()
    left = remaining(local_ecr, "app")
    assert set(left) == {b.digest for b in built[2:]}
    failed = {failure.image_id["imageDigest"] for failure in summary.results[0].delete_failures}
    assert failed == {b.digest for b in built[2:4]}, "only what stayed is a failure"
    assert summary.total("images_deleted") == 2, "what is gone counts as gone"


def test_results_come_in_repository_order_whatever_finished_first(local_ecr: LocalEcr) -> None:
    names = [f"repo-{n:02d}" for n in range(12)]
    for number, name in enumerate(reversed(names)):
        tagged_history(local_ecr, name, images=3 + number, tags_each=1, seed=number)
    local_ecr.faults.latency(0.002, jitter=0.02)
    summary = sweep(local_ecr, KEEP_TWO, max_concurrency=8)
    assert [r.repository for r in summary.results] == names
    assert summary.failures == 0
    assert all(len(remaining(local_ecr, name)) == 2 for name in names)


def test_throttling_halves_the_calls_in_flight_and_loses_nothing(local_ecr: LocalEcr) -> None:
    pushed = build_registry(local_ecr, seed=5)
    local_ecr.faults.throttle("DescribeRepositories", on_calls={1})
    local_ecr.faults.throttle(rate=0.2)
    summary = sweep(local_ecr, max_concurrency=8)
    assert summary.failures == 0
    assert summary.throttled_calls > 0 and summary.to_dict()["throttledCalls"] > 0
    assert summary.lowest_concurrency < 8, "throttling cut the calls in flight"
    for repository, images in pushed.items():
        assert set(remaining(local_ecr, repository)) == default_keeps(images)


def test_repositories_are_listed_while_the_images_in_use_are_learned(
    local_ecr: LocalEcr,
) -> None:
    """Learning what is in use (ECS, Lambda, ...) no longer delays the first listings; only
    planning waits for it, so nothing is decided without it."""
    for number in range(3):
        tagged_history(local_ecr, f"repo-{number}", images=4, tags_each=1, seed=number)
    local_ecr.faults.latency(1.0, operation="ListClusters", service="ecs")
    events: list[str] = []
    target = AwsTarget(region=local_ecr.region, endpoint_url=local_ecr.endpoint_url)

    def learn_in_use() -> InUse:
        in_use = images_in_use(KEEP_TWO, target.client)
        events.append("in use known")
        return in_use

    client = local_ecr.client("ecr", config=Config(retries={"mode": "standard"}))
    for operation, event in (("DescribeImages", "list"), ("BatchDeleteImage", "del")):
        client.meta.events.register(
            f"before-call.ecr.{operation}", lambda event=event, **_: events.append(event)
        )
    summary = sweep(local_ecr, KEEP_TWO, client=client, max_concurrency=4, in_use=learn_in_use)
    assert events[:4] == ["list", "list", "list", "in use known"], events
    assert events[4:] == ["del"] * 3, "every delete waited for the images in use"
    assert summary.failures == 0 and summary.total("images_deleted") == 6


def test_an_unexpected_error_learning_the_images_in_use_fails_every_repository(
    local_ecr: LocalEcr,
) -> None:
    for number in range(2):
        tagged_history(local_ecr, f"repo-{number}", images=4, tags_each=1, seed=number)

    def broken() -> InUse:
        raise RuntimeError("the ECS SDK model changed")

    summary = sweep(local_ecr, KEEP_TWO, in_use=broken)
    assert [r.status for r in summary.results] == ["failed", "failed"]
    assert all("the ECS SDK model changed" in (r.reason or "") for r in summary.results)
    assert all(len(remaining(local_ecr, f"repo-{n}")) == 4 for n in range(2)), "none deleted"


def test_a_run_collects_garbage_less_often_and_puts_the_thresholds_back(
    local_ecr: LocalEcr,
) -> None:
    tagged_history(local_ecr, "app", images=4, tags_each=1)
    before = gc.get_threshold()
    during: list[tuple[int, int, int]] = []
    target = AwsTarget(region=local_ecr.region, endpoint_url=local_ecr.endpoint_url)

    def learn_in_use() -> InUse:
        during.append(gc.get_threshold())
        return images_in_use(KEEP_TWO, target.client)

    summary = sweep(local_ecr, KEEP_TWO, in_use=learn_in_use)
    assert summary.total("images_deleted") == 2
    assert during == [(max(before[0], GC_FIRST_GENERATION_THRESHOLD), *before[1:])]
    assert gc.get_threshold() == before


def test_overlapping_runs_put_the_thresholds_back_when_the_last_one_ends() -> None:
    before = gc.get_threshold()
    raised = (max(before[0], GC_FIRST_GENERATION_THRESHOLD), *before[1:])
    first, second = _fewer_collections(), _fewer_collections()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold() == raised, "the second run is still going"
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before


class MemoryCursor:
    problem: str | None = None

    def __init__(self, value: str | None = None) -> None:
        self.value = value
        self.saves: list[str | None] = []

    def load(self) -> str | None:
        return self.value

    def save(self, resume_from: str | None) -> None:
        self.value = resume_from
        self.saves.append(resume_from)


def budget_of_delete_calls(local_ecr: LocalEcr, calls: int) -> TimeBudget:
    """A budget on a clock that ticks once per BatchDeleteImage call: runs out after `calls`."""
    return TimeBudget(calls - 0.5, clock=lambda: local_ecr.calls_for("ecr")["BatchDeleteImage"])


def test_a_run_out_of_time_stops_cleanly_and_the_next_run_finishes(local_ecr: LocalEcr) -> None:
    names = [f"repo-{n}" for n in range(5)]
    history = {name: tagged_history(local_ecr, name, 30, 1, seed=n) for n, name in enumerate(names)}
    cursor = MemoryCursor()
    first = sweep(
        local_ecr, KEEP_TWO, max_concurrency=1, cursor=cursor,
        budget=budget_of_delete_calls(local_ecr, 2),
    )  # fmt: skip
    statuses = [r.status for r in first.results]
    assert statuses[:2] == ["swept", "swept"] and set(statuses[2:]) == {UNFINISHED}
    assert first.unfinished_repositories == names[2:]
    assert first.to_dict()["repositoriesUnfinished"] == names[2:]
    assert cursor.value == "repo-2"
    assert all(len(remaining(local_ecr, name)) == 30 for name in names[2:]), "nothing half-seen"

    second = sweep(local_ecr, KEEP_TWO, cursor=cursor)
    assert second.resumed_from == "repo-2" and second.unfinished_repositories == []
    assert cursor.value is None and cursor.saves == ["repo-2", None]
    for name in names:
        assert set(remaining(local_ecr, name)) == {b.digest for b in history[name][-2:]}
    assert first.failures == second.failures == 0


def test_a_large_repository_stops_between_delete_batches(local_ecr: LocalEcr) -> None:
    built = tagged_history(local_ecr, "big", images=350, tags_each=1)
    summary = sweep(
        local_ecr, KEEP_TWO, max_concurrency=1, budget=budget_of_delete_calls(local_ecr, 2)
    )
    (result,) = summary.results
    assert result.status == UNFINISHED
    assert result.reason == "the time budget ran out between delete batches"
    assert result.images_deleted == 200 and len(remaining(local_ecr, "big")) == 150
    assert summary.failures == 0
    assert built[-1].digest in remaining(local_ecr, "big")


def test_a_dry_run_never_moves_the_cursor(local_ecr: LocalEcr) -> None:
    tagged_history(local_ecr, "app", images=5, tags_each=1)
    cursor = MemoryCursor("zzz")
    summary = sweep(local_ecr, KEEP_TWO, dry_run=True, cursor=cursor, budget=TimeBudget(0))
    assert summary.unfinished_repositories == ["app"] and cursor.saves == []
    assert summary.resumed_from is None, "a dry run starts at the first repository"


def test_the_cursor_lives_in_an_ssm_parameter(local_ecr: LocalEcr) -> None:
    ssm = local_ecr.client("ssm")
    ssm.put_parameter(Name="/sweeper/cursor", Value="{}", Type="String")
    cursor = ParameterCursor(ssm, "/sweeper/cursor", logging.getLogger("test"))
    assert cursor.load() is None
    cursor.save("team/web")
    assert ParameterCursor(ssm, "/sweeper/cursor", logging.getLogger("t")).load() == "team/web"
    cursor.save(None)
    assert cursor.load() is None


def test_an_unreadable_cursor_starts_at_the_first_repository_and_says_so(
    local_ecr: LocalEcr, caplog: pytest.LogCaptureFixture
) -> None:
    tagged_history(local_ecr, "app", images=4, tags_each=1)
    cursor = ParameterCursor(local_ecr.client("ssm"), "/missing", logging.getLogger("test"))
    with caplog.at_level(logging.WARNING):
        summary: RunSummary = sweep(local_ecr, KEEP_TWO, cursor=cursor)
    assert summary.resumed_from is None and summary.total("images_deleted") == 2
    assert any("can't read the cursor /missing" in record.message for record in caplog.records)


def test_every_call_is_counted_against_the_lower_bound(local_ecr: LocalEcr) -> None:
    """Per repository: its tags, the listing pages, one re-check, the delete batches and one
    confirmation; nothing is fetched twice."""
    tagged_history(local_ecr, "app", images=250, tags_each=1)
    summary = sweep(local_ecr, KEEP_TWO)
    assert summary.total("images_deleted") == 248
    calls = local_ecr.calls_for("ecr")
    assert dict(calls) == {
        "DescribeRepositories": 1,
        "ListTagsForResource": 1,
        "DescribeImages": 1,
        "ListImages": 2,
        "BatchDeleteImage": 3,
    }


def test_throttles_are_retried_with_short_jittered_backoff_and_counted(
    local_ecr: LocalEcr, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr("botocore.endpoint.time.sleep", slept.append)
    local_ecr.faults.throttle("DescribeRepositories", times=3)
    target = AwsTarget(region=local_ecr.region, endpoint_url=local_ecr.endpoint_url)
    registry = EcrRegistry(target.registry_client())
    assert list(registry.repositories()) == []
    assert registry.throttled_calls == 3
    assert len(slept) == 3 and all(0 <= delay <= 0.1 * 2**n for n, delay in enumerate(slept))
