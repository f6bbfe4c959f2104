"""The synthesized template: function, layer, schedule, logs, IAM and alarms, from the settings."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import cfnlint
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Match, Template
from aws_lambda_powertools.shared.version import VERSION as POWERTOOLS_VERSION
from helpers.infra import (
    CUSTOM_SETTINGS,
    NATIVE_POLICY,
    Synthesized,
    actions_of,
    as_list,
    policy_documents,
    statements,
)

from ecr_sweeper.aws import permissions
from ecr_sweeper.core import metrics_catalog
from ecr_sweeper.core.setting_types import LOG_RETENTION_DAYS
from ecr_sweeper.core.settings import StackSettings as Settings
from infra import build_app
from infra.config import cdk_json_context, settings_from_context
from infra.function import RUNTIME, retention_for, sweeper_code
from infra.grants import UNSCOPED_ACTIONS

XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
LOG_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents"}
DLQ_ACTIONS = {"sqs:SendMessage"}
"""Lambda itself sends an invocation that never ran to the dead-letter queue, as the role."""


def _function(app: Synthesized) -> dict[str, Any]:
    properties: dict[str, Any] = app.only("AWS::Lambda::Function")[1]["Properties"]
    return properties


def _sweeper_policy(app: Synthesized) -> list[dict[str, Any]]:
    role_id = app.logical_id(app.stack.sweeper.role)
    policies = [
        resource["Properties"]["PolicyDocument"]
        for resource in app.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in resource["Properties"]["Roles"]
    ]
    assert len(policies) == 1
    return statements(policies[0])


# Function -------------------------------------------------------------------------------------


def test_function_runs_the_handler_on_arm64_python(default_app: Synthesized) -> None:
    function = _function(default_app)
    assert function["Runtime"] == "python3.12"
    assert function["Architectures"] == ["arm64"]
    assert function["Handler"] == "ecr_sweeper.handlers.sweeper.lambda_handler"
    assert function["TracingConfig"] == {"Mode": "Active"}


@pytest.mark.parametrize(
    ("fixture", "timeout", "memory"), [("default_app", 900, 1024), ("custom_app", 600, 512)]
)
def test_timeout_and_memory_follow_settings(
    fixture: str, timeout: int, memory: int, request: pytest.FixtureRequest
) -> None:
    app: Synthesized = request.getfixturevalue(fixture)
    function = _function(app)
    assert (function["Timeout"], function["MemorySize"]) == (timeout, memory)


def test_two_sweeps_never_overlap_and_failed_runs_are_not_retried(
    default_app: Synthesized,
) -> None:
    assert _function(default_app)["ReservedConcurrentExecutions"] == 1
    _, invoke_config = default_app.only("AWS::Lambda::EventInvokeConfig")
    assert invoke_config["Properties"]["MaximumRetryAttempts"] == 0


def test_a_sweep_that_never_runs_lands_in_the_dead_letter_queue(
    default_app: Synthesized,
) -> None:
    """Throttled (another sweep holds the one reserved unit) past its age, or failed."""
    queue_id = default_app.only("AWS::SQS::Queue")[0]
    queue_arn = {"Fn::GetAtt": [queue_id, "Arn"]}
    _, invoke_config = default_app.only("AWS::Lambda::EventInvokeConfig")
    assert invoke_config["Properties"]["MaximumEventAgeInSeconds"] == 3600
    assert _function(default_app)["DeadLetterConfig"] == {"TargetArn": queue_arn}
    sends = [s for s in _sweeper_policy(default_app) if "sqs:SendMessage" in actions_of(s)]
    assert [(actions_of(s), s["Resource"]) for s in sends] == [(["sqs:SendMessage"], queue_arn)]


def test_dead_letter_queue_is_encrypted_and_tls_only(default_app: Synthesized) -> None:
    queue_id, queue = default_app.only("AWS::SQS::Queue")
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 86400
    policy = default_app.only("AWS::SQS::QueuePolicy")[1]["Properties"]
    assert policy["Queues"] == [{"Ref": queue_id}]
    [deny] = statements(policy["PolicyDocument"])
    assert deny["Effect"] == "Deny" and deny["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }


def _asset(app: Synthesized, code: dict[str, Any]) -> Path:
    staged = app.outdir / f"asset.{code['S3Key'].removesuffix('.zip')}"
    assert staged.is_dir(), staged
    return staged


def test_code_asset_is_the_lambda_folder(default_app: Synthesized) -> None:
    staged = _asset(default_app, _function(default_app)["Code"])
    assert (staged / "ecr_sweeper" / "handlers" / "sweeper.py").is_file()
    assert sorted(path.name for path in staged.iterdir()) == ["ecr_sweeper"]
    assert len([path for path in default_app.outdir.glob("asset.*") if path.is_dir()]) == 2


def test_sdk_layer_is_the_pinned_sdk_and_comes_after_powertools(
    default_app: Synthesized, project_root: Path
) -> None:
    layer_id, layer = default_app.only("AWS::Lambda::LayerVersion")
    assert _function(default_app)["Layers"][1:] == [{"Ref": layer_id}], "last: it wins in /opt"
    properties = layer["Properties"]
    assert properties["CompatibleRuntimes"] == ["python3.12"]
    assert properties["CompatibleArchitectures"] == ["arm64"]
    assert "boto3==1.44.8, botocore==1.44.8" in properties["Description"]
    staged = _asset(default_app, properties["Content"])
    assert sorted(path.name for path in staged.iterdir()) == ["python"]
    packages = {path.name for path in (staged / "python").iterdir()}
    assert {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3"} <= packages
    assert not any(path.suffix in (".so", ".pyc") for path in staged.rglob("*")), "pure Python"
    assert not (staged / "python" / "aws_lambda_powertools").exists()


def test_synth_without_the_sdk_layer_says_to_run_make_install(tmp_path: Path) -> None:
    from infra.function import SdkLayerMissing, sdk_layer_code

    with pytest.raises(SdkLayerMissing, match=r"missing or incomplete: run `make install`"):
        sdk_layer_code(tmp_path / "sdk-layer")


def test_code_asset_leaves_out_bytecode_and_build_metadata(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "pkg" / "__pycache__").mkdir(parents=True)
    (source / "pkg" / "mod.py").write_text("x = 1\n", encoding="utf-8")
    (source / "pkg" / "__pycache__" / "mod.cpython-312.pyc").write_bytes(b"\0")
    (source / "pkg" / "stray.pyc").write_bytes(b"\0")
    (source / "pkg.egg-info").mkdir()
    (source / "pkg.egg-info" / "PKG-INFO").write_text("Name: pkg\n", encoding="utf-8")
    outdir = tmp_path / "out"
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "Asset")
    lambda_.Function(stack, "F", runtime=RUNTIME, handler="pkg.mod.x", code=sweeper_code(source))
    app.synth()
    [staged] = [path for path in outdir.glob("asset.*") if path.is_dir()]
    shipped = sorted(str(p.relative_to(staged)) for p in staged.rglob("*"))
    assert shipped == ["pkg", "pkg/mod.py"]


@pytest.mark.parametrize("fixture", ["default_app", "custom_app"])
def test_settings_reach_the_function_unchanged(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    app: Synthesized = request.getfixturevalue(fixture)
    overrides = CUSTOM_SETTINGS if fixture == "custom_app" else {}
    expected = settings_from_context({**cdk_json_context(), **overrides})
    environment = _function(app)["Environment"]["Variables"]
    assert Settings.from_json(environment["SWEEPER_SETTINGS"]) == expected
    assert environment["POWERTOOLS_SERVICE_NAME"] == metrics_catalog.SERVICE
    assert environment["POWERTOOLS_METRICS_NAMESPACE"] == expected.metrics_namespace
    assert environment["POWERTOOLS_LOG_LEVEL"] == expected.log_level
    assert set(environment) == {
        "SWEEPER_SETTINGS",
        "SWEEPER_STATE_PARAMETER",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
    }
    (cursor,) = app.resources("AWS::SSM::Parameter")
    assert environment["SWEEPER_STATE_PARAMETER"] == {"Ref": cursor}


def test_custom_settings_really_differ_from_the_defaults(custom_app: Synthesized) -> None:
    """Guards the pass-through tests: each custom value must differ from the default."""
    defaults = Settings()
    for field in ("keep_tagged_images", "schedule_timezone", "log_retention_days", "log_level"):
        assert getattr(custom_app.settings, field) != getattr(defaults, field), field
    assert custom_app.settings.log_level == "DEBUG"


def test_powertools_layer_is_the_installed_version_by_ssm_dynamic_reference(
    default_app: Synthesized, project_root: Path
) -> None:
    assert _function(default_app)["Layers"][0] == (
        f"{{{{resolve:ssm:/aws/service/powertools/python/arm64/python3.12/{POWERTOOLS_VERSION}}}}}"
    )
    pinned = re.search(
        r"^aws-lambda-powertools(\[[a-z,]+\])?==(\S+)$",
        (project_root / "requirements.txt").read_text(encoding="utf-8"),
        re.MULTILINE,
    )
    assert pinned is not None
    assert pinned.group(2) == POWERTOOLS_VERSION == "3.37.0"


def test_template_is_environment_agnostic(default_app: Synthesized) -> None:
    assert cdk.Token.is_unresolved(default_app.stack.account)
    assert cdk.Token.is_unresolved(default_app.stack.region)
    text = json.dumps(default_app.template)
    assert not re.search(r"\b\d{12}\b", text), "no account id may be baked in"
    assert not re.search(r"\b(us|eu|ap|sa|ca|me|af)-[a-z]+-\d\b", text), "no region baked in"


# Logs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fixture", "days"), [("default_app", 90), ("custom_app", 30)])
def test_explicit_log_group_with_retention_is_the_functions(
    fixture: str, days: int, request: pytest.FixtureRequest
) -> None:
    app: Synthesized = request.getfixturevalue(fixture)
    group_id, group = app.only("AWS::Logs::LogGroup")
    assert group["Properties"]["RetentionInDays"] == days
    assert group["DeletionPolicy"] == "Retain"
    assert group["UpdateReplacePolicy"] == "Retain"
    assert _function(app)["LoggingConfig"] == {"LogGroup": {"Ref": group_id}}


def test_every_allowed_retention_setting_maps_to_that_many_days() -> None:
    stack = cdk.Stack(cdk.App(), "Retention")
    for days in LOG_RETENTION_DAYS:
        logs.LogGroup(stack, f"Days{days}", retention=retention_for(days))
    synthesized = Template.from_stack(stack).find_resources("AWS::Logs::LogGroup")
    assert sorted(r["Properties"]["RetentionInDays"] for r in synthesized.values()) == sorted(
        LOG_RETENTION_DAYS
    )


# IAM ------------------------------------------------------------------------------------------


def _partition_arn(*parts: str) -> dict[str, Any]:
    """The Fn::Join CDK renders for arn:<partition>:<service>:<region>:<account>:<resource>."""
    service, resource = parts
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                f":{service}:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":{resource}",
            ],
        ]
    }


ECR_ACTIONS = {*permissions.ECR_REPOSITORY_ACTIONS, *permissions.ECR_REGISTRY_ACTIONS}
CURSOR_ACTIONS = set(permissions.SSM_CURSOR_ACTIONS)


def test_sweeper_role_has_exactly_the_actions_the_code_needs(default_app: Synthesized) -> None:
    settings = default_app.settings
    assert settings.protect_ecs_images and settings.protect_lambda_images
    assert settings.protect_scheduled_task_images and settings.protect_batch_images
    assert settings.protect_previous_task_definitions == 1
    granted = {action for s in _sweeper_policy(default_app) for action in actions_of(s)}
    in_use = {
        *permissions.ECS_ACTIONS,
        *permissions.ECS_ROLLBACK_ACTIONS,
        *permissions.ECS_TASK_DEFINITION_ACTIONS,
        *permissions.EVENTS_ACTIONS,
        *permissions.SCHEDULER_ACTIONS,
        *permissions.BATCH_ACTIONS,
        *permissions.LAMBDA_ACTIONS,
        *permissions.SAGEMAKER_ACTIONS,
        *permissions.CODEBUILD_ACTIONS,
        *permissions.EKS_ACTIONS,
    }
    assert granted == (
        ECR_ACTIONS | in_use | LOG_ACTIONS | XRAY_ACTIONS | CURSOR_ACTIONS | DLQ_ACTIONS
    )
    assert "ecr:BatchDeleteImage" in granted


def test_the_cursor_is_read_and_written_on_its_own_parameter_only(default_app: Synthesized) -> None:
    (cursor,) = default_app.resources("AWS::SSM::Parameter")
    statements = {s.get("Sid"): s for s in _sweeper_policy(default_app)}
    assert set(actions_of(statements["RunCursor"])) == CURSOR_ACTIONS
    resource = json.dumps(statements["RunCursor"]["Resource"])
    assert cursor in resource and "*" not in resource
    writes = [s for s in statements.values() if "ssm:PutParameter" in actions_of(s)]
    assert writes == [statements["RunCursor"]]
    _, parameter = default_app.only("AWS::SSM::Parameter")
    description = parameter["Properties"]["Description"]
    assert "repository" in description and "target" in description, "it holds both cursors"


def test_grants_follow_the_in_use_and_extra_reference_settings(custom_app: Synthesized) -> None:
    statements_by_sid = {s.get("Sid"): s for s in _sweeper_policy(custom_app)}
    granted = {action for s in _sweeper_policy(custom_app) for action in actions_of(s)}
    extra = set(permissions.SSM_EXTRA_REFERENCES_ACTIONS)
    assert granted == (
        ECR_ACTIONS | LOG_ACTIONS | XRAY_ACTIONS | DLQ_ACTIONS | extra | CURSOR_ACTIONS
    )
    assert statements_by_sid["ReadExtraReferences"]["Resource"] == _partition_arn(
        "ssm", "parameter/platform/ecr-sweeper/extra-images"
    )


@pytest.mark.parametrize(
    ("overrides", "present", "absent"),
    [
        (
            {"protectEcsImages": False},
            permissions.ECS_TASK_DEFINITION_ACTIONS,  # scheduled tasks still describe theirs
            ("ecs:ListClusters", *permissions.ECS_ROLLBACK_ACTIONS),
        ),
        (
            {"protectPreviousTaskDefinitions": 0},
            permissions.ECS_ACTIONS,
            permissions.ECS_ROLLBACK_ACTIONS,
        ),
        (
            {"protectScheduledTaskImages": False},
            permissions.BATCH_ACTIONS,
            (*permissions.EVENTS_ACTIONS, *permissions.SCHEDULER_ACTIONS),
        ),
        (
            {"protectBatchImages": "false"},
            permissions.SCHEDULER_ACTIONS,
            permissions.BATCH_ACTIONS,
        ),
        (
            {"protectSageMakerImages": "false"},
            permissions.CODEBUILD_ACTIONS,
            permissions.SAGEMAKER_ACTIONS,
        ),
        (
            {"protectCodeBuildImages": False},
            permissions.EKS_ACTIONS,
            permissions.CODEBUILD_ACTIONS,
        ),
        (
            {"eksClusters": "[]"},
            permissions.SAGEMAKER_ACTIONS,
            permissions.EKS_ACTIONS,
        ),
    ],
)
def test_each_in_use_source_setting_adds_and_removes_its_grants(
    overrides: dict[str, Any], present: tuple[str, ...], absent: tuple[str, ...]
) -> None:
    _, stack = build_app({**cdk_json_context(), **overrides})
    granted = {action for grant in stack.sweeper.grants for action in grant.actions}
    assert set(present) <= granted
    assert not set(absent) & granted


def test_scheduled_task_and_schedule_reads_are_scoped_to_rules_and_schedules(
    default_app: Synthesized,
) -> None:
    by_sid = {s.get("Sid"): s for s in _sweeper_policy(default_app)}
    assert by_sid["ReadEventRuleTargets"]["Resource"] == _partition_arn("events", "rule/*")
    assert by_sid["GetSchedules"]["Resource"] == _partition_arn("scheduler", "schedule/*")


def test_extra_references_in_s3_grant_that_object_only() -> None:
    _, stack = build_app(
        {**cdk_json_context(), "extraImageReferences": "s3://platform-config/ecr/keep.json"}
    )
    [grant] = [g for g in stack.sweeper.grants if g.sid == "ReadExtraReferences"]
    assert grant.actions == permissions.S3_EXTRA_REFERENCES_ACTIONS
    object_arn = ["arn:", {"Ref": "AWS::Partition"}, ":s3:::platform-config/ecr/keep.json"]
    assert [stack.resolve(r) for r in grant.resources] == [{"Fn::Join": ["", object_arn]}]


def test_exclusions_and_the_skip_tag_are_enforced_by_iam_too() -> None:
    """With excludeRepositories team/prod-*, the role can't delete (or put a policy) there, nor
    in any repository tagged ecr-sweeper:skip=true; it may touch only the included ones."""
    _, stack = build_app(
        {
            **cdk_json_context(),
            "includeRepositories": '["team/*","infra/base"]',
            "excludeRepositories": '["team/prod-*"]',
            "nativeLifecyclePolicy": NATIVE_POLICY,
        }
    )
    by_sid = {s.get("Sid"): s for s in _statements_of(stack, stack.sweeper.role)}
    included = [
        _partition_arn("ecr", "repository/team/*"),
        _partition_arn("ecr", "repository/infra/base"),
    ]
    for sid in ("SweepRepositories", "EnforceLifecyclePolicies"):
        assert by_sid[sid]["Effect"] == "Allow" and by_sid[sid]["Resource"] == included
    writes = ["ecr:BatchDeleteImage", "ecr:PutLifecyclePolicy"]
    excluded = by_sid["NeverWriteExcludedRepositories"]
    assert excluded["Effect"] == "Deny" and sorted(actions_of(excluded)) == writes
    assert excluded["Resource"] == _partition_arn("ecr", "repository/team/prod-*")
    skipped = by_sid["NeverWriteSkippedRepositories"]
    assert skipped["Effect"] == "Deny" and sorted(actions_of(skipped)) == writes
    assert skipped["Resource"] == _partition_arn("ecr", "repository/*")
    assert skipped["Condition"] == {
        "StringEqualsIgnoreCase": {"aws:ResourceTag/ecr-sweeper:skip": "true"}
    }


def test_a_run_that_sweeps_no_images_may_not_delete_any() -> None:
    policy = NATIVE_POLICY
    _, stack = build_app(
        {**cdk_json_context(), "sweepImages": False, "nativeLifecyclePolicy": policy}
    )
    granted = {
        a for s in _statements_of(stack, stack.sweeper.role) if s["Effect"] == "Allow"
        for a in actions_of(s)
    }  # fmt: skip
    assert not {"ecr:BatchDeleteImage", "ecr:UpdateImageStorageClass"} & granted
    assert {"ecr:ListTagsForResource", "ecr:PutLifecyclePolicy"} <= granted
    # Reads, to check the policy against what the sweep keeps before writing it:
    assert {"ecr:DescribeImages", "ecr:BatchGetImage"} <= granted


def _statements_of(stack: Any, role: Any) -> list[dict[str, Any]]:
    policy = role.node.find_child("DefaultPolicy")
    document: dict[str, Any] = stack.resolve(policy.document.to_json())
    return statements(document)


def test_the_extra_references_object_is_read_from_this_accounts_bucket_only() -> None:
    _, stack = build_app(
        {**cdk_json_context(), "extraImageReferences": "s3://platform-config/ecr/keep.json"}
    )
    by_sid = {s.get("Sid"): s for s in _statements_of(stack, stack.sweeper.role)}
    assert by_sid["ReadExtraReferences"]["Condition"] == {
        "StringEquals": {"s3:ResourceAccount": {"Ref": "AWS::AccountId"}}
    }


def test_every_role_gets_the_permissions_boundary(tmp_path: Path) -> None:
    from helpers.infra import synthesize

    boundary = "arn:aws:iam::123456789012:policy/ecr-sweeper-boundary"
    app = synthesize({"fanOut": True, "permissionsBoundaryArn": boundary}, tmp_path)
    roles = app.resources("AWS::IAM::Role")
    assert len(roles) >= 6, "the sweeper's, the fan-out's four and the schedule's"
    for role_id, role in roles.items():
        assert role["Properties"]["PermissionsBoundary"] == boundary, role_id


def test_no_permissions_boundary_unless_set(default_app: Synthesized) -> None:
    for role in default_app.resources("AWS::IAM::Role").values():
        assert "PermissionsBoundary" not in role["Properties"]


KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_the_kms_key_setting_grants_decrypt_on_exactly_that_key(tmp_path: Path) -> None:
    from helpers.infra import synthesize

    app = synthesize(
        {
            "extraImageReferences": "ssm:/platform/ecr-sweeper/extra-images",
            "extraImageReferencesKmsKeyArn": KEY_ARN,
        },
        tmp_path,
    )
    by_sid = {s.get("Sid"): s for s in _sweeper_policy(app)}
    assert by_sid["DecryptExtraReferences"]["Action"] == "kms:Decrypt"
    assert by_sid["DecryptExtraReferences"]["Resource"] == KEY_ARN
    # Only when SSM decrypts the parameter, in the key's region: never a direct kms:Decrypt.
    assert by_sid["DecryptExtraReferences"]["Condition"] == {
        "StringEquals": {"kms:ViaService": "ssm.eu-west-1.amazonaws.com"}
    }
    kms = [a for s in _sweeper_policy(app) for a in actions_of(s) if a.startswith("kms:")]
    assert kms == ["kms:Decrypt"]


def test_no_kms_grant_without_the_setting(
    default_app: Synthesized, custom_app: Synthesized
) -> None:
    for app in (default_app, custom_app):
        for _, document in policy_documents(app.template):
            for statement in statements(document):
                assert not [a for a in actions_of(statement) if a.startswith("kms:")]


def test_each_grant_is_scoped_to_its_resource(default_app: Synthesized) -> None:
    group_id = default_app.only("AWS::Logs::LogGroup")[0]
    by_sid = {s.get("Sid"): s for s in _sweeper_policy(default_app)}
    denies = {sid for sid, s in by_sid.items() if s["Effect"] == "Deny"}
    assert denies == {"NeverWriteSkippedRepositories"}, "nothing excluded by default"
    assert all("Condition" not in s for sid, s in by_sid.items() if sid not in denies)
    assert by_sid["WriteOwnLogs"]["Resource"] == {"Fn::GetAtt": [group_id, "Arn"]}
    assert set(actions_of(by_sid["SweepRepositories"])) == set(permissions.ECR_REPOSITORY_ACTIONS)
    assert by_sid["SweepRepositories"]["Resource"] == _partition_arn("ecr", "repository/*")
    assert actions_of(by_sid["ListRepositories"]) == list(permissions.ECR_REGISTRY_ACTIONS)
    assert by_sid["ListRepositories"]["Resource"] == _partition_arn("ecr", "repository/*")
    ecs = by_sid["DescribeEcsTasksAndServices"]["Resource"]
    assert sorted(ecs, key=json.dumps) == sorted(
        [_partition_arn("ecs", "task/*"), _partition_arn("ecs", "service/*")], key=json.dumps
    )
    assert by_sid["GetFunctions"]["Resource"] == _partition_arn("lambda", "function:*")


def test_only_actions_without_resource_types_are_granted_on_star(
    default_app: Synthesized,
) -> None:
    """Checked against cfn-lint's copy of the IAM service authorization reference, so an action
    added to ecr_sweeper.aws.permissions later can't slip onto Resource '*' unnoticed."""
    reference = json.loads(
        (Path(cfnlint.__file__).parent / "data/AdditionalSpecs/Policies.json").read_text()
    )

    def resource_types(action: str) -> set[str]:
        service, name = action.split(":")
        found: dict[str, Any] = reference[service]["Actions"][name.lower()]
        return set(found.get("Resources", []))

    on_star = {
        action
        for s in _sweeper_policy(default_app)
        if "*" in as_list(s["Resource"])
        for action in actions_of(s)
    }
    assert on_star == UNSCOPED_ACTIONS & {
        action for s in _sweeper_policy(default_app) for action in actions_of(s)
    }
    for action in on_star:
        # ListTasks names only container instances, which Fargate tasks don't have.
        assert resource_types(action) <= {"container-instance"}, action
    for s in _sweeper_policy(default_app):
        if "*" not in as_list(s["Resource"]):
            for action in actions_of(s):
                assert resource_types(action), f"{action} has no resource type; scoping is moot"


