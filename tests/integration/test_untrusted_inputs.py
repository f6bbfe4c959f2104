"""Inputs someone with a small right can write (a repository's tags, a fan-out work item, an object
in the run bucket) never make the sweeper delete more than its settings allow."""

from __future__ import annotations

import logging
import random

import pytest
from helpers.sweep import push, remaining, sweep

from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core.settings import Settings
from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory


def twelve_recent_images(local_ecr: LocalEcr, repository: str, tags: dict[str, str]) -> None:
    local_ecr.client("ecr").create_repository(
        repositoryName=repository, tags=[{"Key": k, "Value": v} for k, v in tags.items()]
    )
    make = ManifestFactory(random.Random(19))
    for number in range(12):
        push(local_ecr, repository, make.image(compact=True), f"v{number}", 13 - number)


LOOSENING_TAGS = {"ecr-sweeper:keep-tagged-images": "1", "ecr-sweeper:minimum-age-days": "0"}


def test_a_repository_tag_cant_loosen_the_settings(
    local_ecr: LocalEcr, caplog: pytest.LogCaptureFixture
) -> None:
    """The review's scenario: keep 10 and a minimum age of 30 days keep all 12 images (1 to 12
    days old). Whoever may only tag the repository sets keep 1 and minimum age 0: the next sweep
    still deletes nothing, and says which tags it ignored."""
    twelve_recent_images(local_ecr, "app", LOOSENING_TAGS)
    settings = Settings(keep_tagged_images=10, minimum_age_days=30)
    with caplog.at_level(logging.WARNING):
        summary = sweep(local_ecr, settings, logger=logging.getLogger("test.tags"))
    assert summary.total("images_deleted") == 0 and summary.failures == 0
    assert len(remaining(local_ecr, "app")) == 12
    warnings = [r for r in caplog.records if getattr(r, ev.EVENT, None) == ev.OVERRIDE_IGNORED]
    assert [r.getMessage() for r in warnings] == [
        "repository app: ignored ecr-sweeper:keep-tagged-images=1: it would loosen "
        "keepTaggedImages (10); a tag may only make the policy stricter unless "
        "repositoryTagsMayLoosen is true",
        "repository app: ignored ecr-sweeper:minimum-age-days=0: it would loosen minimumAgeDays "
        "(30); a tag may only make the policy stricter unless repositoryTagsMayLoosen is true",
    ]
    assert all(getattr(r, ev.REPOSITORY) == "app" for r in warnings)


def test_with_repository_tags_may_loosen_the_tag_applies(local_ecr: LocalEcr) -> None:
    twelve_recent_images(local_ecr, "app", LOOSENING_TAGS)
    settings = Settings(keep_tagged_images=10, minimum_age_days=30, repository_tags_may_loosen=True)
    summary = sweep(local_ecr, settings)
    assert summary.total("images_deleted") == 11
    assert list(remaining(local_ecr, "app").values()) == [("v11",)]
