"""The stack grants exactly the API actions a sweep calls: nothing missing, nothing spare."""

from __future__ import annotations

import json
import logging
import random
from typing import Any

import pytest
from helpers.sweep import push

from ecr_sweeper.aws.clients import AwsTarget
from ecr_sweeper.core.settings import Settings
from ecr_sweeper.sweep.engine import sweeper_for
from infra import synthesized_template
from infra.config import cdk_json_context
from local_ecr import LocalEcr
from local_ecr.manifests import SPDX_JSON, ManifestFactory

RUNTIME_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "sqs:SendMessage"}
"""Granted for Lambda's own tracing, and for Lambda to put an invocation that never ran in the
dead-letter queue; not called by the sweeper's code."""

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ON_ITS_BEHALF = {"kms:Decrypt"}
"""Called by S3 or SSM on the function's behalf to decrypt the extra references document."""


def granted_actions(template: dict[str, Any]) -> set[str]:
    """Actions of the policies attached to the sweeper function's role."""
    resources = template["Resources"].values()
    (function,) = [r for r in resources if r["Type"] == "AWS::Lambda::Function"]
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    actions: set[str] = set()
    for resource in resources:
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        if {"Ref": role} not in resource["Properties"]["Roles"]:
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            listed = statement["Action"]
            actions.update([listed] if isinstance(listed, str) else listed)
    return {a for a in actions if not a.startswith("logs:")} - RUNTIME_ACTIONS


def called_actions(local_ecr: LocalEcr) -> set[str]:
    """Every `service:Operation` the local ECR served since its counters were reset."""
    return {
        f"{service}:{operation}"
        for service, operations in local_ecr.counter.by_service().items()
        for operation in operations
    }


