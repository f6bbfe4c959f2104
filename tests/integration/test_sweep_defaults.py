"""A default sweep over the local ECR leaves exactly what the default settings keep."""

from __future__ import annotations

import random

import pytest
from sweep_helpers import NOW, push, remaining, sweep

from ecr_sweeper.settings import Settings
from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory

CI_TAGS = ("main", "latest", "v1.2.{n}", "sha-{h}", "pr-{n}")


Pushed = dict[str, list[tuple[str, tuple[str, ...], float]]]


def build_registry(local_ecr: LocalEcr, seed: int) -> Pushed:
    """Random CI-style registry; returns what was pushed, as the oracle's input."""
    rng = random.Random(seed)
    factory = ManifestFactory(rng)
    pushed: dict[str, list[tuple[str, tuple[str, ...], float]]] = {}
    for index in range(rng.randint(1, 4)):
        repository = f"team/service-{index}"
        history: list[tuple[str, str | None, float]] = []
        for step in range(rng.randint(0, 30)):
            template = rng.choice((*CI_TAGS, None, None))
            tag = template.format(n=step, h=f"{rng.getrandbits(24):06x}") if template else None
            days = round(rng.uniform(0, 120), 3)
            digest = push(local_ecr, repository, factory.image(compact=True), tag, days)
            history.append((digest, tag, days))
        if not history:
            local_ecr.client("ecr").create_repository(repositoryName=repository)
        left = remaining(local_ecr, repository)
        ages = {digest: days for digest, _, days in history}
        pushed[repository] = [(d, tags, ages[d]) for d, tags in left.items()]
    return pushed


def default_keeps(images: list[tuple[str, tuple[str, ...], float]]) -> set[str]:
    """The documented defaults, written independently of the engine."""
    tagged = sorted((i for i in images if i[1]), key=lambda i: (i[2], i[0]))
    keep = {digest for digest, _, _ in tagged[:10]}
    keep |= {digest for digest, tags, _ in images if "latest" in tags}
    keep |= {digest for digest, tags, days in images if not tags and days <= 1}
    return keep


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
