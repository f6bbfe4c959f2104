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


PULLED_EXPIRE = {
    "rules": [
        {
            "rulePriority": 1,
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePulled",
                "countUnit": "days",
                "countNumber": 30,
            },
            "action": {"type": "expire"},
        }
    ]
}
"""Valid for the sweep (our extension), refused by ECR's PutLifecyclePolicy."""


def test_a_native_policy_ecr_would_refuse_fails_synth_and_the_sweeps_own_policy_may_use_it(
    tmp_path: Path,
) -> None:
    with pytest.raises(SettingsError) as raised:
        build_app(_context(nativeLifecyclePolicy=json.dumps(PULLED_EXPIRE)))
    (problem,) = raised.value.problems
    assert problem.startswith("nativeLifecyclePolicy (-c): got ")
    assert "PutLifecyclePolicy accepts sinceImagePulled only with" in problem
    policy_file = tmp_path / "native.json"
    policy_file.write_text(json.dumps(PULLED_EXPIRE))
    with pytest.raises(SettingsError) as from_file:
        settings_from_context(_context(nativeLifecyclePolicyFile=str(policy_file)))
    assert f"nativeLifecyclePolicyFile '{policy_file}': " in str(from_file.value)
    assert "sinceImagePulled only with" in str(from_file.value)
    lifecycle = settings_from_context(
        _context(lifecyclePolicy=json.dumps(PULLED_EXPIRE), keepTaggedImages=10)
    )
    assert lifecycle.lifecycle_policy is not None


def test_regions_are_checked_against_the_sdks_partition_data_with_an_escape() -> None:
    with pytest.raises(SettingsError) as raised:
        build_app(_context(regions='["us-east-1","us-east-99"]'))
    (problem,) = raised.value.problems
    assert problem.startswith("regions (-c): 'us-east-99' is not a region botocore ")
    assert "(did you mean 'us-east-" in problem
    assert "allowUnknownRegions" in problem
    known = settings_from_context(_context(regions='["eu-west-1","us-gov-west-1","cn-north-1"]'))
    assert known.regions == ("eu-west-1", "us-gov-west-1", "cn-north-1")
    newer = settings_from_context(_context(regions="us-east-99", allowUnknownRegions="true"))
    assert newer.regions == ("us-east-99",)


def test_a_setting_the_lifecycle_policy_overrides_is_an_error_when_given_explicitly() -> None:
    policy = json.dumps(PULLED_EXPIRE)
    with pytest.raises(SettingsError) as raised:
        build_app(_context(lifecyclePolicy=policy, keepTaggedImages="3"))
    (problem,) = raised.value.problems
    assert problem.startswith("keepTaggedImages (-c): 3 would not be used (lifecyclePolicy wins")
    with pytest.raises(SettingsError, match=r"untaggedGraceDays \(-c\): 10 would not be used"):
        settings_from_context(
            _context(lifecyclePolicy=policy, untaggedGraceDays=10),
            origins={"untaggedGraceDays": "-c"},
        )
    with pytest.raises(SettingsError, match=r"crossAccountRoleName: \"Sweeper\" would not be"):
        settings_from_context(_context(crossAccountRoleName="Sweeper"))
    # cdk.json lists every setting at its default: those values change nothing and pass.
    settings = settings_from_context(_context(lifecyclePolicy=policy))
    assert settings.lifecycle_policy is not None and settings.keep_tagged_images == 10
