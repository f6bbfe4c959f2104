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

ECR_ARCHIVE_ACTIONS: tuple[str, ...] = ("ecr:UpdateImageStorageClass",)
"""Move images to ECR's archive storage class, one image a call (settings: expiredImageAction is
archive). Repository-scoped, like ECR_REPOSITORY_ACTIONS."""


ECR_TAG_ACTIONS: tuple[str, ...] = ("ecr:ListTagsForResource",)
"""A repository's override tags: all a run reads of a repository when it sweeps no images
(settings: sweepImages false; it then only enforces the native lifecycle policy)."""


def ecr_repository_actions(archives: bool, deletes: bool = True) -> tuple[str, ...]:
    """The repository-scoped ECR actions for these settings: archiving adds its own action, and
    a run that sweeps no images (`deletes` false) reads only the repository's tags."""
    if not deletes:
        return ECR_TAG_ACTIONS
    return ECR_REPOSITORY_ACTIONS + (ECR_ARCHIVE_ACTIONS if archives else ())


ECR_PLANNING_ACTIONS: tuple[str, ...] = (
    "ecr:DescribeImages",
    "ecr:BatchGetImage",
    "ecr:ListTagsForResource",
)
"""What planning a repository reads (its tags, images and index manifests: the fan-out's Plan);
the re-check and confirming listings (ListImages) and the writes belong to acting on the plan."""


ECR_NATIVE_POLICY_ACTIONS: tuple[str, ...] = ("ecr:GetLifecyclePolicy", "ecr:PutLifecyclePolicy")
"""Read and put repositories' native lifecycle policies (settings: nativeLifecyclePolicy)."""

ECR_POLICY_CHECK_ACTIONS: tuple[str, ...] = ("ecr:DescribeImages", "ecr:BatchGetImage")
"""Read a repository's images and index manifests: before a native lifecycle policy is written,
it is checked against what the sweep keeps there. Reads only; a run that sweeps images has them
already (ECR_REPOSITORY_ACTIONS)."""

ECR_WRITE_ACTIONS: tuple[str, ...] = (
    "ecr:BatchDeleteImage",
    "ecr:UpdateImageStorageClass",
    "ecr:PutLifecyclePolicy",
)
"""The ECR actions that change a repository: denied on excluded and skip-tagged repositories."""

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

ECS_ROLLBACK_ACTIONS: tuple[str, ...] = ("ecs:ListTaskDefinitions",)
"""Earlier revisions of a service's family (settings: protectPreviousTaskDefinitions > 0)."""

ECS_TASK_DEFINITION_ACTIONS: tuple[str, ...] = ("ecs:DescribeTaskDefinition",)
"""The images of a task definition a rule or schedule starts (protectScheduledTaskImages)."""

EVENTS_ACTIONS: tuple[str, ...] = (
    "events:ListEventBuses",
    "events:ListRules",
    "events:ListTargetsByRule",
)
"""EventBridge rules that start ECS tasks (settings: protectScheduledTaskImages)."""

SCHEDULER_ACTIONS: tuple[str, ...] = ("scheduler:ListSchedules", "scheduler:GetSchedule")
"""EventBridge Scheduler schedules that start ECS tasks (settings: protectScheduledTaskImages)."""

BATCH_ACTIONS: tuple[str, ...] = ("batch:DescribeJobDefinitions",)
"""ACTIVE AWS Batch job definitions (settings: protectBatchImages)."""

LAMBDA_ACTIONS: tuple[str, ...] = ("lambda:ListFunctions", "lambda:GetFunction")
"""Read-only Lambda actions for images in use (settings: protectLambdaImages)."""

SAGEMAKER_ACTIONS: tuple[str, ...] = (
    "sagemaker:ListModels",
    "sagemaker:DescribeModel",
    "sagemaker:ListEndpoints",
    "sagemaker:DescribeEndpoint",
)
"""SageMaker models and the images endpoints run (settings: protectSageMakerImages)."""

CODEBUILD_ACTIONS: tuple[str, ...] = ("codebuild:ListProjects", "codebuild:BatchGetProjects")
"""CodeBuild projects' build images (settings: protectCodeBuildImages)."""

EKS_ACTIONS: tuple[str, ...] = ("eks:ListClusters", "eks:DescribeCluster")
"""EKS clusters' endpoints and CAs (settings: eksClusters not []). Reading the cluster itself
is Kubernetes' access entry (AmazonEKSViewPolicy), not IAM; signing the token calls nothing."""

S3_EXTRA_REFERENCES_ACTIONS: tuple[str, ...] = ("s3:GetObject",)
SSM_EXTRA_REFERENCES_ACTIONS: tuple[str, ...] = ("ssm:GetParameter",)
"""Read the extra references document (settings: extraImageReferences), on that object only."""

SSM_CURSOR_ACTIONS: tuple[str, ...] = ("ssm:GetParameter", "ssm:PutParameter")
"""Read and write the run cursor (where a run's time budget ran out), on that parameter only."""
KMS_EXTRA_REFERENCES_ACTIONS: tuple[str, ...] = ("kms:Decrypt",)
"""Decrypt the extra references document (a SecureString parameter or an SSE-KMS object) with
the one key the settings name (extraImageReferencesKmsKeyArn). S3 and SSM call KMS on the
function's behalf, so the code itself never calls it."""

S3_RUN_READ_ACTIONS: tuple[str, ...] = ("s3:GetObject",)
S3_RUN_WRITE_ACTIONS: tuple[str, ...] = ("s3:PutObject",)
S3_RUN_BUCKET_ACTIONS: tuple[str, ...] = ("s3:ListBucket",)
"""The fan-out's run documents (settings: fanOut), each step on its own documents under runs/ of
the run bucket: List writes the run, the in-use snapshots and the manifest; Sweep reads those
and writes its results; Summarize lists and reads the results."""