def test_no_wildcard_action_and_no_managed_policy_anywhere(default_app: Synthesized) -> None:
    documents = list(policy_documents(default_app.template))
    assert len(documents) >= 5, "roles, their policies and the topic policy must all be walked"
    for where, document in documents:
        for statement in statements(document):
            for action in actions_of(statement):
                assert "*" not in action, f"{where}: wildcard action {action!r}"
    for role_id, role in default_app.resources("AWS::IAM::Role").items():
        assert "ManagedPolicyArns" not in role["Properties"], role_id


def test_sweeper_role_is_assumable_by_lambda_only(default_app: Synthesized) -> None:
    role_id = default_app.logical_id(default_app.stack.sweeper.role)
    trust = default_app.template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]
    assert [s["Principal"] for s in statements(trust)] == [{"Service": "lambda.amazonaws.com"}]


# Schedule -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "expression", "timezone"),
    [
        ("default_app", "cron(0 3 * * ? *)", "UTC"),
        ("custom_app", "cron(30 1 * * ? *)", "Europe/Berlin"),
    ],
)
def test_schedule_follows_settings_and_invokes_the_function(
    fixture: str, expression: str, timezone: str, request: pytest.FixtureRequest
) -> None:
    app: Synthesized = request.getfixturevalue(fixture)
    function_id = app.logical_id(app.stack.sweeper.function)
    properties = app.only("AWS::Scheduler::Schedule")[1]["Properties"]
    assert properties["ScheduleExpression"] == expression
    assert properties["ScheduleExpressionTimezone"] == timezone
    assert properties["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert properties["State"] == "ENABLED"
    target = properties["Target"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert json.loads(target["Input"]) == {}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}
    queue_id = app.only("AWS::SQS::Queue")[0]
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}


