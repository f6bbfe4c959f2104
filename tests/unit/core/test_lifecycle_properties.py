"""Properties of the lifecycle engine over generated valid policies and repositories.

Tag matching is re-derived here with an independent glob matcher, so the properties check the
engine against the documented rules rather than against itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from random import Random

from hypothesis import given, settings
from hypothesis import strategies as st

from ecr_sweeper.core.lifecycle import (
    CountType,
    LifecyclePolicy,
    Rule,
    Selection,
    TagStatus,
    evaluate,
    parse_policy,
    policy_document,
)
from ecr_sweeper.core.model import Image

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)

tags = st.text(alphabet="ab-1", min_size=1, max_size=4)
prefixes = st.text(alphabet="ab-1", min_size=1, max_size=3)
patterns = st.text(alphabet="ab-1*", min_size=1, max_size=6).filter(lambda p: p.count("*") <= 4)


@st.composite
def selections(draw: st.DrawFn, allow_any: bool) -> Selection:
    statuses: list[TagStatus] = (
        ["tagged", "untagged", "any"] if allow_any else ["tagged", "untagged"]
    )
    status = draw(st.sampled_from(statuses))
    prefix_list: tuple[str, ...] = ()
    pattern_list: tuple[str, ...] = ()
    if status == "tagged":
        if draw(st.booleans()):
            prefix_list = tuple(draw(st.lists(prefixes, min_size=1, max_size=3)))
        else:
            pattern_list = tuple(draw(st.lists(patterns, min_size=1, max_size=3)))
    count_types: list[CountType] = ["imageCountMoreThan", "sinceImagePushed", "sinceImagePulled"]
    count_type = draw(st.sampled_from(count_types))
    if count_type == "imageCountMoreThan":
        return Selection(
            tag_status=status,
            tag_prefix_list=prefix_list,
            tag_pattern_list=pattern_list,
            count_type="imageCountMoreThan",
            count_number=draw(st.integers(1, 6)),
        )
    return Selection(
        tag_status=status,
        tag_prefix_list=prefix_list,
        tag_pattern_list=pattern_list,
        count_type=count_type,
        count_unit="days",
        count_number=draw(st.integers(1, 40)),
    )


@st.composite
def policies(draw: st.DrawFn) -> LifecyclePolicy:
    size = draw(st.integers(1, 6))
    priorities = sorted(draw(st.sets(st.integers(1, 1000), min_size=size, max_size=size)))
    rules = []
    for index, priority in enumerate(priorities):
        last = index == size - 1
        description = draw(st.sampled_from(["", "rule text", 'quote " and ünïcode']))
        rules.append(Rule(priority, description, draw(selections(allow_any=last))))
    return LifecyclePolicy(tuple(rules))


@st.composite
def repositories(draw: st.DrawFn) -> list[Image]:
    count = draw(st.integers(0, 14))
    images = []
    for index in range(count):
        pushed = NOW - timedelta(hours=draw(st.integers(-2, 24 * 45)))  # ties and future pushes
        pulled = None
        if draw(st.booleans()):
            pulled = pushed + timedelta(hours=draw(st.integers(0, 24 * 45)))
        images.append(
            Image(
                digest=f"sha256:{index:04d}",
                tags=tuple(draw(st.lists(tags, max_size=3, unique=True))),
                pushed_at=pushed,
                last_pulled_at=pulled,
            )
        )
    return images


def glob(pattern: str, text: str) -> bool:
    """Does `pattern` ('*' = any run of characters) match all of `text`? Plain recursion."""
    if not pattern:
        return not text
    if pattern[0] == "*":
        return any(glob(pattern[1:], text[cut:]) for cut in range(len(text) + 1))
    return bool(text) and text[0] == pattern[0] and glob(pattern[1:], text[1:])


def selected(rule: Rule, image: Image) -> bool:
    selection = rule.selection
    if selection.tag_status == "any":
        return True
    if selection.tag_status == "untagged":
        return len(image.tags) == 0
    if selection.tag_prefix_list:
        return len(image.tags) > 0 and all(
            any(tag.startswith(p) for tag in image.tags) for p in selection.tag_prefix_list
        )
    return len(image.tags) > 0 and all(
        any(glob(p, tag) for tag in image.tags) for p in selection.tag_pattern_list
    )


def newest(rule: Rule, images: list[Image]) -> list[str]:
    """Digests of the newest N images of the rule's selection (ties: smaller digest is newer)."""
    chosen = [i for i in images if selected(rule, i)]
    chosen.sort(key=lambda i: (-i.pushed_at.timestamp(), i.digest))
    return [i.digest for i in chosen[: rule.selection.count_number]]


