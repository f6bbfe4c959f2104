"""Hypothesis over random registries: nothing a kept image needs is ever expired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ecr_sweeper.core import overrides, planner
from ecr_sweeper.core.model import Action, Image, RepositoryPlan
from ecr_sweeper.core.planner import RepositoryFacts
from ecr_sweeper.core.settings import Settings

NOW = datetime(2026, 6, 1, tzinfo=UTC)
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TAGS = ("latest", "v1", "v2", "v3", "main", "pr-1", "sha-1a2b3c")


def _digest(number: int) -> str:
    return f"sha256:{number:064x}"


@st.composite
def registries(draw: st.DrawFn) -> tuple[list[Image], RepositoryFacts, Settings]:
    count = draw(st.integers(min_value=1, max_value=14))
    digests = [_digest(n) for n in range(1, count + 1)]
    free_tags = list(TAGS)
    images: list[Image] = []
    for digest in digests:
        kind = draw(st.sampled_from(["image", "index", "referrer", "cosign"]))
        tags: tuple[str, ...] = ()
        if kind in ("image", "index") and free_tags and draw(st.booleans()):
            tags = (free_tags.pop(draw(st.integers(0, len(free_tags) - 1))),)
        subject = None
        if kind in ("referrer", "cosign"):
            subject = draw(st.sampled_from([*digests, _digest(999)]))
        if kind == "cosign" and subject is not None:
            tags, subject = (f"sha256-{subject[7:]}.sig",), None
        images.append(
            Image(
                digest=digest,
                tags=tags,
                pushed_at=NOW - timedelta(hours=draw(st.integers(-2, 24 * 40))),
                size_bytes=1,
                manifest_media_type=INDEX if kind == "index" else MANIFEST,
                subject_digest=subject,
            )
        )
    children = {
        image.digest: tuple(draw(st.lists(st.sampled_from(digests), max_size=4, unique=True)))
        for image in images
        if image.manifest_media_type == INDEX
    }
    in_use = draw(st.lists(st.sampled_from(digests), max_size=2, unique=True))
    in_use_tags = draw(st.lists(st.sampled_from(TAGS), max_size=2, unique=True))
    facts = RepositoryFacts(
        children=children,
        in_use_by_digest={d: "ECS service test/svc" for d in in_use},
        in_use_by_tag={t: "Lambda function fn" for t in in_use_tags},
    )
    chosen = Settings(
        keep_tagged_images=draw(st.integers(1, 4)),
        untagged_grace_days=draw(st.integers(1, 5)),
        minimum_age_days=draw(st.integers(0, 3)),
    )
    return images, facts, chosen


def _sweep(images: list[Image], facts: RepositoryFacts, chosen: Settings) -> RepositoryPlan:
    rules = overrides.repository_rules(chosen, {})
    return planner.plan_repository("repo", images, rules, now=NOW, facts=facts)


def _needs(images: list[Image], facts: RepositoryFacts) -> dict[str, set[str]]:
    """Edges written independently of the planner: index->child, referrer<->subject."""
    present = {image.digest for image in images}
    needs: dict[str, set[str]] = {digest: set() for digest in present}
    children = {
        c
        for idx, cs in facts.children.items()
        if idx in present
        for c in cs
        if c in present and c != idx
    }
    for index, listed in facts.children.items():
        if index in present:
            needs[index].update(c for c in listed if c in present and c != index)
    for image in images:
        if image.digest in children:
            continue
        subject = image.subject_digest or planner.cosign_subject(image)
        if subject in present and subject != image.digest:
            needs[image.digest].add(subject)
            needs[subject].add(image.digest)
    return needs


@settings(max_examples=300, deadline=None)
@given(registries())
def test_nothing_reachable_from_a_kept_image_is_expired(
    registry: tuple[list[Image], RepositoryFacts, Settings],
) -> None:
    images, facts, chosen = registry
    result = _sweep(images, facts, chosen)
    action = {d.image.digest: d.action for d in result.decisions}
    assert sorted(action) == sorted(image.digest for image in images)
    needs = _needs(images, facts)
    for digest, decided in action.items():
        if decided is Action.KEEP:
            assert all(action[n] is Action.KEEP for n in needs[digest]), (digest, needs[digest])


@settings(max_examples=300, deadline=None)
@given(registries())
def test_in_use_young_and_protected_images_are_never_expired(
    registry: tuple[list[Image], RepositoryFacts, Settings],
) -> None:
    images, facts, chosen = registry
    for decision in _sweep(images, facts, chosen).expired:
        image = decision.image
        assert image.digest not in facts.in_use_by_digest
        assert not set(image.tags) & set(facts.in_use_by_tag)
        assert image.pushed_at <= NOW - timedelta(days=chosen.minimum_age_days)
        assert "latest" not in image.tags
        assert decision.reason


@settings(max_examples=150, deadline=None)
@given(registries(), st.randoms(use_true_random=False))
def test_the_plan_does_not_depend_on_listing_order(
    registry: tuple[list[Image], RepositoryFacts, Settings], shuffler: object
) -> None:
    images, facts, chosen = registry
    shuffled = list(images)
    shuffler.shuffle(shuffled)  # type: ignore[attr-defined]
    assert _sweep(images, facts, chosen) == _sweep(shuffled, facts, chosen)


@settings(max_examples=100, deadline=None)
@given(registries())
def test_an_uncertain_repository_expires_nothing(
    registry: tuple[list[Image], RepositoryFacts, Settings],
) -> None:
    images, facts, chosen = registry
    uncertain = RepositoryFacts(children=facts.children, uncertain="manifest unreadable")
    assert not _sweep(images, uncertain, chosen).expired