def test_scheduler_role_may_only_invoke_the_function_and_dead_letter(
    default_app: Synthesized,
) -> None:
    role_id = default_app.logical_id(default_app.stack.schedule.role)
    function_id = default_app.logical_id(default_app.stack.sweeper.function)
    queue_id = default_app.only("AWS::SQS::Queue")[0]
    role = default_app.template["Resources"][role_id]["Properties"]
    [trust] = statements(role["AssumeRolePolicyDocument"])
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    granted = [
        statement
        for resource in default_app.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in resource["Properties"]["Roles"]
        for statement in statements(resource["Properties"]["PolicyDocument"])
    ]
    assert [(actions_of(s), as_list(s["Resource"])) for s in granted] == [
        (["lambda:InvokeFunction"], [{"Fn::GetAtt": [function_id, "Arn"]}]),
        (["sqs:SendMessage"], [{"Fn::GetAtt": [queue_id, "Arn"]}]),
    ]


# Alarms ---------------------------------------------------------------------------------------


def _alarms(app: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        logical_id.removeprefix("Monitoring")[:-8]: alarm["Properties"]
        for logical_id, alarm in app.resources("AWS::CloudWatch::Alarm").items()
    }


def _period(alarm: dict[str, Any]) -> int:
    if "Period" in alarm:
        return int(alarm["Period"])
    [query] = alarm["Metrics"]
    return int(query["MetricStat"]["Period"])


