"""The ECR user guide's lifecycle examples, reproduced image by image, plus evaluation details.

Each documented example builds the repository the guide describes and asserts the exact set of
images the guide says is expired. The guide has shown the multi-rule examples both with
tagPrefixList (older editions) and with tagPatternList (current edition); both are checked.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecr_sweeper.core.lifecycle import (
    LifecyclePolicy,
    PolicyError,
    evaluate,
    parse_policy,
    policy_document,
    simple_policy,
)
from ecr_sweeper.core.model import Image

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def image(
    name: str, tags: list[str], days_ago: float, pulled_days_ago: float | None = None
) -> Image:
    return Image(
        digest=f"sha256:{name}",
        tags=tuple(tags),
        pushed_at=NOW - timedelta(days=days_ago),
        last_pulled_at=None if pulled_days_ago is None else NOW - timedelta(days=pulled_days_ago),
    )


def rule(
    priority: int,
    tag_status: str,
    count_type: str,
    count_number: int,
    *,
    prefixes: list[str] | None = None,
    patterns: list[str] | None = None,
) -> dict[str, Any]:
    selection: dict[str, Any] = {"tagStatus": tag_status}
    if prefixes is not None:
        selection["tagPrefixList"] = prefixes
    if patterns is not None:
        selection["tagPatternList"] = patterns
    selection["countType"] = count_type
    if count_type != "imageCountMoreThan":
        selection["countUnit"] = "days"
    selection["countNumber"] = count_number
    return {
        "rulePriority": priority,
        "description": f"Rule {priority}",
        "selection": selection,
        "action": {"type": "expire"},
    }


def expired_names(rules: list[dict[str, Any]], images: list[Image]) -> set[str]:
    verdicts = evaluate(parse_policy({"rules": rules}), images, NOW)
    assert set(verdicts) == {i.digest for i in images}
    return {digest.removeprefix("sha256:") for digest, v in verdicts.items() if v.expired}


def tag_list(kind: str, *values: str) -> dict[str, list[str]]:
    """The same selection as the guide's prefix edition ('prod') or pattern edition ('prod*')."""
    if kind == "prefix":
        return {"prefixes": list(values)}
    return {"patterns": [f"{value}*" for value in values]}


# --- "Filtering on image age" and "Filtering on image count" ------------------------------------


def test_image_age_tagged_prod_pattern_older_than_14_days() -> None:
    images = [
        image("old-prod", ["prod-1"], 15),
        image("young-prod", ["prod-2"], 13),
        image("old-dev", ["dev-1"], 30),
        image("old-untagged", [], 30),
    ]
    rules = [rule(1, "tagged", "sinceImagePushed", 14, patterns=["prod*"])]
    assert expired_names(rules, images) == {"old-prod"}


def test_image_age_untagged_older_than_14_days() -> None:
    images = [
        image("old", [], 15),
        image("young", [], 13),
        image("old-tagged", ["v1"], 30),
    ]
    assert expired_names([rule(1, "untagged", "sinceImagePushed", 14)], images) == {"old"}


def test_image_count_keeps_only_one_untagged_image() -> None:
    images = [
        image("u1", [], 1),
        image("u2", [], 2),
        image("u3", [], 3),
        image("tagged", ["v1"], 9),
    ]
    assert expired_names([rule(1, "untagged", "imageCountMoreThan", 1)], images) == {"u2", "u3"}


# --- "Filtering on multiple rules" ---------------------------------------------------------------


def beta_prod_repository() -> list[Image]:
    return [
        image("A", ["beta-1", "prod-1"], 10),
        image("B", ["beta-2", "prod-2"], 9),
        image("C", ["beta-3"], 8),
    ]


@pytest.mark.parametrize("kind", ["prefix", "pattern"])
def test_multiple_rules_example_a_prod_first(kind: str) -> None:
    rules = [
        rule(1, "tagged", "imageCountMoreThan", 1, **tag_list(kind, "prod")),
        rule(2, "tagged", "imageCountMoreThan", 1, **tag_list(kind, "beta")),
    ]
    # Rule 2 would mark A and B, but both match rule 1's tags, which keeps B.
    assert expired_names(rules, beta_prod_repository()) == {"A"}


@pytest.mark.parametrize("kind", ["prefix", "pattern"])
def test_multiple_rules_example_b_beta_first(kind: str) -> None:
    rules = [
        rule(1, "tagged", "imageCountMoreThan", 1, **tag_list(kind, "beta")),
        rule(2, "tagged", "imageCountMoreThan", 1, **tag_list(kind, "prod")),
    ]
    assert expired_names(rules, beta_prod_repository()) == {"A", "B"}


