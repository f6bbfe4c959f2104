"""SageMaker models and endpoints, and CodeBuild projects, keep their images; each source can be
turned off, and one that can't be read deletes nothing anywhere."""

from __future__ import annotations

import random
from typing import Any

import pytest
from helpers.sweep import push, remaining, sweep
from moto.sagemaker.models import sagemaker_backends

from ecr_sweeper.core.settings import Settings
from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory

ACCOUNT = "123456789012"
HOST = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/runner"
OFF = {"eks_clusters": ()}


@pytest.fixture
def digests(local_ecr: LocalEcr) -> dict[int, str]:
    """app:v0 (oldest) .. app:v5: keeping 1 deletes all but the newest."""
    make = ManifestFactory(random.Random(7))
    return {n: push(local_ecr, "app", make.image(compact=True), f"v{n}", 40 - n) for n in range(6)}


def kept_reason(summary: Any, digest: str) -> str:
    (decision,) = [d for d in summary.results[0].plan.decisions if d.image.digest == digest]
    assert decision.action == "keep", decision
    return str(decision.reason)


def sagemaker_models(local_ecr: LocalEcr, digests: dict[int, str]) -> None:
    """A single-container model (v0), a pipeline model (v1, v2), and an endpoint whose model
    is gone but which still runs v3 by digest."""
    sagemaker = local_ecr.client("sagemaker")
    sagemaker.create_model(
        ModelName="churn",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": f"{HOST}/app:v0", "ModelDataUrl": "s3://models/churn.tgz"},
    )
    sagemaker.create_model(
        ModelName="pipeline",
        ExecutionRoleArn=ROLE,
        Containers=[
            {"Image": f"{HOST}/app:v1"},
            {"Image": f"{HOST}/app@{digests[2]}"},
            {"Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1"},
        ],
    )
    sagemaker.create_model(
        ModelName="retired", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": f"{HOST}/app:v3"}
    )
    variant = {"VariantName": "main", "ModelName": "retired", "InitialInstanceCount": 1}
    sagemaker.create_endpoint_config(
        EndpointConfigName="retired",
        ProductionVariants=[{**variant, "InstanceType": "ml.m5.large"}],
    )
    sagemaker.create_endpoint(EndpointName="scoring", EndpointConfigName="retired")
    sagemaker.delete_model(ModelName="retired")
    # moto leaves DeployedImages out; SageMaker reports what the endpoint resolved and runs.
    endpoint = sagemaker_backends[ACCOUNT]["us-east-1"].endpoints["scoring"]
    endpoint.production_variants[0]["DeployedImages"] = [
        {"SpecifiedImage": f"{HOST}/app:v3", "ResolvedImage": f"{HOST}/app@{digests[3]}"}
    ]


def codebuild_project(local_ecr: LocalEcr, name: str, image: str, role: str = ROLE) -> None:
    local_ecr.client("codebuild").create_project(
        name=name,
        source={"type": "S3", "location": "sources/app.zip"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": image,
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole=role,
    )


def codebuild_projects(local_ecr: LocalEcr) -> None:
    codebuild_project(local_ecr, "build", f"{HOST}/app:v4")
    codebuild_project(local_ecr, "curated", "aws/codebuild/standard:7.0")


def test_models_endpoints_and_projects_keep_their_images_and_name_their_holders(
    local_ecr: LocalEcr, digests: dict[int, str]
) -> None:
    sagemaker_models(local_ecr, digests)
    codebuild_projects(local_ecr)

    summary = sweep(local_ecr, Settings(keep_tagged_images=1, **OFF))

    assert set(remaining(local_ecr, "app")) == set(digests.values())
    assert "SageMaker model churn" in kept_reason(summary, digests[0])
    assert "SageMaker model pipeline" in kept_reason(summary, digests[1])
    assert "SageMaker model pipeline" in kept_reason(summary, digests[2])
    assert "SageMaker endpoint scoring (main)" in kept_reason(summary, digests[3])
    assert "CodeBuild project build" in kept_reason(summary, digests[4])
    assert summary.failures == 0


def test_turning_them_off_lets_their_images_go_and_calls_neither_service(
    local_ecr: LocalEcr, digests: dict[int, str]
) -> None:
    sagemaker_models(local_ecr, digests)
    codebuild_projects(local_ecr)
    local_ecr.reset_counters()

    sweep(
        local_ecr,
        Settings(
            keep_tagged_images=1,
            protect_sage_maker_images=False,
            protect_code_build_images=False,
            **OFF,
        ),
    )

    assert set(remaining(local_ecr, "app")) == {digests[5]}
    assert not local_ecr.calls_for("sagemaker") and not local_ecr.calls_for("codebuild")


@pytest.mark.parametrize(
    ("service", "operation", "source"),
    [
        ("sagemaker", "DescribeModel", "SageMaker"),
        ("sagemaker", "ListEndpoints", "SageMaker"),
        ("codebuild", "BatchGetProjects", "CodeBuild"),
    ],
)
def test_a_source_that_cannot_be_read_deletes_nothing_anywhere(
    local_ecr: LocalEcr, digests: dict[int, str], service: str, operation: str, source: str
) -> None:
    make = ManifestFactory(random.Random(8))
    other = push(local_ecr, "other", make.image(compact=True), None, 30)
    sagemaker_models(local_ecr, digests)
    codebuild_projects(local_ecr)
    local_ecr.faults.error(500, operation, service=service)

    summary = sweep(local_ecr, Settings(keep_tagged_images=1, **OFF))

    assert set(remaining(local_ecr, "app")) == set(digests.values())
    assert other in remaining(local_ecr, "other")
    assert summary.total("images_deleted") == 0 and summary.failures == 2
    reason = summary.results[0].plan.decisions[0].reason  # type: ignore[union-attr]
    assert f"images in use could not be read from {source}" in str(reason)