def test_nine_alarms_with_their_thresholds(default_app: Synthesized) -> None:
    alarms = _alarms(default_app)
    assert set(alarms) == {
        "FunctionErrors",
        "DeleteFailures",
        "FailedRepositories",
        "UnfinishedRepositories",
        "NoRecentRun",
        "DurationNearTimeout",
        "FailedSweeps",
        "GuardHeld",
        "CursorFailures",
    }
    shape = {
        name: (a["ComparisonOperator"], a["Threshold"], a["TreatMissingData"])
        for name, a in alarms.items()
    }
    assert shape == {
        "FunctionErrors": ("GreaterThanOrEqualToThreshold", 1, "notBreaching"),
        "DeleteFailures": ("GreaterThanThreshold", 0, "notBreaching"),
        "FailedRepositories": ("GreaterThanThreshold", 0, "notBreaching"),
        "UnfinishedRepositories": ("GreaterThanThreshold", 0, "notBreaching"),
        "NoRecentRun": ("LessThanThreshold", 1, "breaching"),
        "DurationNearTimeout": ("GreaterThanThreshold", 0.8 * 900 * 1000, "notBreaching"),
        "FailedSweeps": ("GreaterThanThreshold", 0, "notBreaching"),
        "GuardHeld": ("GreaterThanThreshold", 0, "notBreaching"),
        "CursorFailures": ("GreaterThanThreshold", 0, "notBreaching"),
    }
    failed_sweeps = alarms["FailedSweeps"]
    queue_id = default_app.only("AWS::SQS::Queue")[0]
    assert (failed_sweeps["Namespace"], failed_sweeps["MetricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert failed_sweeps["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}
    ]
    assert (failed_sweeps["Statistic"], failed_sweeps["Period"]) == ("Maximum", 300)
    assert alarms["FunctionErrors"]["MetricName"] == "Errors"
    assert alarms["DurationNearTimeout"]["MetricName"] == "Duration"
    assert alarms["DurationNearTimeout"]["Statistic"] == "Maximum"


