"""Multi-arch indexes, referrers and images in use, over plain data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ecr_sweeper.core import overrides, planner
from ecr_sweeper.core.model import Action, Image, Protection, RepositoryPlan
from ecr_sweeper.core.planner import RepositoryFacts
from ecr_sweeper.core.settings import Settings

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def digest(name: str) -> str:
    return f"sha256:{name.encode().hex():0>64}"


def image(
    name: str, days_ago: float, *tags: str, media: str = MANIFEST, subject: str | None = None
) -> Image:
    return Image(
        digest=digest(name),
        tags=tags,
        pushed_at=NOW - timedelta(days=days_ago),
        size_bytes=100,
        manifest_media_type=media,
        subject_digest=digest(subject) if subject else None,
    )


def plan(
    images: list[Image], facts: RepositoryFacts, settings: Settings | None = None
) -> RepositoryPlan:
    rules = overrides.repository_rules(settings or Settings(keep_tagged_images=1), {})
    return planner.plan_repository("app", images, rules, now=NOW, facts=facts)


def actions(result: RepositoryPlan) -> dict[str, tuple[str, str | None]]:
    names = {
        d.image.digest: bytes.fromhex(d.image.digest[7:]).lstrip(b"\0").decode()
        for d in result.decisions
    }
    return {
        names[d.image.digest]: (d.action.value, d.protection.value if d.protection else None)
        for d in result.decisions
    }


def multi_arch_registry() -> tuple[list[Image], RepositoryFacts]:
    images = [
        image("idx-new", 1, "v2", media=INDEX),
        image("idx-old", 5, "v1", media=INDEX),
        image("amd64-new", 1),
        image("arm64-new", 1),
        image("attest-new", 1),
        image("amd64-old", 5),
        image("shared", 9),
    ]
    facts = RepositoryFacts(
        children={
            digest("idx-new"): (
                digest("amd64-new"),
                digest("arm64-new"),
                digest("attest-new"),
                digest("shared"),
            ),
            digest("idx-old"): (digest("amd64-old"), digest("shared")),
        }
    )
    return images, facts


def test_children_follow_their_index_and_a_shared_child_stays_with_the_kept_one() -> None:
    images, facts = multi_arch_registry()
    assert actions(plan(images, facts)) == {
        "idx-new": ("keep", None),
        "amd64-new": ("keep", "index-child"),
        "arm64-new": ("keep", "index-child"),
        "attest-new": ("keep", "index-child"),
        "shared": ("keep", "index-child"),
        "idx-old": ("expire", None),
        "amd64-old": ("expire", None),
    }


def test_children_never_count_toward_keep_n_nor_fall_to_the_untagged_rule() -> None:
    images, facts = multi_arch_registry()
    result = plan(images, facts, Settings(keep_tagged_images=2))
    assert all(d.action is Action.KEEP for d in result.decisions), "two indexes fit in keep-2"


def test_a_manifest_that_could_not_be_read_keeps_everything() -> None:
    images, _ = multi_arch_registry()
    result = plan(images, RepositoryFacts(uncertain="index sha256:1 could not be fetched"))
    assert {d.action for d in result.decisions} == {Action.KEEP}
    assert all(d.protection is Protection.UNCERTAIN for d in result.decisions)
    assert "could not be fetched" in result.decisions[0].reason


def test_signatures_and_sboms_follow_their_subject() -> None:
    kept, old = image("app-new", 1, "v2"), image("app-old", 5, "v1")
    cosign_kept = image("sig-new", 1, f"sha256-{kept.digest[7:]}.sig")
    cosign_old = image("sig-old", 5, f"sha256-{old.digest[7:]}.sig")
    sbom_kept = image("sbom-new", 1, subject="app-new")
    sbom_old = image("sbom-old", 5, subject="app-old")
    result = plan([kept, old, cosign_kept, cosign_old, sbom_kept, sbom_old], RepositoryFacts())
    assert actions(result) == {
        "app-new": ("keep", None),
        "sig-new": ("keep", "referrer"),
        "sbom-new": ("keep", "referrer"),
        "app-old": ("expire", None),
        "sig-old": ("expire", None),
        "sbom-old": ("expire", None),
    }


def test_referrers_are_never_protected_by_their_own_tag_and_orphans_wait_for_the_grace() -> None:
    kept = image("app", 1, "v1")
    signature = image("sig", 3, f"sha256-{kept.digest[7:]}.sig")
    orphan_old = image("orphan-old", 3, "sbom-old", subject="gone")
    orphan_young = image("orphan-young", 0.5, subject="gone")
    settings = Settings(keep_tagged_images=0 + 1, protected_tags=("sha256-*", "sbom-*"))
    result = plan([kept, signature, orphan_old, orphan_young], RepositoryFacts(), settings)
    assert actions(result) == {
        "app": ("keep", None),
        "sig": ("keep", "referrer"),
        "orphan-old": ("expire", None),
        "orphan-young": ("keep", None),
    }
    reasons = {d.image.digest: d.reason for d in result.decisions}
    assert "orphaned referrer" in reasons[digest("orphan-old")]
    assert "within the grace period of 1 day" in reasons[digest("orphan-young")]


def test_cosign_artifacts_whose_subject_is_elsewhere_are_kept() -> None:
    """cosign's COSIGN_REPOSITORY puts signatures in a repository of their own."""
    elsewhere = "f" * 64
    signature = image("sig", 300, f"sha256-{elsewhere}.sig")
    result = plan([signature], RepositoryFacts())
    (decision,) = result.decisions
    assert (decision.action, decision.protection) == (Action.KEEP, Protection.REFERRER)
    assert "not in this repository" in decision.reason


def test_images_in_use_are_kept_by_digest_or_tag_and_name_their_holder() -> None:
    images = [
        image("new", 1, "v3"),
        image("by-tag", 2, "v2"),
        image("by-digest", 3),
        image("child", 9),
    ]
    facts = RepositoryFacts(
        children={digest("by-tag"): (digest("child"),)},
        in_use_by_tag={"v2": "ECS service prod/web"},
        in_use_by_digest={digest("by-digest"): "Lambda function resize:3"},
    )
    result = plan(images, facts)
    assert actions(result) == {
        "new": ("keep", None),
        "by-tag": ("keep", "in-use"),
        "by-digest": ("keep", "in-use"),
        "child": ("keep", "index-child"),
    }
    reasons = {d.image.digest: d.reason for d in result.decisions}
    assert "ECS service prod/web" in reasons[digest("by-tag")]
    assert "Lambda function resize:3" in reasons[digest("by-digest")]


def test_a_child_in_use_by_digest_stays_when_its_index_goes() -> None:
    images = [
        image("new", 1, "v2", media=INDEX),
        image("old", 5, "v1", media=INDEX),
        image("arm", 5),
    ]
    facts = RepositoryFacts(
        children={digest("old"): (digest("arm"),)},
        in_use_by_digest={digest("arm"): "ECS task prod/abc"},
    )
    assert actions(plan(images, facts)) == {
        "new": ("keep", None),
        "old": ("expire", None),
        "arm": ("keep", "in-use"),
    }
