"""The stack grants exactly the API actions a sweep calls: nothing missing, nothing spare."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from helpers.infra import NATIVE_POLICY
from helpers.kubernetes import KubernetesApi, point_cluster, workload
from helpers.sweep import push
from test_sagemaker_codebuild import codebuild_project

from ecr_sweeper.aws.clients import AwsTarget
from ecr_sweeper.aws.ssm import ParameterApprovals
from ecr_sweeper.core.guard import approval_for
from ecr_sweeper.core.settings import Settings
from ecr_sweeper.sweep import fan_out
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


SWEEPER_HANDLER = "ecr_sweeper.handlers.sweeper.lambda_handler"
STATE = "/ecr-sweeper/state"
STEP_HANDLERS = {
    "List": "ecr_sweeper.handlers.fan_out.list_handler",
    "Plan": "ecr_sweeper.handlers.fan_out.plan_handler",
    "Check": "ecr_sweeper.handlers.fan_out.check_handler",
    "Sweep": "ecr_sweeper.handlers.fan_out.sweep_handler",
    "Summarize": "ecr_sweeper.handlers.fan_out.summarize_handler",
}


def granted_actions(template: dict[str, Any], handler: str = SWEEPER_HANDLER) -> set[str]:
    """Actions the policies of the role of the function running `handler` allow."""
    resources = template["Resources"].values()
    (function,) = [
        r
        for r in resources
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["Handler"] == handler
    ]
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    actions: set[str] = set()
    for resource in resources:
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        if {"Ref": role} not in resource["Properties"]["Roles"]:
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            listed = statement["Action"]
            actions.update([listed] if isinstance(listed, str) else listed)
    return {a for a in actions if not a.startswith("logs:")} - RUNTIME_ACTIONS


IAM_ACTION_OF = {"s3:ListObjectsV2": "s3:ListBucket", "s3:CopyObject": "s3:PutObject"}
"""API operations whose IAM action has another name. The local ECR's call counter names a PUT of
an object CopyObject (the two share method and path; only the x-amz-copy-source header, which it
doesn't read, tells them apart), and our code never copies objects."""


def called_actions(local_ecr: LocalEcr) -> set[str]:
    """Every IAM action of what the local ECR served since its counters were reset."""
    return {
        IAM_ACTION_OF.get(f"{service}:{operation}", f"{service}:{operation}")
        for service, operations in local_ecr.counter.by_service().items()
        for operation in operations
    }


@pytest.fixture
def cluster() -> Iterator[KubernetesApi]:
    """The Kubernetes API of the EKS cluster `busy_registry` makes."""
    with KubernetesApi() as api:
        api.state.items["deployments"] = [workload("shop", "web", "app:v2")]
        yield api


def busy_registry(local_ecr: LocalEcr, extra: str, cluster: KubernetesApi) -> None:
    """Everything a sweep reads: tags, indexes, referrers, ECS (with a rollback target), rules and
    schedules that start tasks, Batch job definitions, Lambda, SageMaker models and endpoints,
    CodeBuild projects, an EKS cluster, extra references."""
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
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v2"
    role = local_ecr.client("iam").create_role(
        RoleName="fn",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    local_ecr.client("lambda").create_function(
        FunctionName="fn",
        Role=role,
        PackageType="Image",
        Code={"ImageUri": image},
    )
    sagemaker = local_ecr.client("sagemaker")
    sagemaker.create_model(ModelName="m", ExecutionRoleArn=role, PrimaryContainer={"Image": image})
    sagemaker.create_endpoint_config(
        EndpointConfigName="m",
        ProductionVariants=[{"VariantName": "v", "ModelName": "m", "InstanceType": "ml.m5.large"}],
    )
    sagemaker.create_endpoint(EndpointName="m", EndpointConfigName="m")
    codebuild_project(local_ecr, "build", image, role)
    point_cluster(local_ecr, "prod", cluster)
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
    local_ecr: LocalEcr, extra: str, key: str | None, cluster: KubernetesApi
) -> None:
    busy_registry(local_ecr, extra, cluster)
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


def test_an_archiving_sweep_calls_exactly_what_its_stack_grants(
    local_ecr: LocalEcr, cluster: KubernetesApi
) -> None:
    extra = "ssm:/refs/in-use"
    busy_registry(local_ecr, extra, cluster)
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


def test_with_a_native_policy_the_role_gains_exactly_the_lifecycle_policy_actions(
    local_ecr: LocalEcr, cluster: KubernetesApi
) -> None:
    extra = "ssm:/refs/in-use"
    busy_registry(local_ecr, extra, cluster)
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


def test_a_run_that_sweeps_no_images_is_granted_no_image_action(
    local_ecr: LocalEcr, cluster: KubernetesApi
) -> None:
    """sweepImages false: the role may read tags and put lifecycle policies, and not delete; it
    may read the images, to check a policy against what the sweep keeps before writing it."""
    busy_registry(local_ecr, "ssm:/refs/in-use", cluster)
    local_ecr.client("ssm").put_parameter(Name="/sweeper/cursor", Value="{}", Type="String")
    local_ecr.reset_counters()
    settings = Settings(
        extra_image_references="ssm:/refs/in-use",
        native_lifecycle_policy=NATIVE_POLICY,
        native_lifecycle_policy_force=True,  # it expires the kept index's child: write anyway
        sweep_images=False,
    )
    target = AwsTarget(region=local_ecr.region, endpoint_url=local_ecr.endpoint_url)
    summary = sweeper_for(
        target,
        settings,
        logging.getLogger("test"),
        dry_run=False,
        cursor_parameter="/sweeper/cursor",
    ).run()
    assert summary.failures == 0 and summary.total("images_deleted") == 0
    called = called_actions(local_ecr)
    context = {
        **cdk_json_context(),
        "extraImageReferences": "ssm:/refs/in-use",
        "nativeLifecyclePolicy": NATIVE_POLICY,
        "nativeLifecyclePolicyForce": True,
        "sweepImages": False,
    }
    granted = granted_actions(synthesized_template(context))
    assert "ecr:BatchDeleteImage" not in granted and "ecr:UpdateImageStorageClass" not in granted
    assert "ecr:DescribeImages" in called, "the policy was checked before it was written"
    assert called <= granted, f"called but not granted: {sorted(called - granted)}"
    # The cursor is written only when a run ran out of time.
    assert granted - called == {"ssm:PutParameter"}, sorted(granted - called)


@pytest.mark.parametrize("key", [None, KEY_ARN])
def test_each_fan_out_step_is_granted_exactly_what_it_calls(
    local_ecr: LocalEcr, monkeypatch: pytest.MonkeyPatch, key: str | None, cluster: KubernetesApi
) -> None:
    """List, every Plan child, Check, every Sweep child and Summarize, each with its own role:
    every call granted, and every grant called. List reads the EKS cluster; the children need no
    cluster access."""
    extra = "s3://refs/in-use.json"
    busy_registry(local_ecr, extra, cluster)
    local_ecr.client("ecr").create_repository(repositoryName="web")
    monkeypatch.setattr(fan_out, "PAYLOAD_LIMIT_BYTES", 450)  # List writes the manifest too
    s3 = local_ecr.client("s3")
    s3.create_bucket(Bucket="runs")
    settings = Settings(
        keep_tagged_images=1,
        extra_image_references=extra,
        extra_image_references_kms_key_arn=key,
        fan_out_batch_size=1,
        guard_max_deletions=0,
    )
    base = AwsTarget(region=local_ecr.region, endpoint_url=local_ecr.endpoint_url)
    logger = logging.getLogger("test")
    called: dict[str, set[str]] = {}

    local_ecr.reset_counters()
    state = fan_out.list_work(
        base, settings, logger, run_id="run-1", dry_run=False, bucket="runs",
        started_at=datetime.now(UTC),
    )  # fmt: skip
    called["List"] = called_actions(local_ecr)
    assert cluster.state.requests, "List read the cluster"
    cluster.state.requests.clear()
    items = json.loads(s3.get_object(Bucket="runs", Key=state["manifestKey"])["Body"].read())
    assert len(items) == 2

    local_ecr.reset_counters()
    planned = sum(
        fan_out.plan_batch(
            base,
            settings,
            logger,
            {"item": item, "run": state["run"]},
            bucket="runs",
            account=local_ecr.account_id,
        )["wouldDelete"]
        for item in items
    )
    assert planned == 3
    called["Plan"] = called_actions(local_ecr)

    # guardMaxDeletions 0 holds it; the approval on record lets it through (read and recorded).
    approval = approval_for("run-0", planned, now=datetime.now(UTC), valid_for=timedelta(days=1))
    ssm = local_ecr.client("ssm")
    ssm.put_parameter(Name=STATE, Value=json.dumps({"approval": approval.to_dict()}), Type="String")
    local_ecr.reset_counters()
    approvals = ParameterApprovals(ssm, STATE, logger)
    checked = fan_out.check_run(
        base, settings, logger, run_id="run-1", bucket="runs", approvals=approvals
    )
    assert checked["held"] is False
    called["Check"] = called_actions(local_ecr)

    local_ecr.reset_counters()
    deleted = sum(
        fan_out.sweep_batch(
            base,
            settings,
            logger,
            {"item": item, "run": state["run"]},
            bucket="runs",
            account=local_ecr.account_id,
        )["imagesDeleted"]
        for item in items
    )
    assert deleted == 3
    called["Sweep"] = called_actions(local_ecr)
    assert not cluster.state.requests, "the children never read the cluster"

    local_ecr.reset_counters()
    summary = fan_out.summarize(
        base,
        logging.getLogger("test"),
        run_id="run-1",
        bucket="runs",
        finished_at=datetime.now(UTC),
    )
    assert summary.failures == 0 and summary.total("images_deleted") == 3
    called["Summarize"] = called_actions(local_ecr)

    context = {
        **cdk_json_context(),
        "fanOut": True,
        "extraImageReferences": extra,
        "extraImageReferencesKmsKeyArn": key,
    }
    template = synthesized_template(context)
    on_its_behalf = {step: set() for step in STEP_HANDLERS} | {
        "List": ON_ITS_BEHALF if key else set()
    }
    for step, handler in STEP_HANDLERS.items():
        granted = granted_actions(template, handler)
        assert called[step] <= granted, f"{step}: not granted: {sorted(called[step] - granted)}"
        unused = granted - called[step]
        assert unused == on_its_behalf[step], f"{step}: granted, never called: {sorted(unused)}"
