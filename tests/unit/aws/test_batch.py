"""Every image a Batch job definition names, for each job type (shapes from the Batch API
reference; moto leaves nodeProperties out of DescribeJobDefinitions, so they are checked here)."""

from __future__ import annotations

from ecr_sweeper.aws.batch import job_definition_images

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def test_single_container_multi_node_ecs_and_eks_job_definitions() -> None:
    container = {"containerProperties": {"image": f"{HOST}/etl:v1"}}
    multi_node = {
        "nodeProperties": {
            "numNodes": 3,
            "mainNode": 0,
            "nodeRangeProperties": [
                {"targetNodes": "0", "container": {"image": f"{HOST}/train:main"}},
                {"targetNodes": "1:", "container": {"image": f"{HOST}/train:worker"}},
                {
                    "targetNodes": "2",
                    "ecsProperties": {
                        "taskProperties": [{"containers": [{"image": f"{HOST}/x:1"}]}]
                    },
                },
            ],
        }
    }
    ecs = {
        "ecsProperties": {
            "taskProperties": [
                {"containers": [{"name": "app", "image": f"{HOST}/app:v2"}, {"name": "log"}]}
            ]
        }
    }
    eks = {
        "eksProperties": {
            "podProperties": {
                "initContainers": [{"image": f"{HOST}/init:v1"}],
                "containers": [{"image": f"{HOST}/pod:v1"}],
            }
        }
    }
    assert list(job_definition_images(container)) == [f"{HOST}/etl:v1"]
    assert list(job_definition_images(multi_node)) == [
        f"{HOST}/train:main",
        f"{HOST}/train:worker",
        f"{HOST}/x:1",
    ]
    assert list(job_definition_images(ecs)) == [f"{HOST}/app:v2"]
    assert sorted(job_definition_images(eks)) == [f"{HOST}/init:v1", f"{HOST}/pod:v1"]
    assert list(job_definition_images({"type": "container"})) == []