def test_multiple_rules_example_a_reasons_name_the_higher_priority_rule() -> None:
    rules = [
        rule(1, "tagged", "imageCountMoreThan", 1, patterns=["prod*"]),
        rule(2, "tagged", "imageCountMoreThan", 1, patterns=["beta*"]),
    ]
    verdicts = evaluate(parse_policy({"rules": rules}), beta_prod_repository(), NOW)
    a, b, c = (verdicts[f"sha256:{name}"] for name in "ABC")
    assert a.expired_by is not None and a.expired_by.priority == 1
    assert a.reason.startswith(
        'expire: not among the newest 1 images selected by rule 1 ("Rule 1")'
    )
    assert b.expired_by is None
    assert b.reason.startswith('kept: its tags match rule 1 ("Rule 1") (higher priority)')
    assert 'rule 2 ("Rule 2") alone would expire it' in b.reason
    assert c.reason == 'kept: among the newest 1 images selected by rule 2 ("Rule 2")'


# --- "Filtering on multiple tags in a single rule" -----------------------------------------------


@pytest.mark.parametrize("kind", ["prefix", "pattern"])
def test_multiple_tags_example_a_all_entries_must_match(kind: str) -> None:
    images = [
        image("A", ["alpha-1"], 12),
        image("B", ["beta-1"], 11),
        image("C", ["alpha-2", "beta-2"], 10),
        image("D", ["alpha-3"], 4),
        image("E", ["beta-3"], 3),
        image("F", ["alpha-4", "beta-4"], 2),
    ]
    rules = [rule(1, "tagged", "sinceImagePushed", 5, **tag_list(kind, "alpha", "beta"))]
    assert expired_names(rules, images) == {"C"}


@pytest.mark.parametrize("kind", ["prefix", "pattern"])
def test_multiple_tags_example_b_tags_are_not_exclusive(kind: str) -> None:
    images = [
        image("A", ["alpha-1", "beta-1", "gamma-1"], 10),
        image("B", ["alpha-2", "beta-2"], 9),
        image("C", ["alpha-3", "beta-3", "gamma-2"], 8),
    ]
    rules = [rule(1, "tagged", "imageCountMoreThan", 1, **tag_list(kind, "alpha", "beta"))]
    assert expired_names(rules, images) == {"A", "B"}


# --- "Filtering on all images" -------------------------------------------------------------------


def test_all_images_example_a_any_keeps_only_the_newest() -> None:
    images = [
        image("A", ["alpha-1"], 4),
        image("B", ["beta-1"], 3),
        image("C", [], 2),
        image("D", ["alpha-2"], 1),
    ]
    assert expired_names([rule(1, "any", "imageCountMoreThan", 1)], images) == {"A", "B", "C"}


@pytest.mark.parametrize("kind", ["prefix", "pattern"])
def test_all_images_example_b_combines_every_rule_type(kind: str) -> None:
    # The guide lists D and E as both pushed "1 day ago" and keeps E as rule 3's newest image,
    # so E is the later push here (by one minute). E is exactly one day old: not *older* than
    # one day, so rule 2 keeps it.
    images = [
        image("A", ["alpha-1", "beta-1"], 4),
        image("B", [], 3),
        image("C", ["alpha-2"], 2),
        image("D", ["git hash"], 1 + 1 / 1440),
        image("E", [], 1),
    ]
    rules = [
        rule(1, "tagged", "imageCountMoreThan", 1, **tag_list(kind, "alpha")),
        rule(2, "untagged", "sinceImagePushed", 1),
        rule(3, "any", "imageCountMoreThan", 1),
    ]
    assert expired_names(rules, images) == {"A", "B", "D"}


# --- evaluation details the examples leave implicit ----------------------------------------------


def test_older_than_means_strictly_more_than_n_times_24_hours() -> None:
    exactly = Image("sha256:exact", (), NOW - timedelta(days=3))
    just_over = Image("sha256:over", (), NOW - timedelta(days=3, microseconds=1))
    policy = parse_policy({"rules": [rule(1, "untagged", "sinceImagePushed", 3)]})
    verdicts = evaluate(policy, [exactly, just_over], NOW)
    assert not verdicts["sha256:exact"].expired
    assert verdicts["sha256:exact"].reason.startswith("kept: pushed 3.0 days ago, not more than 3")
    assert verdicts["sha256:over"].expired
    assert verdicts["sha256:over"].reason.startswith(
        "expire: pushed 3 days, 0:00:00.000001 ago, more than 3 days"
    )


def test_since_image_pulled_uses_last_pull_and_falls_back_to_push() -> None:
    images = [
        image("pulled-long-ago", ["a"], 100, pulled_days_ago=40),
        image("pulled-recently", ["b"], 100, pulled_days_ago=10),
        image("never-pulled-old", ["c"], 40),
        image("never-pulled-young", ["d"], 10),
    ]
    rules = [rule(1, "any", "sinceImagePulled", 30)]
    verdicts = evaluate(parse_policy({"rules": rules}), images, NOW)
    assert {d for d, v in verdicts.items() if v.expired} == {
        "sha256:pulled-long-ago",
        "sha256:never-pulled-old",
    }
    assert verdicts["sha256:pulled-long-ago"].reason.startswith("expire: last pulled 40.0 days")
    assert verdicts["sha256:never-pulled-old"].reason.startswith(
        "expire: never pulled; pushed 40.0 days ago, more than 30 days"
    )


