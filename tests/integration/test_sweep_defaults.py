"""A default sweep over the local ECR leaves exactly what the default settings keep."""

from __future__ import annotations

import random

import pytest
from helpers.sweep import NOW, build_registry, default_keeps, push, remaining, sweep, sweeper

from ecr_sweeper.core.settings import Settings
from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory


@pytest.mark.parametrize("seed", range(6))
def test_a_default_sweep_leaves_exactly_what_the_defaults_keep(
    local_ecr: LocalEcr, seed: int
) -> None:
    registry = build_registry(local_ecr, seed)
    summary = sweep(local_ecr)
    assert summary.failures == 0
    expected_deleted = 0
    for repository, images in registry.items():
        keep = default_keeps(images)
        assert set(remaining(local_ecr, repository)) == keep, repository
        expected_deleted += len(images) - len(keep)
    assert summary.total("images_deleted") == expected_deleted
    assert summary.to_dict()["imagesDeleted"] == expected_deleted


def test_dry_run_deletes_nothing_and_reports_what_it_would(local_ecr: LocalEcr) -> None:
    factory = ManifestFactory(random.Random(1))
    for index in range(12):
        push(local_ecr, "app", factory.image(compact=True), f"v{index}", days_ago=30 - index)
    push(local_ecr, "app", factory.image(compact=True), None, days_ago=3)
    before = remaining(local_ecr, "app")
    summary = sweep(local_ecr, dry_run=True)
    assert remaining(local_ecr, "app") == before
    data = summary.to_dict()
    assert (data["dryRun"], data["imagesExpired"], data["imagesDeleted"]) == (True, 3, 0)
    assert local_ecr.calls_for("ecr")["BatchDeleteImage"] == 0


def test_images_pushed_during_the_run_are_kept(local_ecr: LocalEcr) -> None:
    factory = ManifestFactory(random.Random(2))
    for index in range(3):
        push(local_ecr, "app", factory.image(compact=True), f"v{index}", days_ago=10 - index)
    later = NOW.replace(year=NOW.year + 1)
    late = local_ecr.push_image("app", factory.image(compact=True).body, "v-late", pushed_at=later)

    summary = sweep(local_ecr, Settings(keep_tagged_images=2))
    left = remaining(local_ecr, "app")
    assert late in left and len(left) == 3, "the late push must not push v1 out of the newest two"
    assert summary.kept_by_protection["changed-during-run"] == 1


def test_a_confirmed_plan_bounds_what_the_live_run_deletes(local_ecr: LocalEcr) -> None:
    """What expired after the person said yes (not in the plan they saw) is kept."""
    factory = ManifestFactory(random.Random(6))
    seen = push(local_ecr, "app", factory.image(compact=True), None, days_ago=5)
    unseen = push(local_ecr, "app", factory.image(compact=True), None, days_ago=6)
    summary = sweeper(local_ecr, approved={"app": frozenset({seen})}).run()
    assert set(remaining(local_ecr, "app")) == {unseen}
    assert summary.results[0].kept_by_protection == {"not-confirmed": 1}
