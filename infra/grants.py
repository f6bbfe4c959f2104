"""What each of the sweeper's roles may do, one family of grants per kind of call.

Every role the stacks create is built from these families and nothing else: the single Lambda's
role takes all of them; the fan-out's List, Sweep and Summarize roles, and the member accounts'
role, each take only the families their code calls (tests/integration/test_iam_coverage.py
proves each role against the calls its function makes). A new kind of call gets a family here.

Repository grants are limited to the repositories `includeRepositories` names, and explicitly
deny the writes (delete, archive, put a lifecycle policy) on the `excludeRepositories` and on
every repository tagged `ecr-sweeper:skip=true`: IAM is the first wall, the code's own checks
the second.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from ecr_sweeper.aws import permissions
from ecr_sweeper.aws.sts import ASSUME_ROLE_ACTIONS, role_arn
from ecr_sweeper.core.extra_references import S3_PREFIX, SSM_PREFIX
from ecr_sweeper.core.overrides import SKIP_TAG
from ecr_sweeper.core.settings import StackSettings

_WHOLE_REGISTRY = (
    "Listing the registry (DescribeRepositories with no names) is authorized against every "
    "repository of the account and region; which ones are swept is decided by "
    "includeRepositories/excludeRepositories. Read-only, this account and region only."
)
_SELECTED_REPOSITORIES = (
    "The repositories includeRepositories names, as IAM patterns ('*', '?'); the excluded and "
    "the skip-tagged ones are denied by the statements that follow."
)
_IN_USE_LOOKUP = (
    "Finding the images in use means describing every {what} of this account and region; which "
    "ones exist is only known at run time. Read-only actions, limited to this account and region."
)

UNSCOPED_ACTIONS: Final = frozenset(
    {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "ecs:ListClusters",
        "ecs:ListServices",
        "ecs:ListTasks",
        "ecs:DescribeTaskDefinition",
        "ecs:ListTaskDefinitions",
        "events:ListEventBuses",
        "events:ListRules",
        "scheduler:ListSchedules",
        "batch:DescribeJobDefinitions",
        "lambda:ListFunctions",
        "sagemaker:ListModels",
        "sagemaker:ListEndpoints",
        "codebuild:ListProjects",
        "eks:ListClusters",
    }
)
"""Actions the service authorization reference lists with no resource type (ecs:ListTasks only
the container-instance, which Fargate tasks don't have): IAM needs Resource '*' for them."""

SKIP_CONDITION: Final = {"StringEqualsIgnoreCase": {f"aws:ResourceTag/{SKIP_TAG}": "true"}}
"""A repository tagged ecr-sweeper:skip=true (any case): its writes are denied."""


@dataclass(frozen=True)
class Grant:
    """One policy statement of a role, and why its resource can't be narrower."""

    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    wildcard_reason: str | None = None
    """Why a '*' in the resource is needed (becomes the cdk-nag IAM5 acknowledgment)."""
    conditions: Mapping[str, Any] = field(default_factory=dict)
    deny: bool = False

    def statement(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid=self.sid,
            effect=iam.Effect.DENY if self.deny else iam.Effect.ALLOW,
            actions=list(self.actions),
            resources=list(self.resources),
            conditions=dict(self.conditions) or None,
        )


class _Arns:
    """ARNs in a stack's partition and account: in its own region, or in every swept one."""

    def __init__(self, scope: Construct, settings: StackSettings) -> None:
        self.stack = cdk.Stack.of(scope)
        self.regions: list[str | None] = list(settings.regions) or [None]

    def arn(
        self,
        service: str,
        resource: str,
        name: str,
        *,
        colon: bool = False,
        region: str | None = None,
    ) -> str:
        return self.stack.format_arn(
            service=service,
            resource=resource,
            resource_name=name,
            region=region,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
            if colon
            else cdk.ArnFormat.SLASH_RESOURCE_NAME,
        )

    def swept(
        self, service: str, resource: str, names: Iterable[str], *, colon: bool = False
    ) -> tuple[str, ...]:
        """Each name's ARN in every swept region (settings: regions; default this stack's own)."""
        return tuple(
            self.arn(service, resource, name, colon=colon, region=region)
            for region in self.regions
            for name in names
        )


# -- the families ----------------------------------------------------------------------------------


def registry_listing_grants(scope: Construct, settings: StackSettings) -> list[Grant]:
    """List the registry's repositories (the single Lambda, List, the member role)."""
    arns = _Arns(scope, settings)
    return [
        Grant(
            "ListRepositories",
            permissions.ECR_REGISTRY_ACTIONS,
            arns.swept("ecr", "repository", ["*"]),
            _WHOLE_REGISTRY,
        )
    ]


def repository_grants(scope: Construct, settings: StackSettings) -> list[Grant]:
    """Read, and delete (archive, put policies) in, the selected repositories only (the single
    Lambda, Sweep, the member role). The writes are denied on the excluded repositories and on
    the skip-tagged ones, whatever else allows them."""
    arns = _Arns(scope, settings)
    included = arns.swept("ecr", "repository", settings.include_repositories)
    wildcard = (
        _SELECTED_REPOSITORIES if any("*" in p for p in settings.include_repositories) else None
    )
    grants = [
        Grant(
            "SweepRepositories",
            permissions.ecr_repository_actions(
                archives=settings.archives, deletes=settings.sweep_images
            ),
            included,
            wildcard,
        )
    ]
    if settings.native_lifecycle_policy is not None:
        grants.append(
            Grant(
                "EnforceLifecyclePolicies",
                permissions.ECR_NATIVE_POLICY_ACTIONS
                + (() if settings.sweep_images else permissions.ECR_POLICY_CHECK_ACTIONS),
                included,
                wildcard,
            )
        )
    writes = tuple(
        action
        for grant in grants
        for action in grant.actions
        if action in permissions.ECR_WRITE_ACTIONS
    )
    if writes and settings.exclude_repositories:
        grants.append(
            Grant(
                "NeverWriteExcludedRepositories",
                writes,
                arns.swept("ecr", "repository", settings.exclude_repositories),
                deny=True,
            )
        )
    if writes:
        grants.append(
            Grant(
                "NeverWriteSkippedRepositories",
                writes,
                arns.swept("ecr", "repository", ["*"]),
                conditions=SKIP_CONDITION,
                deny=True,
            )
        )
    return grants


def repository_reading_grants(scope: Construct, settings: StackSettings) -> list[Grant]:
    """Read the selected repositories, never change them (the fan-out's Plan: it plans for the
    deletion guard, and deletes nothing)."""
    arns = _Arns(scope, settings)
    wildcard = (
        _SELECTED_REPOSITORIES if any("*" in p for p in settings.include_repositories) else None
    )
    reads = (
        permissions.ECR_PLANNING_ACTIONS if settings.sweep_images else permissions.ECR_TAG_ACTIONS
    )
    included = arns.swept("ecr", "repository", settings.include_repositories)
    return [Grant("ReadRepositories", reads, included, wildcard)]


def in_use_grants(scope: Construct, settings: StackSettings) -> list[Grant]:
    """Read every in-use source the settings switch on (the single Lambda, List, the member
    role)."""
    arns = _Arns(scope, settings)
    grants: list[Grant] = []
    ecs_actions: list[str] = []
    if settings.protect_ecs_images:
        ecs_actions += permissions.ECS_ACTIONS
        if settings.protect_previous_task_definitions:
            ecs_actions += permissions.ECS_ROLLBACK_ACTIONS
    if settings.protect_scheduled_task_images:
        ecs_actions += permissions.ECS_TASK_DEFINITION_ACTIONS
    grants += _split_grant(
        "ListEcs",
        "DescribeEcsTasksAndServices",
        tuple(dict.fromkeys(ecs_actions)),
        (*arns.swept("ecs", "task", ["*"]), *arns.swept("ecs", "service", ["*"])),
        "ECS cluster, task and service",
    )
    if settings.protect_scheduled_task_images:
        grants += _split_grant(
            "ListEventRules",
            "ReadEventRuleTargets",
            permissions.EVENTS_ACTIONS,
            arns.swept("events", "rule", ["*"]),
            "EventBridge rule",
        )
        grants += _split_grant(
            "ListSchedules",
            "GetSchedules",
            permissions.SCHEDULER_ACTIONS,
            arns.swept("scheduler", "schedule", ["*"]),
            "EventBridge Scheduler schedule",
        )
    if settings.protect_batch_images:
        grants += _split_grant(
            "DescribeBatchJobDefinitions", "", permissions.BATCH_ACTIONS, (), "Batch job definition"
        )
    if settings.protect_lambda_images:
        grants += _split_grant(
            "ListFunctions",
            "GetFunctions",
            permissions.LAMBDA_ACTIONS,
            arns.swept("lambda", "function", ["*"], colon=True),
            "Lambda function",
        )
    if settings.protect_sage_maker_images:
        grants += _split_grant(
            "ListSageMakerModels",
            "DescribeSageMakerModels",
            permissions.SAGEMAKER_ACTIONS,
            (*arns.swept("sagemaker", "model", ["*"]), *arns.swept("sagemaker", "endpoint", ["*"])),
            "SageMaker model and endpoint",
        )
    if settings.protect_code_build_images:
        grants += _split_grant(
            "ListCodeBuildProjects",
            "GetCodeBuildProjects",
            permissions.CODEBUILD_ACTIONS,
            arns.swept("codebuild", "project", ["*"]),
            "CodeBuild project",
        )
    if settings.eks_clusters:
        grants += _split_grant(
            "ListEksClusters",
            "DescribeEksClusters",
            permissions.EKS_ACTIONS,
            arns.swept("eks", "cluster", settings.eks_clusters),
            "EKS cluster",
        )
    return [grant for grant in grants if grant.actions]


def extra_references_grants(scope: Construct, settings: StackSettings) -> list[Grant]:
    """Read the extra references document, and decrypt it with its key through S3 or SSM only
    (the single Lambda and List; never a member role: the document is read once, with the
    deployment's own credentials)."""
    stack = cdk.Stack.of(scope)
    location = settings.extra_image_references
    if location is None:
        return []
    if location.startswith(S3_PREFIX):
        via = "s3"
        grants = [
            Grant(
                "ReadExtraReferences",
                permissions.S3_EXTRA_REFERENCES_ACTIONS,
                (f"arn:{stack.partition}:s3:::{location[len(S3_PREFIX) :]}",),
                conditions=own_bucket_condition(scope),
            )
        ]
    else:
        via = "ssm"
        name = location[len(SSM_PREFIX) :].lstrip("/")
        grants = [
            Grant(
                "ReadExtraReferences",
                permissions.SSM_EXTRA_REFERENCES_ACTIONS,
                (_Arns(scope, settings).arn("ssm", "parameter", name),),
            )
        ]
    key = settings.extra_image_references_kms_key_arn
    if key is not None:
        key_region = key.split(":")[3]
        suffix = ".amazonaws.com.cn" if key.split(":")[1] == "aws-cn" else ".amazonaws.com"
        grants.append(
            Grant(
                "DecryptExtraReferences",
                permissions.KMS_EXTRA_REFERENCES_ACTIONS,
                (key,),
                conditions={"StringEquals": {"kms:ViaService": f"{via}.{key_region}{suffix}"}},
            )
        )
    return grants


def member_role_grants(scope: Construct, settings: StackSettings) -> list[Grant]:
    """Assume exactly the member accounts' roles (settings: accounts), never a pattern."""
    if not settings.accounts:
        return []
    partition = cdk.Stack.of(scope).partition
    return [
        Grant(
            "AssumeMemberRoles",
            ASSUME_ROLE_ACTIONS,
            tuple(
                role_arn(partition, account, settings.cross_account_role_name)
                for account in settings.accounts
            ),
        )
    ]


def own_bucket_condition(scope: Construct) -> dict[str, Any]:
    """Only a bucket this account owns (with ExpectedBucketOwner sent by the code as well)."""
    return {"StringEquals": {"s3:ResourceAccount": cdk.Stack.of(scope).account}}


def _split_grant(
    list_sid: str, read_sid: str, actions: tuple[str, ...], resources: tuple[str, ...], what: str
) -> list[Grant]:
    """Actions without a resource type on '*', the others on `resources`."""
    reason = _IN_USE_LOOKUP.format(what=what)
    return [
        Grant(list_sid, tuple(a for a in actions if a in UNSCOPED_ACTIONS), ("*",), reason),
        Grant(read_sid, tuple(a for a in actions if a not in UNSCOPED_ACTIONS), resources, reason),
    ]


# -- roles -----------------------------------------------------------------------------------------


def grant_all(role: iam.Role, grants: Iterable[Grant], *, tracing: bool = True) -> None:
    """Add the grants to the role's policy, with a cdk-nag acknowledgment per wildcard."""
    grants = [grant for grant in grants if grant.actions]
    for grant in grants:
        role.add_to_policy(grant.statement())
    policy = role.node.try_find_child("DefaultPolicy")
    if policy is not None:
        acknowledgments = wildcard_acknowledgments(role, grants, tracing=tracing)
        if acknowledgments:
            cdk.Validations.of(policy).acknowledge(*acknowledgments)


def wildcard_acknowledgments(
    scope: Construct, grants: list[Grant], *, tracing: bool = True
) -> list[cdk.Acknowledgment]:
    """One IAM5 acknowledgment per wildcard resource, in the form cdk-nag reports it."""
    reasons: dict[str, list[str]] = {}
    for grant in grants:
        for resource in grant.resources:
            if "*" in resource and grant.wildcard_reason is not None and not grant.deny:
                reasons.setdefault(nag_resource(scope, resource), []).append(grant.wildcard_reason)
    if tracing:
        xray = ", ".join(sorted(a for a in UNSCOPED_ACTIONS if a.startswith("xray:")))
        reasons.setdefault("*", []).append(
            f"{xray} (Lambda active tracing) support no resource-level permissions."
        )
    return [
        cdk.Acknowledgment(
            id=f"AwsSolutions-IAM5[Resource::{resource}]", reason=" ".join(dict.fromkeys(why))
        )
        for resource, why in reasons.items()
    ]


def nag_resource(scope: Construct, resource: str) -> str:
    """A resource as cdk-nag prints it (pseudo parameters as <AWS::Region>, GetAtt as <X.Arn>)."""
    resolved = cdk.Stack.of(scope).resolve(resource)
    if isinstance(resolved, str):
        return resolved
    out = []
    for part in resolved["Fn::Join"][1]:
        if isinstance(part, str):
            out.append(part)
        elif "Ref" in part:
            out.append(f"<{part['Ref']}>")
        else:
            logical, attribute = part["Fn::GetAtt"]
            out.append(f"<{logical}.{attribute}>")
    return "".join(out)
