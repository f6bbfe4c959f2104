"""The stack grants exactly the API actions a sweep calls: nothing missing, nothing spare."""

from __future__ import annotations

import json
import logging
import random
from typing import Any

import pytest
from sweep_helpers import push

from ecr_sweeper.aws import AwsTarget
from ecr_sweeper.engine import sweeper_for
from ecr_sweeper.settings import Settings
from infra import synthesized_template
from infra.config import cdk_json_context
from local_ecr import LocalEcr
from local_ecr.manifests import SPDX_JSON, ManifestFactory

RUNTIME_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
"""Granted for Lambda's own tracing and logging, not called by the sweeper's code."""


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


def busy_registry(local_ecr: LocalEcr, extra: str) -> None:
    """Everything a sweep reads: tags, indexes, referrers, ECS, Lambda, extra references."""
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
    definition = ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "web", "image": "app:v2", "memory": 64}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.run_task(cluster="prod", taskDefinition=definition, launchType="FARGATE")
    ecs.create_service(cluster="prod", serviceName="web", taskDefinition=definition, desiredCount=1)
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


@pytest.mark.parametrize("extra", ["s3://refs/in-use.json", "ssm:/refs/in-use"])
def test_every_call_of_a_live_sweep_is_granted_and_every_grant_is_used(
    local_ecr: LocalEcr, extra: str
) -> None:
    busy_registry(local_ecr, extra)
    # The last run ran out of time at "app": this one reads the cursor and clears it.
    cursor = json.dumps({"resumeFrom": "app"})
    local_ecr.client("ssm").put_parameter(Name="/sweeper/cursor", Value=cursor, Type="String")
    local_ecr.reset_counters()
    settings = Settings(keep_tagged_images=1, extra_image_references=extra)
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

    called = {
        f"{service}:{operation}"
        for service, operations in local_ecr.counter.by_service().items()
        for operation in operations
    }
    template = synthesized_template({**cdk_json_context(), "extraImageReferences": extra})
    granted = granted_actions(template)
    assert called <= granted, f"called but not granted: {sorted(called - granted)}"
    assert granted <= called, f"granted but never called: {sorted(granted - called)}"


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

    called = {
        f"{service}:{operation}"
        for service, operations in local_ecr.counter.by_service().items()
        for operation in operations
    }
    assert {"ecr:GetLifecyclePolicy", "ecr:PutLifecyclePolicy"} <= called
    context = {
        **cdk_json_context(),
        "extraImageReferences": extra,
        "nativeLifecyclePolicy": NATIVE_POLICY,
    }
    granted = granted_actions(synthesized_template(context))
    assert called <= granted, f"called but not granted: {sorted(called - granted)}"
    assert granted <= called, f"granted but never called: {sorted(granted - called)}"
