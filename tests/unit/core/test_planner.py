"""The decision core over plain data: default policy, protections and repository overrides."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ecr_sweeper.core import overrides, planner
from ecr_sweeper.core.model import Action, Image, Protection, RepositoryPlan
from ecr_sweeper.core.settings import Settings

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def image(name: str, days_ago: float, *tags: str, size: int = 1000) -> Image:
    return Image(
        digest=f"sha256:{name:0>64}",
        tags=tags,
        pushed_at=NOW - timedelta(days=days_ago),
        size_bytes=size,
    )


def plan(images: list[Image], settings: Settings | None = None, **tags: str) -> RepositoryPlan:
    rules = overrides.repository_rules(settings or Settings(), tags)
    return planner.plan_repository("app", images, rules, now=NOW)


def expired_tags(result: RepositoryPlan) -> set[str]:
    return {tag for d in result.expired for tag in d.image.tags} | {
        d.image.digest for d in result.expired if not d.image.tags
    }


def test_default_keeps_the_newest_ten_tagged_and_expires_older_ones() -> None:
    images = [image(f"{i:x}", i + 1, f"v{i}") for i in range(14)]
    result = plan(images)
    assert expired_tags(result) == {"v10", "v11", "v12", "v13"}
    for decision in result.expired:
        assert decision.rule_priority == 2
        assert decision.reason
    assert len(result.kept) == 10


def test_untagged_images_expire_only_after_the_grace_period() -> None:
    old = image("a1", days_ago=1.01)
    young = image("a2", days_ago=0.99)
    result = plan([old, young])
    assert [d.image for d in result.expired] == [old]
    assert result.expired[0].rule_priority == 1
    (kept,) = result.kept
    assert kept.image == young and kept.protection is None


def test_latest_is_never_deleted_and_the_reason_says_so() -> None:
    images = [image(f"{i:x}", i + 1, f"v{i}") for i in range(12)]
    images[-1] = replace(images[-1], tags=("v11", "latest"))
    result = plan(images)
    assert expired_tags(result) == {"v10"}
    protected = next(d for d in result.kept if "latest" in d.image.tags)
    assert protected.protection is Protection.PROTECTED_TAG
    assert "'latest' is protected" in protected.reason and "rule 2" in protected.reason


def test_minimum_age_keeps_young_images_a_rule_would_expire() -> None:
    images = [image(f"{i:x}", 0.1 * (i + 1), f"v{i}") for i in range(3)]
    result = plan(images, Settings(keep_tagged_images=1, minimum_age_days=1))
    assert not result.expired
    assert {d.protection for d in result.kept if d.protection} == {Protection.TOO_YOUNG}


def test_images_pushed_during_the_run_are_kept_and_not_counted() -> None:
    settled = [image(f"{i:x}", i + 1, f"v{i}") for i in range(2)]
    during = replace(image("f0", 0, "v-new"), pushed_at=NOW + timedelta(seconds=5))
    result = plan([*settled, during], Settings(keep_tagged_images=2))
    assert not result.expired, "a push during the run must not push v1 out of the newest two"
    newest = result.decisions[0]
    assert newest.image == during and newest.protection is Protection.CHANGED_DURING_RUN


def test_decisions_are_newest_first_and_every_one_has_a_reason() -> None:
    images = [image("b", 3, "x"), image("a", 1, "y"), image("c", 2)]
    result = plan(images)
    assert [d.image.digest[-1] for d in result.decisions] == ["a", "c", "b"]
    assert all(d.reason for d in result.decisions)


@pytest.mark.parametrize(
    ("name", "selected"),
    [("team/app", True), ("team/base", False), ("infra/x", False), ("other", False)],
)
def test_include_and_exclude_patterns(name: str, selected: bool) -> None:
    settings = Settings(
        include_repositories=("team/*", "infra/*"), exclude_repositories=("*/base", "infra/*")
    )
    assert planner.select_repository(name, settings) is selected


def test_repository_tags_override_keep_count_and_can_skip() -> None:
    images = [image(f"{i:x}", i + 1, f"v{i}") for i in range(5)]
    result = plan(images, Settings(keep_tagged_images=1), **{overrides.KEEP_TAGGED_TAG: "2"})
    assert expired_tags(result) == {"v2", "v3", "v4"}
    assert result.notes == (f"override {overrides.KEEP_TAGGED_TAG}=2",)
    rules = overrides.repository_rules(Settings(), {overrides.SKIP_TAG: "true"})
    assert rules.skip


def test_a_tag_that_would_loosen_the_settings_is_ignored_and_named() -> None:
    """Whoever may tag a repository (ecr:TagResource, often a CI role's) can't make the sweeper
    delete more there: keep 10 and 30 days stay in force over keep=1 and minimum age 0."""
    settings = Settings(keep_tagged_images=10, minimum_age_days=30, untagged_grace_days=7)
    images = [image(f"{i:x}", 40 + i, f"v{i}") for i in range(12)]
    tags = {
        overrides.KEEP_TAGGED_TAG: "1",
        overrides.MINIMUM_AGE_TAG: "0",
        overrides.UNTAGGED_GRACE_TAG: "1",
    }
    rules = overrides.repository_rules(settings, tags)
    assert rules.policy == settings.policy()
    assert rules.minimum_age == timedelta(days=30) and rules.orphan_grace == timedelta(days=7)
    assert rules.ignored == (
        f"ignored {overrides.KEEP_TAGGED_TAG}=1: it would loosen keepTaggedImages (10); a tag "
        "may only make the policy stricter unless repositoryTagsMayLoosen is true",
        f"ignored {overrides.UNTAGGED_GRACE_TAG}=1: it would loosen untaggedGraceDays (7); a "
        "tag may only make the policy stricter unless repositoryTagsMayLoosen is true",
        f"ignored {overrides.MINIMUM_AGE_TAG}=0: it would loosen minimumAgeDays (30); a tag "
        "may only make the policy stricter unless repositoryTagsMayLoosen is true",
    )
    assert rules.notes == rules.ignored
    result = planner.plan_repository("app", images, rules, now=NOW)
    assert expired_tags(result) == {"v10", "v11"}


def test_a_stricter_tag_applies_and_an_equal_one_is_no_loosening() -> None:
    settings = Settings(keep_tagged_images=3, minimum_age_days=5)
    tags = {overrides.KEEP_TAGGED_TAG: "6", overrides.MINIMUM_AGE_TAG: "5"}
    rules = overrides.repository_rules(settings, tags)
    assert rules.policy == settings.policy(6) and rules.minimum_age == timedelta(days=5)
    assert rules.ignored == ()


def test_repository_tags_may_loosen_when_the_settings_say_so() -> None:
    settings = Settings(keep_tagged_images=10, minimum_age_days=30, repository_tags_may_loosen=True)
    tags = {overrides.KEEP_TAGGED_TAG: "1", overrides.MINIMUM_AGE_TAG: "0"}
    rules = overrides.repository_rules(settings, tags)
    assert rules.policy == settings.policy(1) and rules.minimum_age == timedelta(0)
    assert rules.ignored == ()
    images = [image(f"{i:x}", 40 + i, f"v{i}") for i in range(12)]
    assert len(planner.plan_repository("app", images, rules, now=NOW).expired) == 11


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({overrides.KEEP_TAGGED_TAG: "many"}, "expected a whole number from 1 to 10000"),
        ({overrides.SKIP_TAG: "yes"}, "expected true or false"),
        ({overrides.UNTAGGED_GRACE_TAG: "\u00b2"}, "expected a whole number from 1 to 3650"),
        ({overrides.MINIMUM_AGE_TAG: "1000000000"}, "expected a whole number from 0 to 3650"),
        ({"ecr-sweeper:keep": "3"}, "unknown override tag 'ecr-sweeper:keep'"),
    ],
)
def test_bad_override_tags_are_refused_with_the_tag_named(
    tags: dict[str, str], message: str
) -> None:
    with pytest.raises(overrides.OverrideError, match=message):
        overrides.repository_rules(Settings(), tags)


def test_count_overrides_are_ignored_with_a_note_when_a_policy_is_set() -> None:
    policy = {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": 1,
                },
                "action": {"type": "expire"},
            }
        ]
    }
    settings = Settings.from_mapping({"lifecyclePolicy": policy})
    rules = overrides.repository_rules(settings, {overrides.KEEP_TAGGED_TAG: "5"})
    assert "ignored" in rules.notes[0]
    result = planner.plan_repository(
        "app", [image("1", 1, "a"), image("2", 2, "b")], rules, now=NOW
    )
    assert [d.image.tags for d in result.expired] == [("b",)]
    assert result.expired[0].action is Action.EXPIRE