@pytest.mark.parametrize(
    ("patterns", "tags", "selected"),
    [
        (["prod*"], ["prod"], True),
        (["prod*"], ["preprod"], False),
        (["*prod"], ["preprod"], True),
        (["v*-rc*"], ["v1.2-rc3"], True),
        (["v*-rc*"], ["v1.2"], False),
        (["*"], ["anything"], True),
        (["release-?"], ["release-1"], False),  # only '*' is a wildcard
        (["release-?"], ["release-?"], True),
        (["a.c"], ["abc"], False),  # regex characters are literal
        (["Prod*"], ["prod-1"], False),  # case-sensitive
        (["*test*1*2*3"], ["my-test-1-2-3"], True),
    ],
)
def test_tag_pattern_wildcards(patterns: list[str], tags: list[str], selected: bool) -> None:
    policy = parse_policy(
        {"rules": [rule(1, "tagged", "imageCountMoreThan", 1, patterns=patterns)]}
    )
    older = image("older", tags, 2)
    assert evaluate(policy, [image("newer", tags, 1), older], NOW)[older.digest].expired is selected


def test_tag_prefix_is_a_plain_prefix() -> None:
    policy = parse_policy({"rules": [rule(1, "tagged", "sinceImagePushed", 1, prefixes=["prod"])]})
    images = [image("production", ["production"], 5), image("preprod", ["preprod"], 5)]
    verdicts = evaluate(policy, images, NOW)
    assert verdicts["sha256:production"].expired
    assert not verdicts["sha256:preprod"].expired
    assert verdicts["sha256:preprod"].reason == "kept: matches no rule"


def test_equal_push_times_are_broken_by_digest_whatever_the_input_order() -> None:
    policy = parse_policy({"rules": [rule(1, "any", "imageCountMoreThan", 1)]})
    twins = [image("b", [], 1), image("a", [], 1)]
    for ordering in (twins, twins[::-1]):
        verdicts = evaluate(policy, ordering, NOW)
        assert not verdicts["sha256:a"].expired
        assert verdicts["sha256:b"].expired


def test_duplicate_digests_are_refused() -> None:
    policy = parse_policy({"rules": [rule(1, "any", "imageCountMoreThan", 1)]})
    with pytest.raises(ValueError, match="sha256:x appears more than once"):
        evaluate(policy, [image("x", [], 1), image("x", ["v1"], 2)], NOW)


# --- simple settings and documents ---------------------------------------------------------------


def test_simple_policy_compiles_the_simple_settings() -> None:
    assert policy_document(simple_policy(10, 1)) == {
        "rules": [
            {
                "rulePriority": 1,
                "description": "untagged images older than 1 day",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 1,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": "keep the newest 10 tagged images",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": 10,
                },
                "action": {"type": "expire"},
            },
        ]
    }


def test_simple_policy_keeps_newest_tagged_and_young_untagged() -> None:
    images = [image(f"t{n}", [f"v{n}"], n) for n in range(1, 5)]
    images += [image("young-untagged", [], 0.4), image("old-untagged", [], 2)]
    verdicts = evaluate(simple_policy(2, 1), images, NOW)
    assert {d for d, v in verdicts.items() if v.expired} == {
        "sha256:t3",
        "sha256:t4",
        "sha256:old-untagged",
    }
    assert verdicts["sha256:young-untagged"].reason == (
        'kept: pushed 0.4 days ago, not more than 1 day (rule 1 ("untagged images older than '
        '1 day"))'
    )
    assert verdicts["sha256:t1"].reason == (
        'kept: among the newest 2 images selected by rule 2 ("keep the newest 2 tagged images")'
    )


@pytest.mark.parametrize(("keep", "grace"), [(0, 1), (1, 0), (-3, 2)])
def test_simple_policy_refuses_numbers_below_one(keep: int, grace: int) -> None:
    with pytest.raises(PolicyError, match=r"selection\.countNumber"):
        simple_policy(keep, grace)


def test_policy_text_and_get_lifecycle_policy_object_give_the_same_policy() -> None:
    document = {
        "rules": [
            rule(3, "any", "imageCountMoreThan", 5),
            rule(1, "tagged", "sinceImagePushed", 14, patterns=["prod*"]),
        ]
    }
    text = json.dumps(document)
    response = {
        "registryId": "123456789012",
        "repositoryName": "web",
        "lifecyclePolicyText": text,
        "lastEvaluatedAt": "2026-05-31T00:00:00+00:00",
    }
    from_dict, from_text, from_response = (parse_policy(d) for d in (document, text, response))
    assert from_dict == from_text == from_response
    assert [r.priority for r in from_dict.rules] == [1, 3]  # sorted by priority
    assert isinstance(from_dict, LifecyclePolicy)
    assert parse_policy(policy_document(from_dict)) == from_dict