def test_duration_alarm_tracks_the_configured_timeout(custom_app: Synthesized) -> None:
    assert _alarms(custom_app)["DurationNearTimeout"]["Threshold"] == 0.8 * 600 * 1000


def test_missed_run_alarm_needs_26_empty_hours(default_app: Synthesized) -> None:
    alarm = _alarms(default_app)["NoRecentRun"]
    [query] = alarm["Metrics"]
    stat = query["MetricStat"]
    assert stat["Metric"]["MetricName"] == metrics_catalog.RUN_COMPLETED
    assert (stat["Period"], stat["Stat"]) == (3600, "Sum")
    # Alarm only when every one of the last 26 hourly datapoints is below 1 or missing.
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 26
    assert stat["Period"] * alarm["EvaluationPeriods"] == 26 * 3600


def test_alarm_windows_are_within_cloudwatch_limits(default_app: Synthesized) -> None:
    for name, alarm in _alarms(default_app).items():
        period = _period(alarm)
        window = period * alarm["EvaluationPeriods"]
        limit = 86_400 if period < 3600 else 7 * 86_400
        assert window <= limit, name
        assert alarm.get("DatapointsToAlarm", 1) <= alarm["EvaluationPeriods"]


def test_custom_metric_alarms_read_live_runs_only(custom_app: Synthesized) -> None:
    alarms = _alarms(custom_app)
    for name in ("DeleteFailures", "FailedRepositories", "NoRecentRun"):
        [query] = alarms[name]["Metrics"]
        metric = query["MetricStat"]["Metric"]
        assert metric["Namespace"] == "Platform/EcrSweeper"
        assert {d["Name"]: d["Value"] for d in metric["Dimensions"]} == {
            "service": metrics_catalog.SERVICE,
            metrics_catalog.MODE_DIMENSION: metrics_catalog.MODE_LIVE,
        }
    assert alarms["DeleteFailures"]["Metrics"][0]["MetricStat"]["Metric"]["MetricName"] == (
        metrics_catalog.DELETE_FAILURES
    )
    assert alarms["FailedRepositories"]["Metrics"][0]["MetricStat"]["Metric"]["MetricName"] == (
        metrics_catalog.FAILED_REPOSITORIES
    )


