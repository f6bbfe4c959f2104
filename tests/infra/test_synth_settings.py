"""Bad settings stop synth with a message naming the key; CDK's own context keys pass through."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ecr_sweeper.core.settings import (
    ENVIRONMENT_LIMIT_BYTES,
    SettingsError,
    environment_size,
    function_environment,
)
from ecr_sweeper.core.settings import (
    StackSettings as Settings,
)
from infra import build_app
from infra.config import cdk_json_context, settings_from_context


def _context(**overrides: Any) -> dict[str, Any]:
    return {**cdk_json_context(), **overrides}


def test_cdk_json_settings_are_valid_and_feature_flags_are_ignored() -> None:
    context = cdk_json_context()
    assert any(key.startswith("@aws-cdk/") for key in context)
    settings = settings_from_context(context)
    assert settings.keep_tagged_images == context["keepTaggedImages"]
    assert settings.schedule_expression == context["scheduleExpression"]


def test_values_given_as_cli_strings_are_parsed() -> None:
    settings = settings_from_context(
        _context(keepTaggedImages="5", dryRun="true", excludeRepositories="tools/*,sandbox")
    )
    assert settings.keep_tagged_images == 5
    assert settings.dry_run is True
    assert settings.exclude_repositories == ("tools/*", "sandbox")


def test_a_typo_in_a_key_is_named_with_a_suggestion() -> None:
    with pytest.raises(SettingsError) as raised:
        settings_from_context(_context(keepTagedImages=5))
    message = str(raised.value)
    assert "keepTagedImages: unknown setting" in message
    assert "did you mean 'keepTaggedImages'" in message


def test_a_bad_value_is_named_with_what_is_accepted() -> None:
    with pytest.raises(SettingsError) as raised:
        settings_from_context(_context(keepTaggedImages="abc"))
    assert 'keepTaggedImages: got "abc"; expected a whole number' in str(raised.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as raised:
        build_app(_context(logRetentionDays=4, scheduleTimezone="Mars/Olympus"))
    problems = raised.value.problems
    assert sorted(p.split(" ")[0] for p in problems) == ["logRetentionDays", "scheduleTimezone"]
    assert all(" (-c): got " in p for p in problems), "values not in cdk.json came from -c"


def test_build_app_rejects_bad_settings_before_building_anything() -> None:
    with pytest.raises(SettingsError, match="functionMemoryMb"):
        build_app(_context(functionMemoryMb=64))


def test_policy_file_is_read_relative_to_the_project(tmp_path: Path) -> None:
    policy = {
        "rules": [
            {
                "rulePriority": 1,
                "description": "expire untagged after 2 days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 2,
                },
                "action": {"type": "expire"},
            }
        ]
    }
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy), encoding="utf-8")
    settings = settings_from_context(_context(lifecyclePolicyFile=str(path)))
    assert settings.lifecycle_policy is not None
    assert settings.lifecycle_policy["rules"][0]["rulePriority"] == 1
    with pytest.raises(SettingsError, match="lifecyclePolicyFile"):
        settings_from_context(_context(lifecyclePolicyFile="no/such/policy.json"))


def _large_policy(rules: int, description_length: int) -> dict[str, Any]:
    return {
        "rules": [
            {
                "rulePriority": priority,
                "description": f"rule {priority} " + "x" * description_length,
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": [f"team{priority}-*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": 5,
                },
                "action": {"type": "expire"},
            }
            for priority in range(1, rules + 1)
        ]
    }


def test_settings_too_large_for_the_lambda_environment_fail_synth_naming_the_policy() -> None:
    policy = json.dumps(_large_policy(rules=40, description_length=100))
    settings = settings_from_context(_context(lifecyclePolicy=policy))  # valid on its own
    assert environment_size(function_environment(settings)) > ENVIRONMENT_LIMIT_BYTES
    with pytest.raises(SettingsError) as raised:
        build_app(_context(lifecyclePolicy=policy))
    [problem] = raised.value.problems
    assert problem.startswith("lifecyclePolicy: ")
    assert "4 KB" in problem


def test_a_policy_that_fits_is_accepted() -> None:
    policy = json.dumps(_large_policy(rules=5, description_length=20))
    _, stack = build_app(_context(lifecyclePolicy=policy))
    assert stack.settings.lifecycle_policy is not None
    assert environment_size(function_environment(stack.settings)) <= ENVIRONMENT_LIMIT_BYTES


def test_environment_size_counts_utf8_bytes_of_names_and_values() -> None:
    assert environment_size({"AB": "é"}) == 4
    assert environment_size(function_environment(Settings())) < ENVIRONMENT_LIMIT_BYTES
