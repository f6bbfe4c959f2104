"""The archive tier in the planner: archived images left alone by default, and archiving (instead
of deleting) under exactly the protections that deleting obeys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ecr_sweeper.core import overrides, planner
from ecr_sweeper.core.lifecycle import parse_policy
from ecr_sweeper.core.model import Action, Image, ImageStatus, Protection, RepositoryPlan
from ecr_sweeper.core.planner import RepositoryFacts
from ecr_sweeper.core.settings import Settings

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ARCHIVE = Settings(expired_image_action="archive")


def digest(name: str) -> str:
    return f"sha256:{name.encode().hex():0>64}"


def name_of(image: Image) -> str:
    return bytes.fromhex(image.digest[7:]).lstrip(b"\0").decode()


def image(
    name: str,
    days_ago: float,
    *tags: str,
    media: str = MANIFEST,
    subject: str | None = None,
    status: ImageStatus = ImageStatus.ACTIVE,
    archived_days_ago: float | None = None,
) -> Image:
    return Image(
        digest=digest(name),
        tags=tags,
        pushed_at=NOW - timedelta(days=days_ago),
        size_bytes=100,
        manifest_media_type=media,
        subject_digest=digest(subject) if subject else None,
        status=status,
        last_archived_at=(
            None if archived_days_ago is None else NOW - timedelta(days=archived_days_ago)
        ),
    )


def plan(
    images: list[Image], settings: Settings, facts: RepositoryFacts | None = None
) -> RepositoryPlan:
    rules = overrides.repository_rules(settings, {})
    return planner.plan_repository("app", images, rules, now=NOW, facts=facts)


def actions(result: RepositoryPlan) -> dict[str, tuple[str, str | None]]:
    return {
        name_of(d.image): (d.action.value, d.protection.value if d.protection else None)
        for d in result.decisions
    }


def names(decisions: tuple[object, ...]) -> set[str]:
    return {name_of(d.image) for d in decisions}  # type: ignore[attr-defined]


def twelve_active_five_archived() -> list[Image]:
    active = [image(f"active-{n:02}", 2 + n, f"v{n}") for n in range(12)]
    archived = [
        image(
            f"archived-{n}", 100 + n, f"old{n}", status=ImageStatus.ARCHIVED, archived_days_ago=50
        )
        for n in range(5)
    ]
    return active + archived


# --- the acceptance scenario -------------------------------------------------------------


def test_default_settings_keep_10_active_delete_2_oldest_and_leave_archived_alone() -> None:
    result = plan(twelve_active_five_archived(), Settings())
    assert names(result.expired) == {"active-10", "active-11"}
    assert not result.transitioned
    kept = names(result.kept)
    assert kept == {f"active-{n:02}" for n in range(10)} | {f"archived-{n}" for n in range(5)}
    archived = [d for d in result.decisions if d.image.status is ImageStatus.ARCHIVED]
    assert {d.reason for d in archived} == {"kept: archived, and no archive rule selects it"}


def test_archive_setting_ends_with_10_active_and_7_archived_and_nothing_deleted() -> None:
    result = plan(twelve_active_five_archived(), ARCHIVE)
    assert not result.expired
    assert names(result.transitioned) == {"active-10", "active-11"}
    assert all(d.rule_priority == 2 for d in result.transitioned)
    active_after = [d for d in result.kept if d.image.status is ImageStatus.ACTIVE]
    archived_after = [d for d in result.kept if d.image.status is ImageStatus.ARCHIVED] + list(
        result.transitioned
    )
    assert len(active_after) == 10
    assert len(archived_after) == 7


def test_archive_retention_deletes_archived_images_only_after_that_many_days() -> None:
    images = [
        image("fresh", 1, "v2"),
        image("cold-long", 400, "v0", status=ImageStatus.ARCHIVED, archived_days_ago=200),
        image("cold-short", 400, "v1", status=ImageStatus.ARCHIVED, archived_days_ago=100),
    ]
    settings = Settings(expired_image_action="archive", archive_retention_days=180)
    result = plan(images, settings)
    assert names(result.expired) == {"cold-long"}
    assert result.expired[0].rule_priority == 3
    assert names(result.kept) == {"fresh", "cold-short"}


def test_activating_images_are_never_touched() -> None:
    images = [image(f"active-{n}", 2 + n, f"v{n}") for n in range(3)] + [
        image("restoring", 500, "old", status=ImageStatus.ACTIVATING, archived_days_ago=400)
    ]
    for settings in (
        Settings(keep_tagged_images=1),
        Settings(keep_tagged_images=1, expired_image_action="archive", archive_retention_days=90),
    ):
        decision = next(d for d in plan(images, settings).decisions if d.image.tags == ("old",))
        assert decision.action is Action.KEEP
        assert "ACTIVATING" in decision.reason


# --- protections hold for archiving exactly as for deleting --------------------------------------


@pytest.mark.parametrize(
    ("facts", "protection"),
    [
        (RepositoryFacts(in_use_by_digest={digest("v1"): "service web"}), Protection.IN_USE),
        (RepositoryFacts(in_use_by_tag={"v1": "task t"}), Protection.IN_USE),
    ],
)
def test_an_image_in_use_is_never_archived(facts: RepositoryFacts, protection: Protection) -> None:
    images = [image("v2", 1, "v2"), image("v1", 5, "v1")]
    settings = Settings(keep_tagged_images=1, expired_image_action="archive")
    result = plan(images, settings, facts)
    assert not result.transitioned and not result.expired
    decision = next(d for d in result.decisions if d.image.tags == ("v1",))
    assert decision.protection is protection
    assert decision.reason.endswith("would transition it")


def test_protected_tags_too_young_and_pushed_during_the_run_are_never_archived() -> None:
    images = [
        image("new", 1, "v9"),
        image("latest", 5, "latest"),
        image("young", 2, "v3"),
        image("future", -0.1, "v4"),
    ]
    settings = Settings(keep_tagged_images=1, minimum_age_days=3, expired_image_action="archive")
    assert actions(plan(images, settings)) == {
        "future": ("keep", "changed-during-run"),
        "new": ("keep", None),
        "young": ("keep", "too-young"),
        "latest": ("keep", "protected-tag"),
    }


def index_repository() -> tuple[list[Image], RepositoryFacts]:
    images = [
        image("idx-new", 1, "v2", media=INDEX),
        image("idx-old", 5, "v1", media=INDEX),
        image("amd64-new", 1),
        image("amd64-old", 5),
        image("arm64-old", 5, "arm-v1"),
        image("shared", 9),
        image("sig-old", 4, subject="idx-old"),
    ]
    facts = RepositoryFacts(
        children={
            digest("idx-new"): (digest("amd64-new"), digest("shared")),
            digest("idx-old"): (digest("amd64-old"), digest("arm64-old"), digest("shared")),
        }
    )
    return images, facts


def test_children_and_referrers_are_archived_with_their_image_and_after_it() -> None:
    images, facts = index_repository()
    settings = Settings(keep_tagged_images=1, expired_image_action="archive")
    result = plan(images, settings, facts)
    assert actions(result) == {
        "idx-new": ("keep", None),
        "amd64-new": ("keep", "index-child"),
        "shared": ("keep", "index-child"),
        "idx-old": ("transition", None),
        "amd64-old": ("transition", None),
        # tagged, so the policy judges it (keep-1 of tagged would archive it anyway)
        "arm64-old": ("transition", None),
        "sig-old": ("transition", None),
    }
    by_name = {name_of(d.image): d for d in result.decisions}
    assert by_name["amd64-old"].follows == (digest("idx-old"),)
    assert by_name["arm64-old"].follows == (digest("idx-old"),)
    assert by_name["sig-old"].follows == (digest("idx-old"),)
    assert by_name["idx-old"].follows == ()
    assert by_name["amd64-old"].reason == "archived with its index v1"
    assert by_name["sig-old"].reason == "archived with its image v1"


def test_a_child_the_policy_would_delete_is_archived_with_its_archived_index() -> None:
    """A policy mixing delete and transition rules (as ECR's own policies may): what an archived
    index needs is never deleted."""
    images = [
        image("idx", 50, "release-1", media=INDEX),
        image("child", 50, "tmp-1"),
    ]
    facts = RepositoryFacts(children={digest("idx"): (digest("child"),)})
    policy = {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["release*"],
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 30,
                },
                "action": {"type": "transition", "targetStorageClass": "archive"},
            },
            {
                "rulePriority": 2,
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["tmp*"],
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 7,
                },
                "action": {"type": "expire"},
            },
        ]
    }
    rules = overrides.RepositoryRules(
        policy=parse_policy(policy),
        protected_tags=(),
        minimum_age=timedelta(0),
        orphan_grace=timedelta(days=1),
    )
    result = planner.plan_repository("app", images, rules, now=NOW, facts=facts)
    assert actions(result) == {
        "idx": ("transition", None),
        "child": ("transition", "index-child"),
    }
    child = next(d for d in result.decisions if d.image.tags == ("tmp-1",))
    assert child.follows == (digest("idx"),)
    assert child.reason.startswith("archived with its index release-1, not deleted before it")


def test_an_already_archived_child_of_an_archived_index_stays_as_it_is() -> None:
    images = [
        image("idx-new", 1, "v2", media=INDEX),
        image("idx-old", 5, "v1", media=INDEX),
        image("cold-child", 5, status=ImageStatus.ARCHIVED, archived_days_ago=1),
    ]
    facts = RepositoryFacts(children={digest("idx-old"): (digest("cold-child"),)})
    settings = Settings(keep_tagged_images=1, expired_image_action="archive")
    result = plan(images, settings, facts)
    assert actions(result)["cold-child"] == ("keep", None)
    assert actions(result)["idx-old"] == ("transition", None)


def test_uncertain_repositories_archive_nothing() -> None:
    facts = RepositoryFacts(uncertain="ECS could not be listed")
    result = plan(twelve_active_five_archived(), ARCHIVE, facts)
    assert not result.transitioned and not result.expired


def test_transitions_are_only_ever_planned_for_active_images() -> None:
    images, facts = index_repository()
    images += [
        image("cold", 300, "c1", status=ImageStatus.ARCHIVED, archived_days_ago=200),
        image("warming", 300, "c2", status=ImageStatus.ACTIVATING),
    ]
    settings = Settings(
        keep_tagged_images=1, expired_image_action="archive", archive_retention_days=90
    )
    result = plan(images, settings, facts)
    assert result.transitioned
    assert all(d.image.status is ImageStatus.ACTIVE for d in result.transitioned)
    assert names(result.expired) == {"cold"}


# --- archived dependents: left alone unless their archived owner is expired ----------------------


def test_an_expired_active_index_never_takes_an_archived_child_with_it() -> None:
    images = [
        image("idx-new", 1, "v2", media=INDEX),
        image("idx-old", 5, "v1", media=INDEX),
        image("amd64-old", 5),
        image("arm64-old", 5, status=ImageStatus.ARCHIVED, archived_days_ago=2),
    ]
    facts = RepositoryFacts(
        children={digest("idx-old"): (digest("amd64-old"), digest("arm64-old"))}
    )
    result = plan(images, Settings(keep_tagged_images=1), facts)
    assert actions(result) == {
        "idx-new": ("keep", None),
        "idx-old": ("expire", None),
        "amd64-old": ("expire", None),
        "arm64-old": ("keep", None),
    }
    arm = next(d for d in result.decisions if name_of(d.image) == "arm64-old")
    assert arm.reason.startswith("kept: archived; the sweeper deletes an archived image only")


def test_an_archived_orphaned_referrer_is_left_alone_by_default() -> None:
    images = [
        image("v1", 1, "v1"),
        image("orphan-active", 30, subject="gone"),
        image("orphan-cold", 30, subject="gone2", status=ImageStatus.ARCHIVED, archived_days_ago=9),
        image("sig-of-cold", 30, subject="orphan-cold"),
    ]
    assert actions(plan(images, Settings())) == {
        "v1": ("keep", None),
        "orphan-active": ("expire", None),
        "orphan-cold": ("keep", None),
        # a referrer of a kept archived image stays with it
        "sig-of-cold": ("keep", "referrer"),
    }


def test_an_archived_index_expired_by_an_archive_rule_takes_its_archived_children() -> None:
    cold = {"status": ImageStatus.ARCHIVED, "archived_days_ago": 200.0}
    images = [
        image("idx-new", 1, "v2", media=INDEX),
        image("idx-cold", 400, "v1", media=INDEX, **cold),  # type: ignore[arg-type]
        image("amd64-cold", 400, **cold),  # type: ignore[arg-type]
        image("shared-cold", 400, **cold),  # type: ignore[arg-type]
        image("other-cold", 400, "v0", media=INDEX, status=ImageStatus.ARCHIVED,
              archived_days_ago=10),
    ]  # fmt: skip
    facts = RepositoryFacts(
        children={
            digest("idx-cold"): (digest("amd64-cold"), digest("shared-cold")),
            digest("other-cold"): (digest("shared-cold"),),
        }
    )
    settings = Settings(expired_image_action="archive", archive_retention_days=180)
    result = plan(images, settings, facts)
    assert actions(result) == {
        "idx-new": ("keep", None),
        "idx-cold": ("expire", None),
        "amd64-cold": ("expire", None),
        "other-cold": ("keep", None),
        "shared-cold": ("keep", "index-child"),  # still listed by a kept archived index
    }
    amd = next(d for d in result.decisions if name_of(d.image) == "amd64-cold")
    assert amd.follows == (digest("idx-cold"),)


def test_when_an_archived_index_cant_be_read_its_possible_children_stay() -> None:
    """BatchGetImage can't read an archived index, so its children are unknown: no untagged or
    archived image goes this run; tagged active images are planned as usual."""
    cold = {"status": ImageStatus.ARCHIVED, "archived_days_ago": 200.0}
    images = (
        [image(f"v{n}", 1 + n, f"v{n}") for n in range(3)]
        + [
            image("untagged-old", 30),
            image("idx-cold", 400, "cold-1", media=INDEX, **cold),  # type: ignore[arg-type]
            image("maybe-child", 400, **cold),  # type: ignore[arg-type]
            image("sig", 30, f"sha256-{digest('untagged-old')[7:]}.sig"),
        ]
    )
    facts = RepositoryFacts(unreadable_indexes=(digest("idx-cold"),))
    settings = Settings(keep_tagged_images=1, archive_retention_days=180,
                        expired_image_action="archive")  # fmt: skip
    assert actions(plan(images, settings, facts)) == {
        "v0": ("keep", None),
        "v1": ("transition", None),
        "v2": ("transition", None),
        "untagged-old": ("keep", "uncertain"),
        "idx-cold": ("expire", None),
        "maybe-child": ("keep", "uncertain"),
        "sig": ("keep", "referrer"),  # a kept image keeps its signature
    }
    without = actions(plan(images, settings))
    assert without["maybe-child"] == ("expire", None)
    assert without["untagged-old"] == without["sig"] == ("transition", None)
