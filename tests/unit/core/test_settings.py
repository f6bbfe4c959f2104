"""The one settings schema: defaults, string overrides, and errors that name the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecr_sweeper.core.settings import ENVIRONMENT_VARIABLE, SETTING_KEYS, SettingsError
from ecr_sweeper.core.settings import StackSettings as Settings

ROOT = Path(__file__).resolve().parents[3]


def cdk_context() -> dict[str, object]:
    return dict(json.loads((ROOT / "cdk.json").read_text())["context"])


def problems_of(context: dict[str, object]) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        Settings.from_context(context)
    return caught.value.problems


def test_cdk_json_holds_the_documented_defaults() -> None:
    settings = Settings.from_context(cdk_context())
    assert settings == Settings()
    assert settings.keep_tagged_images == 10
    assert settings.untagged_grace_days == 1
    assert settings.protected_tags == ("latest",)
    assert settings.include_repositories == ("*",)
    assert settings.schedule_expression == "cron(0 3 * * ? *)"
    assert settings.schedule_timezone == "UTC"
    assert settings.dry_run is False


def test_cdk_feature_flags_are_not_mistaken_for_settings() -> None:
    context = {"@aws-cdk/core:newStyleStackSynthesis": True, "aws:cdk:enable-path-metadata": True}
    assert Settings.from_context(context) == Settings()


def test_string_overrides_from_cdk_dash_c_are_parsed() -> None:
    settings = Settings.from_context(
        {
            "keepTaggedImages": "5",
            "dryRun": "TRUE",
            "protectedTags": "latest, stable-*",
            "excludeRepositories": '["infra/*", "base"]',
            "logRetentionDays": "30",
            "alarmEmail": "ops@example.com",
            "storagePricePerGbMonth": "0.09",
        }
    )
    assert settings.keep_tagged_images == 5
    assert settings.dry_run is True
    assert settings.protected_tags == ("latest", "stable-*")
    assert settings.exclude_repositories == ("infra/*", "base")
    assert settings.log_retention_days == 30
    assert settings.alarm_email == "ops@example.com"
    assert settings.storage_price_per_gb_month == pytest.approx(0.09)


def test_a_typo_is_an_unknown_key_with_a_suggestion() -> None:
    (problem,) = problems_of({"keepTagedImages": 3})
    assert problem.startswith("keepTagedImages: unknown setting")
    assert "did you mean 'keepTaggedImages'" in problem


@pytest.mark.parametrize(
    ("key", "value", "accepted"),
    [
        ("keepTaggedImages", "abc", "a whole number from 1 to 10000"),
        ("keepTaggedImages", 0, "a whole number from 1 to 10000"),
        ("keepTaggedImages", True, "a whole number from 1 to 10000"),
        ("untaggedGraceDays", -1, "a whole number from 1 to 3650"),
        ("dryRun", "yes", "true or false"),
        ("protectedTags", "lat est", "tag patterns"),
        ("includeRepositories", ["Upper"], "repository name patterns"),
        ("scheduleExpression", "0 3 * * *", "six fields"),
        ("scheduleTimezone", "Mars/Olympus", "IANA time zone"),
        ("logRetentionDays", 42, "one of 1, 3, 5"),
        ("logLevel", "LOUD", "one of DEBUG, INFO, WARNING, ERROR"),
        ("functionTimeoutSeconds", 901, "from 60 to 900"),
        ("metricsNamespace", "AWS/ECR", "not AWS/"),
        ("alarmEmail", "not-an-email", "an email address"),
        ("storagePricePerGbMonth", "free", "a price in USD per GB-month"),
        ("lifecyclePolicy", "{not json", "a lifecycle policy as a JSON object"),
    ],
)
def test_a_bad_value_names_the_key_the_value_and_what_is_accepted(
    key: str, value: object, accepted: str
) -> None:
    (problem,) = problems_of({key: value})
    assert problem.startswith(f"{key}: got {json.dumps(value)}")
    assert accepted in problem


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of({"keepTaggedImages": "x", "dryRun": "maybe", "bogus": 1})
    assert [p.split(":")[0] for p in problems] == ["keepTaggedImages", "dryRun", "bogus"]


def test_an_invalid_lifecycle_policy_is_refused_with_its_rule_and_field() -> None:
    policy = {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {
                    "tagStatus": "tagged",
                    "countType": "imageCountMoreThan",
                    "countNumber": 2,
                },
                "action": {"type": "expire"},
            }
        ]
    }
    (problem,) = problems_of({"lifecyclePolicy": policy})
    assert problem.startswith("lifecyclePolicy:")
    assert "rulePriority 1" in problem
    assert "tagPrefixList" in problem or "tagPatternList" in problem


def test_a_policy_file_is_read_relative_to_cdk_json(tmp_path: Path) -> None:
    policy = {
        "rules": [
            {
                "rulePriority": 1,
                "description": "untagged after 3 days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 3,
                },
                "action": {"type": "expire"},
            }
        ]
    }
    (tmp_path / "policy.json").write_text(json.dumps(policy))
    settings = Settings.from_context({"lifecyclePolicyFile": "policy.json"}, base_dir=tmp_path)
    assert [rule.priority for rule in settings.policy().rules] == [1]
    assert settings.policy().rules[0].description == "untagged after 3 days"


def test_a_missing_policy_file_and_a_file_beside_a_policy_are_errors(tmp_path: Path) -> None:
    (missing,) = problems_of({"lifecyclePolicyFile": str(tmp_path / "nope.json")})
    assert missing.startswith(f"lifecyclePolicyFile {str(tmp_path / 'nope.json')!r}: can't read")
    (both,) = problems_of({"lifecyclePolicyFile": "p.json", "lifecyclePolicy": {"rules": []}})
    assert "not both" in both


def test_the_lambda_reads_back_exactly_what_synth_validated() -> None:
    settings = Settings.from_context({**cdk_context(), "keepTaggedImages": "7", "dryRun": "true"})
    assert Settings.from_json(settings.to_json()) == settings


def test_a_broken_environment_variable_is_a_clear_error() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_json("[1, 2]")
    assert caught.value.problems == [f"{ENVIRONMENT_VARIABLE}: expected a JSON object of settings"]


def test_simple_settings_compile_into_lifecycle_rules() -> None:
    policy = Settings(keep_tagged_images=4, untagged_grace_days=2).policy()
    untagged, tagged = policy.rules
    assert (untagged.selection.tag_status, untagged.selection.count_type) == (
        "untagged",
        "sinceImagePushed",
    )
    assert untagged.selection.count_number == 2
    assert (tagged.selection.tag_status, tagged.selection.count_type) == (
        "tagged",
        "imageCountMoreThan",
    )
    assert tagged.selection.count_number == 4


def test_cdk_json_and_the_readme_list_every_setting() -> None:
    context = cdk_context()
    readme = (ROOT / "README.md").read_text()
    for key in SETTING_KEYS:
        assert f"| `{key}` |" in readme, f"README's settings table lacks {key}"
        if key not in ("lifecyclePolicyFile", "nativeLifecyclePolicyFile"):
            assert key in context, f"cdk.json lacks {key}"


@pytest.mark.parametrize("key", ["dry_run", "dry-run", "DryRun", "DRYRUN"])
def test_a_setting_in_another_case_style_is_an_error_not_ignored(key: str) -> None:
    (problem,) = problems_of({key: "true"})
    assert problem == f"{key}: settings are camelCase; did you mean 'dryRun'?"


# --- the archive tier ----------------------------------------------------------------------------


def test_archive_settings_default_to_deleting_and_parse_from_strings() -> None:
    assert Settings().expired_image_action == "delete"
    assert Settings().archive_retention_days is None
    assert not Settings().archives
    settings = Settings.from_context(
        {
            "expiredImageAction": " Archive ",
            "archiveRetentionDays": "180",
            "archiveStoragePricePerGbMonth": "0.07",
        }
    )
    assert settings.archives
    assert settings.archive_retention_days == 180
    assert settings.archive_storage_price_per_gb_month == pytest.approx(0.07)
    assert Settings.from_json(settings.to_json()) == settings


@pytest.mark.parametrize(
    ("context", "problem"),
    [
        ({"expiredImageAction": "move"},
         'expiredImageAction: got "move"; expected one of delete, archive'),
        ({"expiredImageAction": "archive", "archiveRetentionDays": 89},
         "archiveRetentionDays: got 89; expected a whole number from 90 to 36500"),
        ({"archiveStoragePricePerGbMonth": 0},
         "archiveStoragePricePerGbMonth: got 0; expected a price in USD per GB-month"),
    ],
)  # fmt: skip
def test_bad_archive_values_name_the_key(context: dict[str, object], problem: str) -> None:
    (reported,) = problems_of(context)
    assert reported.startswith(problem)


def test_archive_retention_needs_the_archive_action() -> None:
    (problem,) = problems_of({"archiveRetentionDays": 120})
    assert problem.startswith("archiveRetentionDays: got 120; it applies only with")
    assert "set expiredImageAction to archive or archiveRetentionDays to null" in problem


def transition_policy(archive_rule: bool = False) -> dict[str, object]:
    rules: list[dict[str, object]] = [
        {
            "rulePriority": 1,
            "description": "idle",
            "selection": {
                "tagStatus": "any",
                "countType": "sinceImagePulled",
                "countUnit": "days",
                "countNumber": 90,
            },
            "action": {"type": "transition", "targetStorageClass": "archive"},
        }
    ]
    if archive_rule:
        rules.append(
            {
                "rulePriority": 2,
                "selection": {
                    "tagStatus": "any",
                    "storageClass": "archive",
                    "countType": "sinceImageTransitioned",
                    "countUnit": "days",
                    "countNumber": 365,
                },
                "action": {"type": "expire"},
            }
        )
    return {"rules": rules}


def test_a_policy_that_transitions_needs_the_archive_action() -> None:
    (problem,) = problems_of({"lifecyclePolicy": transition_policy()})
    assert problem == (
        'lifecyclePolicy: rule 1 ("idle") transitions images to archive; set '
        'expiredImageAction to "archive" (that grants ecr:UpdateImageStorageClass)'
    )
    settings = Settings.from_context(
        {"lifecyclePolicy": transition_policy(True), "expiredImageAction": "archive"}
    )
    assert [rule.action for rule in settings.policy().rules] == ["transition", "expire"]


def test_archive_retention_and_a_policy_archive_rule_are_not_combined() -> None:
    (problem,) = problems_of(
        {
            "lifecyclePolicy": transition_policy(True),
            "expiredImageAction": "archive",
            "archiveRetentionDays": 100,
        }
    )
    assert problem.startswith("archiveRetentionDays and lifecyclePolicy: rule 2 already expires")


def test_archive_compiles_the_simple_settings_into_transition_rules() -> None:
    policy = Settings(expired_image_action="archive", archive_retention_days=120).policy()
    assert [(r.priority, r.action, r.selection.storage_class) for r in policy.rules] == [
        (1, "transition", "standard"),
        (2, "transition", "standard"),
        (3, "expire", "archive"),
    ]
    assert policy.rules[2].selection.count_type == "sinceImageTransitioned"
    assert policy.rules[2].selection.count_number == 120
    assert [r.action for r in Settings().policy().rules] == ["expire", "expire"]


KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.mark.parametrize(
    "key_arn",
    [KEY_ARN, "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/mrk-" + "0" * 32],
)
def test_a_kms_key_arn_goes_with_the_extra_references(key_arn: str) -> None:
    settings = Settings.from_context(
        {
            "extraImageReferences": "ssm:/platform/refs",
            "extraImageReferencesKmsKeyArn": key_arn,
        }
    )
    assert settings.extra_image_references_kms_key_arn == key_arn
    assert Settings.from_json(settings.to_json()) == settings


@pytest.mark.parametrize(
    "value",
    [
        "alias/aws/ssm",
        "arn:aws:kms:eu-west-1:111122223333:alias/refs",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:kms:eu-west-1:111122223333:key/*",
        KEY_ARN.replace("kms", "s3"),
    ],
)
def test_anything_but_a_kms_key_arn_is_refused(value: str) -> None:
    (problem,) = problems_of(
        {"extraImageReferences": "ssm:/platform/refs", "extraImageReferencesKmsKeyArn": value}
    )
    assert problem.startswith(f"extraImageReferencesKmsKeyArn: got {json.dumps(value)}; expected")
    assert "a KMS key ARN" in problem


def test_a_kms_key_without_extra_references_is_an_error() -> None:
    (problem,) = problems_of({"extraImageReferencesKmsKeyArn": KEY_ARN})
    assert problem.startswith("extraImageReferencesKmsKeyArn: only used to read")
    assert Settings.from_context({"extraImageReferencesKmsKeyArn": "null"}) == Settings()


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 3 * * ? *)",
        "cron(0/15 * ? * MON-FRI *)",
        "cron(0 18 L * ? *)",
        "cron(0 8 LW * ? *)",
        "cron(0 8 15W * ? *)",
        "cron(0 10 ? * 6#3 *)",
        "cron(15 10 ? * 6L 2027-2030)",
        "cron(0 0,12 1-7 JAN,jul ? *)",
        "rate(1 minute)",
        "rate(5 minutes)",
        "rate(1 day)",
        "rate(12 hours)",
    ],
)
def test_schedules_eventbridge_scheduler_accepts_pass(expression: str) -> None:
    assert Settings.from_mapping({"scheduleExpression": expression}).schedule_expression == (
        expression
    )


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 3 * * * *)",
        "cron(0 3 ? * ? *)",
        "cron(60 3 * * ? *)",
        "cron(0 24 * * ? *)",
        "cron(0 3 0 * ? *)",
        "cron(0 3 32 * ? *)",
        "cron(0 3 * 0 ? *)",
        "cron(0 3 ? * 0 *)",
        "cron(0 3 ? * 6#6 *)",
        "cron(0 3 * * ? 1969)",
        "cron(0/0 3 * * ? *)",
        "cron(0 3 * * ? *",
        "rate(0 days)",
        "rate(1 minutes)",
        "rate(2 hour)",
        "rate(1 week)",
        "at(2026-12-01T00:00:00)",
    ],
)
def test_schedules_eventbridge_scheduler_refuses_are_refused(expression: str) -> None:
    (problem,) = problems_of({"scheduleExpression": expression})
    assert problem.startswith("scheduleExpression: got ")


@pytest.mark.parametrize(
    "zone", ["localtime", "Factory", "posixrules", "posix/Europe/Berlin", " UTC"]
)
def test_time_zones_that_are_no_iana_zone_are_refused(zone: str) -> None:
    (problem,) = problems_of({"scheduleTimezone": zone})
    assert "IANA time zone" in problem


def test_in_use_sources_are_on_by_default_and_can_be_turned_off() -> None:
    defaults = Settings()
    assert defaults.protect_scheduled_task_images and defaults.protect_batch_images
    assert defaults.protect_previous_task_definitions == 1
    off = Settings.from_mapping(
        {
            "protectScheduledTaskImages": "false",
            "protectBatchImages": False,
            "protectPreviousTaskDefinitions": "0",
        }
    )
    assert not off.protect_scheduled_task_images and not off.protect_batch_images
    assert off.protect_previous_task_definitions == 0
    for bad in (-1, 101, "1.5", True):
        (problem,) = problems_of({"protectPreviousTaskDefinitions": bad})
        assert "a whole number from 0 to 100" in problem


@pytest.mark.parametrize("unset", ["null", "", " none "])
def test_archive_retention_days_can_be_unset_from_the_command_line(unset: str) -> None:
    """`-c archiveRetentionDays=null` keeps archived images, as README says."""
    settings = Settings.from_context(
        {"expiredImageAction": "archive", "archiveRetentionDays": unset}
    )
    assert settings.archive_retention_days is None
