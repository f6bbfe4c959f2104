"""Comparing a repository's native lifecycle policy with the wanted one (pure), and its settings."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ecr_sweeper.core import lifecycle, overrides, planner
from ecr_sweeper.core.model import Image
from ecr_sweeper.core.settings import Settings, SettingsError
from ecr_sweeper.sweep.facts import SweepView
from ecr_sweeper.sweep.native_policy import (
    CREATE,
    UNCHANGED,
    UPDATE,
    compare,
    policy_text,
    risks,
)

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def rule(priority: int, status: str, count_type: str, number: int, **extra: Any) -> dict[str, Any]:
    selection: dict[str, Any] = {
        "tagStatus": status,
        "countType": count_type,
        "countNumber": number,
    }
    if count_type != "imageCountMoreThan":
        selection["countUnit"] = "days"
    selection.update(extra)
    return {"rulePriority": priority, "selection": selection, "action": {"type": "expire"}}


WANTED = {
    "rules": [
        rule(1, "untagged", "sinceImagePushed", 7),
        rule(2, "tagged", "imageCountMoreThan", 1, tagPatternList=["*"]),
    ]
}


def image(digest: str, days: float, *tags: str) -> Image:
    return Image(f"sha256:{digest * 64}"[:71], tags, NOW - timedelta(days=days))


IMAGES = [image("a", 30), image("b", 1), image("c", 20, "v1"), image("d", 10, "v2")]


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(WANTED),
        json.dumps({"rules": list(reversed(WANTED["rules"]))}, indent=3),
        json.dumps(
            {
                "rules": [
                    {**rule(1, "untagged", "sinceImagePushed", 7), "description": ""},
                    {
                        "action": {"type": "expire"},
                        "selection": {
                            "countNumber": 1,
                            "tagPatternList": ["*"],
                            "countType": "imageCountMoreThan",
                            "tagStatus": "tagged",
                        },
                        "rulePriority": 2,
                    },
                ]
            },
            sort_keys=True,
        ),
    ],
    ids=["same-text", "rules-reversed-indented", "keys-sorted-empty-description"],
)
def test_a_reformatted_but_equal_policy_is_unchanged(text: str) -> None:
    change = compare("web", lifecycle.parse_policy(WANTED), text, IMAGES, now=NOW)
    assert change.change == UNCHANGED and change.diff == []
    assert change.would_expire == 2 and change.current_would_expire is None


def test_no_policy_is_a_create_and_a_different_one_an_update_with_both_counts() -> None:
    wanted = lifecycle.parse_policy(WANTED)
    created = compare("web", wanted, None, IMAGES, now=NOW)
    assert created.change == CREATE and created.diff[0] == "--- current"
    current = json.dumps({"rules": [rule(1, "any", "imageCountMoreThan", 3)]})
    updated = compare("web", wanted, current, IMAGES, now=NOW)
    assert updated.change == UPDATE
    assert (updated.would_expire, updated.current_would_expire) == (2, 1)
    assert any(line.startswith('-        "tagStatus": "any"') for line in updated.diff)


def test_a_current_policy_we_cant_evaluate_is_an_update_with_a_warning() -> None:
    current = json.dumps({"rules": [{**rule(1, "untagged", "sinceImagePushed", 7), "unknown": 1}]})
    change = compare("web", lifecycle.parse_policy(WANTED), current, IMAGES, now=NOW)
    assert change.change == UPDATE and change.current_would_expire is None
    assert change.warnings[0].startswith("the current policy can't be evaluated by ecr-sweeper:")


def test_in_use_images_the_policy_would_expire_are_named_by_digest_or_tag() -> None:
    wanted = lifecycle.parse_policy(WANTED)
    change = compare(
        "web",
        wanted,
        None,
        IMAGES,
        now=NOW,
        in_use_by_digest={IMAGES[0].digest: "task prod/1"},
        in_use_by_tag={"v1": "service prod/web", "v2": "service prod/api"},
    )
    assert change.warnings == [
        f"{IMAGES[0].digest[:19]} ({IMAGES[0].digest}): the policy would expire it, but it is "
        "in use by task prod/1",
        f"v1 ({IMAGES[2].digest}): the policy would expire it, but it is in use by "
        "service prod/web",
    ]


def test_the_written_text_is_canonical_and_reads_back_as_the_same_policy() -> None:
    policy = lifecycle.parse_policy(json.dumps({"rules": list(reversed(WANTED["rules"]))}))
    text = policy_text(policy)
    assert " " not in text and lifecycle.parse_policy(text) == policy


def test_native_policy_settings_are_validated_and_read_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "native.json").write_text(json.dumps(WANTED))
    settings = Settings.from_context({"nativeLifecyclePolicyFile": "native.json"}, tmp_path)
    assert settings.native_lifecycle_policy == lifecycle.policy_document(
        lifecycle.parse_policy(WANTED)
    )
    assert settings.sweep_images is True
    with pytest.raises(SettingsError) as caught:
        Settings.from_context(
            {"nativeLifecyclePolicyFile": "native.json", "nativeLifecyclePolicy": WANTED},
            tmp_path,
        )
    assert caught.value.problems == [
        "nativeLifecyclePolicy and nativeLifecyclePolicyFile: give one of them, not both"
    ]
    with pytest.raises(SettingsError) as caught:
        Settings.from_mapping({"sweepImages": "false"})
    assert caught.value.problems[0].startswith("sweepImages: false with no nativeLifecyclePolicy")
    with pytest.raises(SettingsError) as caught:
        Settings.from_mapping({"nativeLifecyclePolicy": {"rules": []}})
    assert caught.value.problems[0].startswith(
        'nativeLifecyclePolicy: got {"rules": []}; expected a valid lifecycle policy: rules: empty'
    )
    only_enforce = Settings.from_mapping({"sweepImages": False, "nativeLifecyclePolicy": WANTED})
    assert Settings.from_json(only_enforce.to_json()) == only_enforce


# --- what a native policy would expire that the sweep keeps -------------------------------------

NATIVE_UNTAGGED = lifecycle.parse_policy({"rules": [rule(1, "untagged", "sinceImagePushed", 3)]})
"""ECR judges every manifest on its own: untagged children and referrers match `untagged`."""


def _view(images: list[Image], **facts: Any) -> SweepView:
    settings = Settings(keep_tagged_images=5)
    rules = overrides.repository_rules(settings, {})
    known = planner.RepositoryFacts(**facts)
    plan = planner.plan_repository("app", images, rules, now=NOW, facts=known)
    return SweepView(images, known, plan)


def test_risks_name_each_kept_child_referrer_and_image_in_use_the_policy_would_expire() -> None:
    index, child = image("1", 10, "v1"), image("2", 10)
    signature = replace(image("3", 10), subject_digest=index.digest)
    running, stray = image("4", 10), image("5", 10)
    view = _view(
        [index, child, signature, running, stray],
        children={index.digest: (child.digest,)},
        in_use_by_digest={running.digest: "task prod/1"},
    )
    assert risks(NATIVE_UNTAGGED, view, NOW) == [
        f"{child.digest[:19]} ({child.digest}): the policy would expire it, but the sweep keeps "
        "it: child of kept index v1",
        f"{signature.digest[:19]} ({signature.digest}): the policy would expire it, but the "
        "sweep keeps it: referrer of kept image v1",
        f"{running.digest[:19]} ({running.digest}): the policy would expire it, but it is in "
        "use by task prod/1",
    ], "the stray untagged image is the sweep's to delete too: no warning"


def test_when_the_sweep_is_unsure_a_policy_that_expires_anything_is_a_risk() -> None:
    view = _view([image("1", 10), image("2", 1)], uncertain="index manifests unreadable")
    assert risks(NATIVE_UNTAGGED, view, NOW) == [
        "the policy would expire 1 image(s), and what the sweep keeps is unknown: index "
        "manifests unreadable"
    ]
    assert risks(NATIVE_UNTAGGED, _view([image("2", 1)], uncertain="x"), NOW) == []