def test_every_alarm_notifies_the_topic(default_app: Synthesized) -> None:
    topic_id = default_app.only("AWS::SNS::Topic")[0]
    for name, alarm in _alarms(default_app).items():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}], name
        assert alarm["OKActions"] == [{"Ref": topic_id}], name
        assert alarm["AlarmDescription"], name


# Topic ----------------------------------------------------------------------------------------


def test_topic_requires_tls_and_lets_this_accounts_alarms_publish(
    default_app: Synthesized,
) -> None:
    topic_id = default_app.only("AWS::SNS::Topic")[0]
    policy = default_app.only("AWS::SNS::TopicPolicy")[1]["Properties"]
    assert policy["Topics"] == [{"Ref": topic_id}]
    by_effect = {s["Effect"]: s for s in statements(policy["PolicyDocument"])}
    assert by_effect["Deny"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    allow = by_effect["Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_email_subscription_only_when_an_address_is_set(
    default_app: Synthesized, custom_app: Synthesized
) -> None:
    assert default_app.settings.alarm_email is None
    assert default_app.resources("AWS::SNS::Subscription") == {}
    Template.from_json(custom_app.template).has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "Protocol": "email",
            "Endpoint": "platform-oncall@example.com",
            "TopicArn": {"Ref": Match.any_value()},
        },
    )
    assert len(custom_app.resources("AWS::SNS::Subscription")) == 1
