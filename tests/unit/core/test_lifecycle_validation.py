"""parse_policy refuses what the ECR API refuses, with a message naming the rule and the field.

Every case starts from one valid policy and breaks one thing, so each test proves one check.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from ecr_sweeper.core.lifecycle import (
    LifecyclePolicy,
    PolicyError,
    Rule,
    Selection,
    native_policy_problem,
    parse_native_policy,
    parse_policy,
    policy_document,
)

Document = dict[str, Any]


def valid_policy() -> Document:
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": "keep 3 prod",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["prod*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": 3,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 5,
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 7,
                },
                "action": {"type": "expire"},
            },
        ]
    }


def first_selection(doc: Document) -> Document:
    selection: Document = doc["rules"][0]["selection"]
    return selection


def second_selection(doc: Document) -> Document:
    selection: Document = doc["rules"][1]["selection"]
    return selection


def refused(change: Callable[[Document], object]) -> str:
    document = valid_policy()
    change(document)
    with pytest.raises(PolicyError) as caught:
        parse_policy(document)
    return str(caught.value)


def test_the_base_policy_is_valid() -> None:
    policy = parse_policy(valid_policy())
    assert [rule.priority for rule in policy.rules] == [1, 5]


# --- priorities --------------------------------------------------------------------------------


def test_duplicate_priorities() -> None:
    message = refused(lambda d: d["rules"][1].update(rulePriority=1))
    assert message.startswith("rule 2 (rulePriority 1): rulePriority: 1 is also the priority of")


@pytest.mark.parametrize("priority", [0, -1, "1", 1.5, True, None])
def test_priority_must_be_a_positive_whole_number(priority: object) -> None:
    message = refused(lambda d: d["rules"][1].update(rulePriority=priority))
    expected = f"rule 2 (rulePriority {json.dumps(priority)}): rulePriority: expected a whole"
    assert message.startswith(expected)


def test_priority_is_required() -> None:
    message = refused(lambda d: d["rules"][0].pop("rulePriority"))
    assert message.startswith("rule 1 (no rulePriority): rulePriority: missing")


def test_any_rule_must_have_the_highest_priority() -> None:
    def make_first_any(d: Document) -> None:
        d["rules"][0]["selection"] = {
            "tagStatus": "any",
            "countType": "imageCountMoreThan",
            "countNumber": 2,
        }

    message = refused(make_first_any)
    assert message.startswith('rule 1 (rulePriority 1): selection.tagStatus: a rule with "any"')
    assert "highest rulePriority" in message


def test_any_rule_with_the_highest_priority_is_accepted() -> None:
    document = valid_policy()
    second_selection(document)["tagStatus"] = "any"
    assert parse_policy(document).rules[-1].selection.tag_status == "any"


# --- tag selection -----------------------------------------------------------------------------


def test_tagged_needs_a_tag_list() -> None:
    message = refused(lambda d: first_selection(d).pop("tagPatternList"))
    assert message.startswith("rule 1 (rulePriority 1): selection.tagPatternList: a rule with")
    assert "needs a non-empty tagPatternList or tagPrefixList" in message


@pytest.mark.parametrize("key", ["tagPatternList", "tagPrefixList"])
def test_tag_list_must_not_be_empty(key: str) -> None:
    def change(d: Document) -> None:
        first_selection(d).pop("tagPatternList")
        first_selection(d)[key] = []

    assert refused(change).startswith(f"rule 1 (rulePriority 1): selection.{key}: expected a non")


@pytest.mark.parametrize(
    ("status", "key"), [("untagged", "tagPrefixList"), ("any", "tagPatternList")]
)
def test_untagged_and_any_take_no_tag_list(status: str, key: str) -> None:
    def change(d: Document) -> None:
        second_selection(d)["tagStatus"] = status
        second_selection(d)[key] = ["v"]

    message = refused(change)
    assert message.startswith(f"rule 2 (rulePriority 5): selection.{key}: only a rule with")


def test_both_tag_lists_in_one_rule() -> None:
    message = refused(lambda d: first_selection(d).update(tagPrefixList=["prod"]))
    assert message.startswith("rule 1 (rulePriority 1): selection.tagPatternList: give either")


def test_more_than_four_wildcards_in_a_pattern() -> None:
    message = refused(lambda d: first_selection(d).update(tagPatternList=["test*1*2*3*4*5*6"]))
    assert message.startswith("rule 1 (rulePriority 1): selection.tagPatternList: ")
    assert "6 wildcards" in message and "at most 4" in message


def test_four_wildcards_are_accepted_as_in_the_guide() -> None:
    document = valid_policy()
    first_selection(document)["tagPatternList"] = ["*test*1*2*3", "test*1*2*3*"]
    assert parse_policy(document).rules[0].selection.tag_pattern_list == (
        "*test*1*2*3",
        "test*1*2*3*",
    )


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [("", "entries must be non-empty strings"), (7, "entries must be non-empty strings"),
     ("x" * 301, "entry of 301 characters")],
)  # fmt: skip
def test_tag_list_entries(entry: object, fragment: str) -> None:
    message = refused(lambda d: first_selection(d).update(tagPatternList=["prod*", entry]))
    assert message.startswith("rule 1 (rulePriority 1): selection.tagPatternList: ")
    assert fragment in message


@pytest.mark.parametrize("status", ["TAGGED", "all", None, 1])
def test_unknown_tag_status(status: object) -> None:
    message = refused(lambda d: second_selection(d).update(tagStatus=status))
    assert message.startswith("rule 2 (rulePriority 5): selection.tagStatus: ")
    assert "tagged, untagged, any" in message


# --- count -------------------------------------------------------------------------------------


def test_count_unit_with_image_count_more_than() -> None:
    message = refused(lambda d: first_selection(d).update(countUnit="days"))
    assert message.startswith("rule 1 (rulePriority 1): selection.countUnit: not allowed with")


@pytest.mark.parametrize("count_type", ["sinceImagePushed", "sinceImagePulled"])
def test_since_types_need_a_count_unit(count_type: str) -> None:
    def change(d: Document) -> None:
        second_selection(d)["countType"] = count_type
        second_selection(d).pop("countUnit")

    assert refused(change).startswith("rule 2 (rulePriority 5): selection.countUnit: missing")


@pytest.mark.parametrize("unit", ["hours", "Days", 1])
def test_count_unit_must_be_days(unit: object) -> None:
    message = refused(lambda d: second_selection(d).update(countUnit=unit))
    assert message.startswith("rule 2 (rulePriority 5): selection.countUnit: ")
    assert 'the accepted value is "days"' in message


@pytest.mark.parametrize("number", [0, -2, 1.5, "3", True, None])
def test_count_number_must_be_a_whole_number_of_one_or_more(number: object) -> None:
    message = refused(lambda d: second_selection(d).update(countNumber=number))
    assert message.startswith("rule 2 (rulePriority 5): selection.countNumber: expected a whole")


@pytest.mark.parametrize("missing", ["tagStatus", "countType", "countNumber"])
def test_required_selection_fields(missing: str) -> None:
    message = refused(lambda d: second_selection(d).pop(missing))
    assert message == f"rule 2 (rulePriority 5): selection.{missing}: missing"


@pytest.mark.parametrize("count_type", ["imageCountLessThan", "sinceimagepushed"])
def test_unknown_count_type(count_type: str) -> None:
    message = refused(lambda d: second_selection(d).update(countType=count_type))
    assert message.startswith("rule 2 (rulePriority 5): selection.countType: ")


def test_since_image_pulled_with_expire_is_our_extension() -> None:
    document = valid_policy()
    second_selection(document)["countType"] = "sinceImagePulled"
    assert parse_policy(document).rules[1].selection.count_type == "sinceImagePulled"


def test_a_native_policy_is_refused_where_put_lifecycle_policy_alone_refuses_it() -> None:
    """ECR takes sinceImagePulled only with transition: our extension never reaches ECR."""
    document = valid_policy()
    second_selection(document)["countType"] = "sinceImagePulled"
    with pytest.raises(PolicyError) as caught:
        parse_native_policy(document)
    message = str(caught.value)
    assert message.startswith("rule 2 (rulePriority 5): countType 'sinceImagePulled' with ")
    assert "accepts sinceImagePulled only with" in message and '"transition"' in message
    document["rules"][1]["action"] = {"type": "transition", "targetStorageClass": "archive"}
    assert parse_native_policy(document).rules[1].action == "transition"
    assert parse_native_policy(valid_policy()) == parse_policy(valid_policy())


def test_a_native_policy_gets_the_evaluators_grammar_and_limits_too() -> None:
    document = valid_policy()
    first_selection(document)["countUnit"] = "days"
    with pytest.raises(PolicyError, match="countUnit: not allowed"):
        parse_native_policy(document)


def test_the_written_text_is_checked_against_put_lifecycle_policys_length_limits() -> None:
    shortest = parse_policy(
        {"rules": [{"rulePriority": 1, "action": {"type": "expire"}, "selection": {
            "tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}}]}
    )  # fmt: skip
    assert native_policy_problem(shortest) is None, "the shortest canonical text has 138"
    built = shortest.rules[0]  # a policy built in code is not limited by parse_policy's text check
    policy = LifecyclePolicy((Rule(1, "x" * 30_700, built.selection),))
    problem = native_policy_problem(policy)
    assert problem is not None and "PutLifecyclePolicy accepts 100 to 30,720" in problem


# --- the archive storage class ------------------------------------------------------------------


def archive_expire(days: int = 90) -> Document:
    return {
        "rulePriority": 9,
        "selection": {
            "tagStatus": "any",
            "storageClass": "archive",
            "countType": "sinceImageTransitioned",
            "countUnit": "days",
            "countNumber": days,
        },
        "action": {"type": "expire"},
    }


def with_archive_rule(doc: Document) -> Document:
    doc["rules"].append(archive_expire())
    return doc


def third_selection(doc: Document) -> Document:
    selection: Document = doc["rules"][2]["selection"]
    return selection


def test_transition_and_archive_rules_are_accepted() -> None:
    document = with_archive_rule(valid_policy())
    document["rules"][0]["action"] = {"type": "transition", "targetStorageClass": "archive"}
    policy = parse_policy(document)
    assert [rule.action for rule in policy.rules] == ["transition", "expire", "expire"]
    assert policy.rules[2].selection.storage_class == "archive"
    assert policy.rules[0].selection.storage_class == "standard"
    assert parse_policy(policy_document(policy)) == policy
    assert policy_document(policy)["rules"][0]["action"] == {
        "type": "transition",
        "targetStorageClass": "archive",
    }


def test_explicit_standard_storage_class_is_the_default() -> None:
    document = valid_policy()
    first_selection(document)["storageClass"] = "standard"
    assert parse_policy(document) == parse_policy(valid_policy())


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda d: second_selection(d).update(storageClass="glacier"),
         "rule 2 (rulePriority 5): selection.storageClass", "are standard, archive"),
        (lambda d: second_selection(d).update(storageClass="ARCHIVE"),
         "rule 2 (rulePriority 5): selection.storageClass", "accepted values"),
        (lambda d: second_selection(d).update(countType="sinceImageTransitioned", countNumber=90),
         "rule 2 (rulePriority 5): selection.storageClass", '"storageClass": "archive"'),
        (lambda d: second_selection(d).update(storageClass="archive"),
         "rule 2 (rulePriority 5): selection.countType", "only with sinceImageTransitioned"),
        (lambda d: with_archive_rule(d) and third_selection(d).pop("countUnit"),
         "rule 3 (rulePriority 9): selection.countUnit", "missing"),
        (lambda d: with_archive_rule(d) and third_selection(d).update(countNumber=89),
         "rule 3 (rulePriority 9): selection.countNumber", "90-day minimum"),
        (lambda d: with_archive_rule(d) and d["rules"][2].update(
            action={"type": "transition", "targetStorageClass": "archive"}),
         "rule 3 (rulePriority 9): action.type", 'may only "expire"'),
        (lambda d: d["rules"][1].update(action={"type": "transition"}),
         "rule 2 (rulePriority 5): action.targetStorageClass", "missing"),
        (lambda d: d["rules"][1].update(
            action={"type": "transition", "targetStorageClass": "standard"}),
         "rule 2 (rulePriority 5): action.targetStorageClass", '"archive"'),
        (lambda d: d["rules"][1]["action"].update(targetStorageClass="archive"),
         "rule 2 (rulePriority 5): action.targetStorageClass", 'only a "transition" action'),
        (lambda d: d["rules"][1].update(action={"type": "archive"}),
         "rule 2 (rulePriority 5): action.type", "accepted values are expire, transition"),
    ],
)  # fmt: skip
def test_archive_grammar_is_validated(
    change: Callable[[Document], object], field: str, words: str
) -> None:
    message = refused(change)
    assert message.startswith(f"{field}: "), message
    assert words in message


def test_archive_rule_with_count_is_refused_even_without_unit() -> None:
    def change(d: Document) -> None:
        rule = archive_expire()
        rule["selection"].pop("countUnit")
        rule["selection"].update(countType="imageCountMoreThan", countNumber=5)
        d["rules"].append(rule)

    message = refused(change)
    assert message.startswith("rule 3 (rulePriority 9): selection.countType: ")
    assert "only with sinceImageTransitioned" in message


def test_any_rule_is_last_within_its_storage_class() -> None:
    """The guide's "Combining archive and expire rules" has a standard `any` rule before an
    archive rule, so "highest rulePriority" holds per storage class."""
    document = valid_policy()
    second_selection(document)["tagStatus"] = "any"
    document["rules"].append(archive_expire())
    assert [rule.priority for rule in parse_policy(document).rules] == [1, 5, 9]

    tagged_archive = archive_expire()
    tagged_archive["rulePriority"] = 12
    tagged_archive["selection"].update(tagStatus="tagged", tagPatternList=["v*"])
    document["rules"].append(tagged_archive)
    message = refused(lambda d: d.update(rules=copy.deepcopy(document["rules"])))
    assert message.startswith("rule 3 (rulePriority 9): selection.tagStatus: ")
    assert "highest rulePriority among the archive rules" in message


# --- unknown keys and values, structure ----------------------------------------------------------


def test_unknown_top_level_key() -> None:
    message = refused(lambda d: d.update(version=1))
    assert message.startswith("version: unknown key at the top level")


def test_unknown_rule_key() -> None:
    message = refused(lambda d: d["rules"][1].update(enabled=True))
    assert message.startswith("rule 2 (rulePriority 5): enabled: unknown key; a rule accepts")


def test_unknown_selection_key() -> None:
    message = refused(lambda d: second_selection(d).update(tagStatuses="x"))
    assert message.startswith("rule 2 (rulePriority 5): selection.tagStatuses: unknown key")


def test_unknown_action_key() -> None:
    message = refused(lambda d: d["rules"][1]["action"].update(dryRun=True))
    assert message.startswith("rule 2 (rulePriority 5): action.dryRun: unknown key")


@pytest.mark.parametrize("action_type", ["delete", "EXPIRE", None])
def test_unknown_action_type(action_type: object) -> None:
    message = refused(lambda d: d["rules"][1].update(action={"type": action_type}))
    assert message.startswith("rule 2 (rulePriority 5): action.type: ")
    assert "accepted values are expire, transition" in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["rules"][1].pop("action"), "rule 2 (rulePriority 5): action: missing"),
        (lambda d: d["rules"][1].update(action={}),
         "rule 2 (rulePriority 5): action.type: missing"),
        (lambda d: d["rules"][1].pop("selection"), "rule 2 (rulePriority 5): selection: missing"),
        (lambda d: d["rules"][1].update(selection=[]),
         "rule 2 (rulePriority 5): selection: expected an object"),
        (lambda d: d["rules"][1].update(description=3),
         "rule 2 (rulePriority 5): description: expected a string"),
        (lambda d: d["rules"].append("rule"), "rule 3: expected a rule object"),
    ],
)  # fmt: skip
def test_rule_structure(change: Callable[[Document], object], expected: str) -> None:
    assert refused(change).startswith(expected)


def test_rules_missing_empty_or_not_a_list() -> None:
    assert refused(lambda d: d.pop("rules")).startswith("rules: missing")
    assert refused(lambda d: d.update(rules=[])).startswith("rules: empty")
    assert refused(lambda d: d.update(rules={"a": 1})).startswith("rules: expected a list")


def test_more_than_fifty_rules() -> None:
    def fifty_one(d: Document) -> None:
        template = d["rules"][0]
        d["rules"] = [dict(copy.deepcopy(template), rulePriority=n) for n in range(1, 52)]

    assert refused(fifty_one) == "rules: 51 rules; ECR accepts at most 50"
    document = valid_policy()
    fifty_one(document)
    document["rules"].pop()
    assert len(parse_policy(document).rules) == 50


def test_policy_text_longer_than_30720_characters() -> None:
    document = valid_policy()
    document["rules"][0]["description"] = "x" * 30_720
    message = refused(lambda d: d.update(document))
    assert message.startswith("policy text: ") and "at most 30,720" in message


def test_length_is_measured_on_the_text_given() -> None:
    document = valid_policy()
    compact = json.dumps(document, separators=(",", ":"))
    padded = compact[:-1] + " " * (30_721 - len(compact)) + "}"
    assert len(padded) == 30_721
    with pytest.raises(PolicyError, match="30,721 characters"):
        parse_policy(padded)
    parse_policy(padded[:-2] + "}")  # 30,720 characters: accepted


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([], "expected a lifecycle policy: a JSON object"),
        (None, "expected a lifecycle policy: a JSON object"),
        (42, "expected a lifecycle policy: a JSON object"),
        ("{not json", "policy text: not valid JSON"),
        ('"a string"', "expected a lifecycle policy: a JSON object"),
    ],
)
def test_non_object_input(document: object, expected: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(document)
    assert str(caught.value).startswith(expected)


def test_get_lifecycle_policy_object_checks() -> None:
    text = json.dumps(valid_policy())
    with pytest.raises(PolicyError, match=r"^rules: unknown key next to lifecyclePolicyText"):
        parse_policy({"lifecyclePolicyText": text, "rules": []})
    with pytest.raises(PolicyError, match=r"^lifecyclePolicyText: expected the policy as a JSON"):
        parse_policy({"lifecyclePolicyText": valid_policy()})
    with pytest.raises(PolicyError, match=r"^lifecyclePolicyText: not valid JSON"):
        parse_policy({"lifecyclePolicyText": "{"})
    bad = valid_policy()
    second_selection(bad)["countNumber"] = 0
    with pytest.raises(PolicyError, match=r"^rule 2 \(rulePriority 5\): selection\.countNumber"):
        parse_policy({"repositoryName": "web", "lifecyclePolicyText": json.dumps(bad)})


# --- policies built in code are held to the same rules -------------------------------------------


def test_directly_built_policies_are_validated() -> None:
    parsed = parse_policy(valid_policy())
    with pytest.raises(PolicyError, match="sorted by rulePriority"):
        LifecyclePolicy(parsed.rules[::-1])
    with pytest.raises(PolicyError, match="rules: empty"):
        LifecyclePolicy(())
    untagged_with_list = Selection(
        tag_status="untagged",
        tag_prefix_list=("v",),
        count_type="imageCountMoreThan",
        count_number=1,
    )
    with pytest.raises(PolicyError, match=r"^rule 1 \(rulePriority 1\): selection\.tagPrefixList"):
        LifecyclePolicy((Rule(1, "", untagged_with_list),))


def test_canonical_document_round_trips() -> None:
    policy = parse_policy(valid_policy())
    document = policy_document(policy)
    assert parse_policy(document) == policy
    assert "description" not in document["rules"][1]  # omitted when empty
    assert parse_policy(json.dumps(document)) == policy


def test_a_count_too_large_for_date_arithmetic_is_refused() -> None:
    bad = valid_policy()
    second_selection(bad)["countNumber"] = 10**12
    with pytest.raises(
        PolicyError, match=r"countNumber: expected a whole number from 1 to 1000000"
    ):
        parse_policy(bad)