def busy_registry(local_ecr: LocalEcr, extra: str) -> None:
    """Everything a sweep reads: tags, indexes, referrers, ECS (with a rollback target), rules and
    schedules that start tasks, Batch job definitions, Lambda, extra references."""
    make = ManifestFactory(random.Random(21))
    local_ecr.client("ecr").create_repository(
        repositoryName="app", tags=[{"Key": "ecr-sweeper:minimum-age-days", "Value": "0"}]
    )
    child = make.image(oci=True)
    push(local_ecr, "app", child, None, 40)
    index = make.index([(child, "linux/amd64")])
    push(local_ecr, "app", index, "v1", 40)
    image = make.image(oci=True)
    push(local_ecr, "app", image, "v2", 1)
    push(local_ecr, "app", make.referrer(image, SPDX_JSON), None, 1)
    push(local_ecr, "app", make.image(compact=True), None, 9)
    ecs = local_ecr.client("ecs")
    ecs.create_cluster(clusterName="prod")
    containers = [{"name": "web", "image": "app:v2", "memory": 64}]
    ecs.register_task_definition(family="web", containerDefinitions=containers)  # rollback target
    definition = ecs.register_task_definition(family="web", containerDefinitions=containers)[
        "taskDefinition"
    ]["taskDefinitionArn"]
    ecs.run_task(cluster="prod", taskDefinition=definition, launchType="FARGATE")
    ecs.create_service(cluster="prod", serviceName="web", taskDefinition=definition, desiredCount=1)
    job = ecs.register_task_definition(family="job", containerDefinitions=containers)[
        "taskDefinition"
    ]["taskDefinitionArn"]
    target = {
        "Arn": "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
        "RoleArn": "arn:aws:iam::123456789012:role/start-tasks",
        "EcsParameters": {"TaskDefinitionArn": job},
    }
    events = local_ecr.client("events")
    events.put_rule(Name="nightly-job", ScheduleExpression="cron(0 2 * * ? *)")
    events.put_targets(Rule="nightly-job", Targets=[{"Id": "job", **target}])
    local_ecr.client("scheduler").create_schedule(
        Name="nightly",
        ScheduleExpression="cron(0 2 * * ? *)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=target,
    )
    local_ecr.client("batch").register_job_definition(
        jobDefinitionName="etl",
        type="container",
        containerProperties={"image": "app:v2", "vcpus": 1, "memory": 128},
    )
    role = local_ecr.client("iam").create_role(
        RoleName="fn",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    local_ecr.client("lambda").create_function(
        FunctionName="fn",
        Role=role,
        PackageType="Image",
        Code={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v2"},
    )
    document = json.dumps({"images": []})
    if extra.startswith("s3://"):
        local_ecr.client("s3").create_bucket(Bucket="refs")
        local_ecr.client("s3").put_object(Bucket="refs", Key="in-use.json", Body=document.encode())
    else:
        local_ecr.client("ssm").put_parameter(Name="/refs/in-use", Value=document, Type="String")


@pytest.mark.parametrize(
    ("extra", "key"),
    [("s3://refs/in-use.json", None), ("ssm:/refs/in-use", None), ("ssm:/refs/in-use", KEY_ARN)],
)
def test_every_call_of_a_live_sweep_is_granted_and_every_grant_is_used(
    local_ecr: LocalEcr, extra: str, key: str | None
) -> None:
    busy_registry(local_ecr, extra)
    # The last run ran out of time at "app": this one reads the cursor and clears it.
    cursor = json.dumps({"resumeFrom": "app"})
    local_ecr.client("ssm").put_parameter(Name="/sweeper/cursor", Value=cursor, Type="String")
    local_ecr.reset_counters()
    settings = Settings(
        keep_tagged_images=1, extra_image_references=extra, extra_image_references_kms_key_arn=key
    )
    target = AwsTarget(region=local_ecr.region, endpoint_url=local_ecr.endpoint_url)
    summary = sweeper_for(
        target,
        settings,
        logging.getLogger("test"),
        dry_run=False,
        cursor_parameter="/sweeper/cursor",
    ).run()
    assert summary.total("images_deleted") == 3 and summary.failures == 0
    assert summary.resumed_from == "app"

    called = called_actions(local_ecr)
    template = synthesized_template(
        {
            **cdk_json_context(),
            "extraImageReferences": extra,
            "extraImageReferencesKmsKeyArn": key,
        }
    )
    granted = granted_actions(template)
    assert called <= granted, f"called but not granted: {sorted(called - granted)}"
    on_its_behalf = ON_ITS_BEHALF if key else set()
    assert granted - called == on_its_behalf, f"granted but never called: {granted - called}"


def test_an_archiving_sweep_calls_exactly_what_its_stack_grants(local_ecr: LocalEcr) -> None:
    extra = "ssm:/refs/in-use"
    busy_registry(local_ecr, extra)
    local_ecr.client("ssm").put_parameter(
        Name="/sweeper/cursor", Value=json.dumps({"resumeFrom": "app"}), Type="String"
    )
    local_ecr.reset_counters()
    settings = Settings(
        keep_tagged_images=1, extra_image_references=extra, expired_image_action="archive"
    )
    target = AwsTarget(region=local_ecr.region, endpoint_url=local_ecr.endpoint_url)
    summary = sweeper_for(
        target,
        settings,
        logging.getLogger("test"),
        dry_run=False,
        cursor_parameter="/sweeper/cursor",
    ).run()
    assert summary.total("images_archived") > 0 and summary.total("images_deleted") == 0
    assert summary.failures == 0
    called = called_actions(local_ecr)
    context = {**cdk_json_context(), "extraImageReferences": extra, "expiredImageAction": "archive"}
    granted = granted_actions(synthesized_template(context))
    assert called <= granted, f"called but not granted: {sorted(called - granted)}"
    assert "ecr:UpdateImageStorageClass" in called, "the archive grant is used"


def test_archiving_is_granted_only_when_expired_images_are_archived() -> None:
    """ecr:UpdateImageStorageClass comes with expiredImageAction=archive, and only with it."""
    default = granted_actions(synthesized_template(cdk_json_context()))
    archiving = granted_actions(
        synthesized_template({**cdk_json_context(), "expiredImageAction": "archive"})
    )
    assert "ecr:UpdateImageStorageClass" not in default
    assert archiving == default | {"ecr:UpdateImageStorageClass"}


NATIVE_POLICY = {
    "rules": [
        {
            "rulePriority": 1,
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 14,
            },
            "action": {"type": "expire"},
        }
    ]
}


def test_with_a_native_policy_the_role_gains_exactly_the_lifecycle_policy_actions(
    local_ecr: LocalEcr,
) -> None:
    extra = "ssm:/refs/in-use"
    busy_registry(local_ecr, extra)
    cursor = json.dumps({"resumeFrom": "app"})  # read, then cleared: the cursor's grant is used
    local_ecr.client("ssm").put_parameter(Name="/sweeper/cursor", Value=cursor, Type="String")
    local_ecr.reset_counters()
    settings = Settings(
        keep_tagged_images=1, extra_image_references=extra, native_lifecycle_policy=NATIVE_POLICY
    )
    target = AwsTarget(region=local_ecr.region, endpoint_url=local_ecr.endpoint_url)
    summary = sweeper_for(
        target,
        settings,
        logging.getLogger("test"),
        dry_run=False,
        cursor_parameter="/sweeper/cursor",
    ).run()
    assert summary.failures == 0
    assert [r.policy_change for r in summary.results] == ["create"]

    called = called_actions(local_ecr)
    assert {"ecr:GetLifecyclePolicy", "ecr:PutLifecyclePolicy"} <= called
    context = {
        **cdk_json_context(),
        "extraImageReferences": extra,
        "nativeLifecyclePolicy": NATIVE_POLICY,
    }
    granted = granted_actions(synthesized_template(context))
    assert called <= granted, f"called but not granted: {sorted(called - granted)}"
    assert granted <= called, f"granted but never called: {sorted(granted - called)}"
