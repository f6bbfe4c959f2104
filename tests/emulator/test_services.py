"""ECS, Lambda and STS are served as moto serves them, on the same endpoint."""

from __future__ import annotations

import json
from typing import Any

from helpers.emulator import Manifests, push

from local_ecr import LocalEcr


def test_sts_ecs_and_lambda_on_the_same_endpoint(
    local_ecr: LocalEcr, ecr: Any, manifests: Manifests
) -> None:
    assert local_ecr.client("sts").get_caller_identity()["Account"] == "123456789012"

    ecs = local_ecr.client("ecs")
    ecs.create_cluster(clusterName="prod")
    family = ecs.register_task_definition(
        family="web",
        containerDefinitions=[{"name": "web", "image": "web:v1", "memory": 256}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster="prod", serviceName="web", taskDefinition=family, desiredCount=1)
    assert ecs.describe_services(cluster="prod", services=["web"])["services"][0]["status"] == (
        "ACTIVE"
    )

    repo = ecr.create_repository(repositoryName="fn")["repository"]
    digest = push(ecr, "fn", manifests.image(), "v1")
    iam = local_ecr.client("iam")
    role = iam.create_role(
        RoleName="fn",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    lam = local_ecr.client("lambda")
    lam.create_function(
        FunctionName="fn",
        Role=role,
        PackageType="Image",
        Code={"ImageUri": f"{repo['repositoryUri']}:v1"},
    )
    code = lam.get_function(FunctionName="fn")["Code"]
    assert code["ImageUri"].endswith(":v1")
    assert lam.get_function(FunctionName="fn")["Configuration"]["PackageType"] == "Image"
    assert ecr.describe_images(repositoryName="fn")["imageDetails"][0]["imageDigest"] == digest
    assert local_ecr.calls_for("lambda")["CreateFunction"] == 1
    assert local_ecr.calls_for("ecs")["CreateService"] == 1
