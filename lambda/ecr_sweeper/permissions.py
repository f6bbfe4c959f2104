"""The IAM actions the sweeper's code calls, so the stack grants exactly these and no more.

Each AWS-facing module owns its list; a test records every API call the integration tests make
and checks it is covered here.
"""

from __future__ import annotations

ECR_REPOSITORY_ACTIONS: tuple[str, ...] = (
    "ecr:DescribeImages",
    "ecr:BatchGetImage",
    "ecr:ListImages",
    "ecr:BatchDeleteImage",
    "ecr:ListTagsForResource",
)
"""Repository-scoped ECR actions (resource: the registry's repositories)."""

ECR_REGISTRY_ACTIONS: tuple[str, ...] = ("ecr:DescribeRepositories",)
"""ECR actions that list the registry (resource: all repositories of the account and region)."""

ECS_ACTIONS: tuple[str, ...] = (
    "ecs:ListClusters",
    "ecs:ListTasks",
    "ecs:DescribeTasks",
    "ecs:ListServices",
    "ecs:DescribeServices",
    "ecs:DescribeTaskDefinition",
)
"""Read-only ECS actions for images in use (settings: protectEcsImages)."""

LAMBDA_ACTIONS: tuple[str, ...] = ("lambda:ListFunctions", "lambda:GetFunction")
"""Read-only Lambda actions for images in use (settings: protectLambdaImages)."""

S3_EXTRA_REFERENCES_ACTIONS: tuple[str, ...] = ("s3:GetObject",)
SSM_EXTRA_REFERENCES_ACTIONS: tuple[str, ...] = ("ssm:GetParameter",)
"""Read the extra references document (settings: extraImageReferences), on that object only."""

SSM_CURSOR_ACTIONS: tuple[str, ...] = ("ssm:GetParameter", "ssm:PutParameter")
"""Read and write the run cursor (where a run's time budget ran out), on that parameter only."""

S3_RUN_OBJECT_ACTIONS: tuple[str, ...] = ("s3:GetObject", "s3:PutObject")
S3_RUN_BUCKET_ACTIONS: tuple[str, ...] = ("s3:ListBucket",)
"""The fan-out's run documents (settings: fanOut): read and write under runs/ of the run bucket,
and list it (Summarize reads every batch's results)."""