def reference_time(rule: Rule, image: Image) -> datetime:
    if rule.selection.count_type == "sinceImagePulled" and image.last_pulled_at is not None:
        return image.last_pulled_at
    return image.pushed_at


def criterion_holds(rule: Rule, image: Image, images: list[Image]) -> bool:
    if rule.selection.count_type == "imageCountMoreThan":
        return image.digest not in newest(rule, images)
    age = NOW - reference_time(rule, image)
    return age > timedelta(days=rule.selection.count_number)


def first_matching(policy: LifecyclePolicy, image: Image) -> Rule | None:
    return next((rule for rule in policy.rules if selected(rule, image)), None)


@PROPERTY_SETTINGS
@given(policies(), repositories(), st.randoms(use_true_random=False))
def test_deterministic_and_independent_of_input_order(
    policy: LifecyclePolicy, images: list[Image], random: Random
) -> None:
    shuffled = list(images)
    random.shuffle(shuffled)
    first = evaluate(policy, images, NOW)
    assert evaluate(policy, shuffled, NOW) == first
    assert evaluate(policy, images, NOW) == first
    assert set(first) == {image.digest for image in images}


@PROPERTY_SETTINGS
@given(policies(), repositories())
def test_only_the_first_matching_rule_can_expire_and_it_does_exactly_when_its_count_says(
    policy: LifecyclePolicy, images: list[Image]
) -> None:
    verdicts = evaluate(policy, images, NOW)
    for image in images:
        verdict = verdicts[image.digest]
        owner = first_matching(policy, image)
        if verdict.expired_by is not None:
            assert verdict.expired_by == owner
            assert verdict.reason.startswith("expire: ")
        else:
            assert verdict.reason.startswith("kept: ")
        should_expire = owner is not None and criterion_holds(owner, image, images)
        assert verdict.expired is should_expire
        if owner is None:
            assert verdict.reason == "kept: matches no rule"


@PROPERTY_SETTINGS
@given(policies(), repositories())
def test_image_count_never_expires_the_newest_n_of_its_selection(
    policy: LifecyclePolicy, images: list[Image]
) -> None:
    verdicts = evaluate(policy, images, NOW)
    for rule in policy.rules:
        if rule.selection.count_type != "imageCountMoreThan":
            continue
        for digest in newest(rule, images):
            expired_by = verdicts[digest].expired_by
            assert expired_by != rule
            if expired_by is not None:  # only a higher-priority rule can expire it
                assert expired_by.priority < rule.priority


@PROPERTY_SETTINGS
@given(policies(), repositories())
def test_since_rules_never_expire_an_image_not_older_than_n_days(
    policy: LifecyclePolicy, images: list[Image]
) -> None:
    verdicts = evaluate(policy, images, NOW)
    for image in images:
        rule = verdicts[image.digest].expired_by
        if rule is not None and rule.selection.count_type != "imageCountMoreThan":
            age = NOW - reference_time(rule, image)
            assert age > timedelta(days=rule.selection.count_number)


@PROPERTY_SETTINGS
@given(policies())
def test_canonical_document_round_trips(policy: LifecyclePolicy) -> None:
    document = policy_document(policy)
    assert parse_policy(document) == policy
    assert parse_policy(json.dumps(document)) == policy
    assert parse_policy({"lifecyclePolicyText": json.dumps(document)}) == policy
