"""The sweeper Lambda: code asset, Powertools layer, log group and a least-privilege role."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from aws_lambda_powertools.shared.version import VERSION as POWERTOOLS_VERSION
from constructs import Construct

from ecr_sweeper.aws import permissions
from ecr_sweeper.aws.ssm import STATE_PARAMETER_VARIABLE
from ecr_sweeper.aws.sts import ASSUME_ROLE_ACTIONS, role_arn
from ecr_sweeper.core.extra_references import S3_PREFIX, SSM_PREFIX
from ecr_sweeper.core.settings import (
    SettingsError,
    StackSettings,
    environment_problem,
    function_environment,
)
from infra.config import PROJECT_ROOT

HANDLER = "ecr_sweeper.handlers.sweeper.lambda_handler"
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
ASSET_DIR = PROJECT_ROOT / "lambda"
ASSET_EXCLUDES = ("**/__pycache__", "**/*.pyc", "*.egg-info")

SWEEPER_ROLE_PREFIX: Final = "ecr-sweeper-"
"""With `accounts` set, the sweeper's role is named ecr-sweeper-<region>, so the member accounts'
role can trust exactly it."""

SDK_LAYER_DIR = PROJECT_ROOT / "build" / "sdk-layer"
"""The pinned AWS SDK (requirements-lambda.txt) as a layer folder, built by `make install` with
`pip install --target` (pure-Python wheels only: no Docker, and synth stays offline)."""

SDK_REQUIREMENTS = PROJECT_ROOT / "requirements-lambda.txt"

ASYNC_EVENT_MAX_AGE_SECONDS: Final = 3600
"""How long Lambda keeps retrying a throttled asynchronous invocation (a sweep that finds
another one running waits for it, up to an hour)."""

POWERTOOLS_LAYER_PARAMETER = (
    f"/aws/service/powertools/python/{ARCHITECTURE.name}/{RUNTIME.name}/{POWERTOOLS_VERSION}"
)
"""Public SSM parameter holding the layer ARN of exactly the Powertools version installed here
(format /aws/service/powertools/python/{arch}/{python_version}/{version}, Powertools docs)."""

POWERTOOLS_LAYER_ARN = f"{{{{resolve:ssm:{POWERTOOLS_LAYER_PARAMETER}}}}}"
"""A CloudFormation dynamic reference: resolved in the deploy region at deploy time, so synth
stays offline and the template stays region-agnostic."""

_RETENTION: Final[dict[int, logs.RetentionDays]] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}
"""jsii enums carry member names, not numbers, so the day counts are mapped here (a test checks
every allowed setting against the synthesized RetentionInDays)."""

_WHOLE_REGISTRY = (
    "The sweeper walks every repository of the registry by design; which repositories are swept "
    "is decided at run time by includeRepositories/excludeRepositories, which IAM can't express. "
    "The grant is limited to this account and region, and to the listed ECR actions only."
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
    }
)
"""Actions the service authorization reference lists with no resource type (ecs:ListTasks only
the container-instance, which Fargate tasks don't have): IAM needs Resource '*' for them."""


@dataclass(frozen=True)
class Grant:
    """One policy statement of the sweeper's role, and why its resource can't be narrower."""

    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    wildcard_reason: str | None = None
    """Why a '*' in the resource is needed (becomes the cdk-nag IAM5 acknowledgment)."""


def sweeper_grants(scope: Construct, settings: StackSettings) -> list[Grant]:
    """Everything the function's code may call, from ecr_sweeper.aws.permissions and the settings.

    The X-Ray grant is added by Lambda's active tracing, and the logs grant by SweeperFunction.
    """
    stack = cdk.Stack.of(scope)

    def arn(
        service: str, resource: str, name: str, *, colon: bool = False, region: str | None = None
    ) -> str:
        """An ARN in this stack's partition, account and region (tokens, resolved at deploy)."""
        return stack.format_arn(
            service=service,
            resource=resource,
            resource_name=name,
            region=region,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
            if colon
            else cdk.ArnFormat.SLASH_RESOURCE_NAME,
        )

    def swept(service: str, resource: str, name: str, *, colon: bool = False) -> tuple[str, ...]:
        """The ARN in every swept region (settings: regions; default this stack's own)."""
        regions: list[str | None] = list(settings.regions) or [None]
        return tuple(arn(service, resource, name, colon=colon, region=r) for r in regions)

    grants = [
        Grant(
            "SweepRepositories",
            tuple(
                sorted(
                    {
                        *permissions.ecr_repository_actions(settings.archives),
                        *permissions.ECR_REGISTRY_ACTIONS,
                    }
                )
            ),
            swept("ecr", "repository", "*"),
            _WHOLE_REGISTRY,
        )
    ]
    ecs_actions: list[str] = []
    if settings.native_lifecycle_policy is not None:
        grants.append(
            Grant(
                "EnforceLifecyclePolicies",
                permissions.ECR_NATIVE_POLICY_ACTIONS,
                swept("ecr", "repository", "*"),
                _WHOLE_REGISTRY,
            )
        )
    if settings.protect_ecs_images:
        ecs_actions += permissions.ECS_ACTIONS
        if settings.protect_previous_task_definitions:
            ecs_actions += permissions.ECS_ROLLBACK_ACTIONS
    if settings.protect_scheduled_task_images:
        ecs_actions += permissions.ECS_TASK_DEFINITION_ACTIONS
    ecs_actions = list(dict.fromkeys(ecs_actions))
    unscoped = tuple(a for a in ecs_actions if a in UNSCOPED_ACTIONS)
    grants.append(Grant("ListEcs", unscoped, ("*",), _IN_USE_LOOKUP.format(what="ECS cluster")))
    scoped = tuple(a for a in ecs_actions if a not in UNSCOPED_ACTIONS)
    grants.append(
        Grant(
            "DescribeEcsTasksAndServices",
            scoped,
            (*swept("ecs", "task", "*"), *swept("ecs", "service", "*")),
            _IN_USE_LOOKUP.format(what="ECS task and service"),
        )
    )
    if settings.protect_scheduled_task_images:
        grants += _split_grant(
            "ListEventRules",
            "ReadEventRuleTargets",
            permissions.EVENTS_ACTIONS,
            swept("events", "rule", "*"),
            "EventBridge rule",
        )
        grants += _split_grant(
            "ListSchedules",
            "GetSchedules",
            permissions.SCHEDULER_ACTIONS,
            swept("scheduler", "schedule", "*"),
            "EventBridge Scheduler schedule",
        )
    if settings.protect_batch_images:
        grants += _split_grant(
            "DescribeBatchJobDefinitions", "", permissions.BATCH_ACTIONS, (), "Batch job definition"
        )
    if settings.protect_lambda_images:
        unscoped = tuple(a for a in permissions.LAMBDA_ACTIONS if a in UNSCOPED_ACTIONS)
        grants.append(
            Grant("ListFunctions", unscoped, ("*",), _IN_USE_LOOKUP.format(what="Lambda function"))
        )
        scoped = tuple(a for a in permissions.LAMBDA_ACTIONS if a not in UNSCOPED_ACTIONS)
        grants.append(
            Grant(
                "GetFunctions",
                scoped,
                swept("lambda", "function", "*", colon=True),
                _IN_USE_LOOKUP.format(what="Lambda function"),
            )
        )
    location = settings.extra_image_references
    if location is not None and location.startswith(S3_PREFIX):
        bucket_and_key = location[len(S3_PREFIX) :]
        grants.append(
            Grant(
                "ReadExtraReferences",
                permissions.S3_EXTRA_REFERENCES_ACTIONS,
                (f"arn:{stack.partition}:s3:::{bucket_and_key}",),
            )
        )
    elif location is not None and location.startswith(SSM_PREFIX):
        name = location[len(SSM_PREFIX) :].lstrip("/")
        grants.append(
            Grant(
                "ReadExtraReferences",
                permissions.SSM_EXTRA_REFERENCES_ACTIONS,
                (arn("ssm", "parameter", name),),
            )
        )
    if settings.extra_image_references_kms_key_arn is not None:
        grants.append(
            Grant(
                "DecryptExtraReferences",
                permissions.KMS_EXTRA_REFERENCES_ACTIONS,
                (settings.extra_image_references_kms_key_arn,),
            )
        )
    if settings.accounts:
        grants.append(
            Grant(
                "AssumeMemberRoles",
                ASSUME_ROLE_ACTIONS,
                tuple(
                    role_arn(stack.partition, account, settings.cross_account_role_name)
                    for account in settings.accounts
                ),
            )
        )
    return [grant for grant in grants if grant.actions]


def _split_grant(
    list_sid: str, read_sid: str, actions: tuple[str, ...], resources: tuple[str, ...], what: str
) -> list[Grant]:
    """Actions without a resource type on '*', the others on `resources`."""
    reason = _IN_USE_LOOKUP.format(what=what)
    return [
        Grant(list_sid, tuple(a for a in actions if a in UNSCOPED_ACTIONS), ("*",), reason),
        Grant(read_sid, tuple(a for a in actions if a not in UNSCOPED_ACTIONS), resources, reason),
    ]


_ACK_RUNTIME = (
    "python3.12 is the runtime the code, its tests and the pinned Powertools layer target; moving "
    "to a newer runtime is a deliberate upgrade, not something a lint rule should force."
)


def sweeper_code(folder: Path = ASSET_DIR) -> lambda_.Code:
    """The Lambda code: the plain `lambda/` folder (no bundling, no Docker), minus build litter."""
    return lambda_.Code.from_asset(str(folder), exclude=list(ASSET_EXCLUDES))


class SdkLayerMissing(RuntimeError):
    """The SDK layer folder has not been built."""


def sdk_layer_code(folder: Path = SDK_LAYER_DIR) -> lambda_.Code:
    """The SDK layer: `python/` holds boto3, botocore and their pure-Python dependencies."""
    if not (folder / "python" / "botocore").is_dir():
        shown = folder.relative_to(PROJECT_ROOT) if folder.is_relative_to(PROJECT_ROOT) else folder
        raise SdkLayerMissing(
            f"{shown} is missing or incomplete: run `make install`, which builds the AWS SDK "
            "layer the function ships with"
        )
    return lambda_.Code.from_asset(str(folder), exclude=list(ASSET_EXCLUDES))


def sdk_versions(requirements: Path = SDK_REQUIREMENTS) -> str:
    """'boto3==X, botocore==Y' from the pins the layer is built from."""
    pins = [
        line.split("#")[0].strip()
        for line in requirements.read_text(encoding="utf-8").splitlines()
        if line.startswith(("boto3==", "botocore=="))
    ]
    return ", ".join(pins)


def retention_for(days: int) -> logs.RetentionDays:
    """The RetentionDays member for a validated `logRetentionDays` value."""
    try:
        return _RETENTION[days]
    except KeyError as error:
        raise SettingsError(
            [f"logRetentionDays: got {days}; expected one of {', '.join(map(str, _RETENTION))}"]
        ) from error


class SweeperFunction(Construct):
    """The Lambda that sweeps the registry, with its own log group and role.

    Reserved concurrency 1 makes two sweeps impossible to overlap (a manual run and the nightly
    one queue instead). It takes one unit from the account's unreserved pool, which Lambda keeps
    at 100 or more; accounts whose concurrency quota is still the new-account 10 can't reserve
    any and must raise the quota before deploying.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        dead_letter_queue: sqs.IQueue | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        environment = function_environment(settings)
        problem = environment_problem(settings)  # the CLI's `plan` warns of the same
        if problem:
            raise SettingsError([problem])

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=retention_for(settings.log_retention_days),
            # The logs are the audit trail of what was deleted and why: keep them when the stack
            # goes. Retention still expires old events, so a retained group costs little.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

        self.role = iam.Role(
            self,
            "Role",
            role_name=cdk.Fn.join("", [SWEEPER_ROLE_PREFIX, cdk.Aws.REGION])
            if settings.accounts
            else None,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="ecr-sweeper Lambda: read and delete ECR images, write its own logs",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.cursor = ssm.StringParameter(
            self,
            "Cursor",
            string_value="{}",
            description="ecr-sweeper: where the next run starts (the repository, and with "
            "regions or accounts the target too) when the last run's time budget ran out",
        )
        environment[STATE_PARAMETER_VARIABLE] = self.cursor.parameter_name
        self.grants = [
            *sweeper_grants(self, settings),
            Grant("RunCursor", permissions.SSM_CURSOR_ACTIONS, (self.cursor.parameter_arn,)),
        ]
        for grant in self.grants:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid=grant.sid, actions=list(grant.actions), resources=list(grant.resources)
                )
            )

        # Lambda extracts layers in order, later ones over earlier ones, and puts /opt/python
        # before the runtime's own boto3 on sys.path: the function imports this SDK, not the
        # runtime's, whatever version that region ships this month.
        self.sdk_layer = lambda_.LayerVersion(
            self,
            "SdkLayer",
            code=sdk_layer_code(),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description=f"ecr-sweeper: the AWS SDK its tests use ({sdk_versions()})",
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description="ecr-sweeper: deletes untagged and outdated ECR images every night",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=HANDLER,
            code=sweeper_code(),
            layers=[
                lambda_.LayerVersion.from_layer_version_arn(
                    self, "Powertools", POWERTOOLS_LAYER_ARN
                ),
                self.sdk_layer,
            ],
            timeout=cdk.Duration.seconds(settings.function_timeout_seconds),
            memory_size=settings.function_memory_mb,
            tracing=lambda_.Tracing.ACTIVE,
            reserved_concurrent_executions=1,
            # A failed sweep raises the Errors alarm; Lambda's async retries would rerun it
            # straight away into the same cause. The next scheduled run re-plans from scratch.
            retry_attempts=0,
            # An invocation Lambda throttled (another sweep holds the reserved concurrency) waits
            # at most this long; it, and a failed run, then go to the dead-letter queue. (A DLQ
            # rather than an on-failure destination: it needs sqs:SendMessage only.)
            max_event_age=cdk.Duration.seconds(ASYNC_EVENT_MAX_AGE_SECONDS),
            dead_letter_queue=dead_letter_queue,
            environment=environment,
            log_group=self.log_group,
            role=self.role,
        )

        policy = self.role.node.try_find_child("DefaultPolicy")
        assert policy is not None, "the role's policy is created by add_to_policy above"
        cdk.Validations.of(policy).acknowledge(*wildcard_acknowledgments(self, self.grants))
        cdk.Validations.of(self.function).acknowledge(
            cdk.Acknowledgment(id="AwsSolutions-L1", reason=_ACK_RUNTIME)
        )


def wildcard_acknowledgments(
    scope: Construct, grants: list[Grant], *, tracing: bool = True
) -> list[cdk.Acknowledgment]:
    """One IAM5 acknowledgment per wildcard resource, in the form cdk-nag reports it."""
    reasons: dict[str, list[str]] = {}
    for grant in grants:
        for resource in grant.resources:
            if "*" in resource and grant.wildcard_reason is not None:
                reasons.setdefault(_nag_resource(scope, resource), []).append(grant.wildcard_reason)
    if tracing:
        xray = ", ".join(sorted(a for a in UNSCOPED_ACTIONS if a.startswith("xray:")))
        reasons.setdefault("*", []).append(
            f"{xray} (Lambda active tracing) support no resource-level permissions."
        )
    return [
        cdk.Acknowledgment(id=f"AwsSolutions-IAM5[Resource::{resource}]", reason=" ".join(why))
        for resource, why in reasons.items()
    ]


def _nag_resource(scope: Construct, resource: str) -> str:
    """A resource as cdk-nag prints it: pseudo parameters as <AWS::Region> and so on."""
    resolved = cdk.Stack.of(scope).resolve(resource)
    if isinstance(resolved, str):
        return resolved
    parts = resolved["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else f"<{p['Ref']}>" for p in parts)
