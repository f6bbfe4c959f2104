"""The sweeper Lambda: code asset, Powertools layer, log group and a least-privilege role."""

from __future__ import annotations

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
from ecr_sweeper.core.settings import (
    SettingsError,
    StackSettings,
    environment_problem,
    function_environment,
)
from infra.config import PROJECT_ROOT
from infra.grants import (
    Grant,
    extra_references_grants,
    grant_all,
    in_use_grants,
    member_role_grants,
    registry_listing_grants,
    repository_grants,
)

HANDLER = "ecr_sweeper.handlers.sweeper.lambda_handler"
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
ASSET_DIR = PROJECT_ROOT / "lambda"
ASSET_EXCLUDES = ("**/__pycache__", "**/*.pyc", "*.egg-info")

SWEEPER_ROLE_PREFIX: Final = "ecr-sweeper-"
"""With `accounts` set, the roles that assume the member role have fixed names starting with
this (`sweeper_role_name`), so the member accounts' role can trust exactly them."""

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

VPC_ACCESS_ACTIONS: Final = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)
"""What Lambda needs of a function's execution role to attach it to a VPC (the actions of the
AWSLambdaVPCAccessExecutionRole managed policy); Lambda calls them, the code never does."""
_ACK_VPC = (
    "Lambda creates and deletes the function's network interfaces in the subnets vpcSubnetIds "
    "names; these EC2 actions support no resource-level permissions for that."
)


def run_in_vpc(function: lambda_.Function, role: iam.IRole, settings: StackSettings) -> None:
    """With vpcSubnetIds and vpcSecurityGroupIds: the function runs in those subnets (to reach
    private EKS endpoints). The ids are the user's own, so no VPC object is looked up at synth."""
    if not settings.vpc_subnet_ids:
        return
    cfn = function.node.default_child
    assert isinstance(cfn, lambda_.CfnFunction)
    cfn.vpc_config = lambda_.CfnFunction.VpcConfigProperty(
        subnet_ids=list(settings.vpc_subnet_ids),
        security_group_ids=list(settings.vpc_security_group_ids),
    )
    statement = iam.PolicyStatement(
        sid="AttachToVpc", actions=list(VPC_ACCESS_ACTIONS), resources=["*"]
    )
    policy = iam.Policy(function, "VpcAccess", statements=[statement], roles=[role])
    function.node.add_dependency(policy)  # Lambda checks the role's EC2 grants on create
    cdk.Validations.of(policy).acknowledge(
        cdk.Acknowledgment(id="AwsSolutions-IAM5[Resource::*]", reason=_ACK_VPC)
    )


def sweeper_grants(scope: Construct, settings: StackSettings) -> list[Grant]:
    """Everything the single Lambda's code may call: every grant family.

    The X-Ray grant is added by Lambda's active tracing, and the logs grant by SweeperFunction.
    """
    return [
        *registry_listing_grants(scope, settings),
        *repository_grants(scope, settings),
        *in_use_grants(scope, settings),
        *extra_references_grants(scope, settings),
        *member_role_grants(scope, settings),
    ]


def apply_permissions_boundary(stack: cdk.Stack, settings: StackSettings) -> None:
    """Every role of the stack gets `permissionsBoundaryArn` as its boundary, if set."""
    if settings.permissions_boundary_arn is not None:
        iam.PermissionsBoundary.of(stack).apply(
            iam.ManagedPolicy.from_managed_policy_arn(
                stack, "PermissionsBoundary", settings.permissions_boundary_arn
            )
        )


def sweeper_role_name(kind: str, region: str) -> str:
    """The fixed name of a role that assumes the member accounts' role (settings: accounts):
    `ecr-sweeper-<region>` for the single Lambda, `ecr-sweeper-<kind>-<region>` for the
    fan-out's List and Sweep, so the member role can trust exactly them."""
    return f"{SWEEPER_ROLE_PREFIX}{kind}-{region}" if kind else f"{SWEEPER_ROLE_PREFIX}{region}"


def assuming_role_names(settings: StackSettings, region: str) -> list[str]:
    """The names of every role of the sweeper's stack that assumes the member roles."""
    kinds = ["", *FAN_OUT_ASSUMING_KINDS] if settings.fan_out else [""]
    return [sweeper_role_name(kind, region) for kind in kinds]


FAN_OUT_ASSUMING_KINDS: Final = ("list", "plan", "sweep")
"""The fan-out steps that act in the member accounts (Check and Summarize only read the run
bucket; Plan reads the repositories there)."""


def function_role(
    scope: Construct,
    construct_id: str,
    *,
    description: str,
    log_group: logs.ILogGroup,
    grants: list[Grant],
    role_name: str | None = None,
) -> iam.Role:
    """A role for one function: write its log group, and exactly `grants`."""
    role = iam.Role(
        scope,
        construct_id,
        role_name=role_name,
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=description,
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="WriteOwnLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        )
    )
    grant_all(role, grants)
    return role


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


def sdk_pins(requirements: Path = SDK_REQUIREMENTS) -> dict[str, str]:
    """Package -> version of each `name==version` pin the layer is built from (hashes aside)."""
    pins: dict[str, str] = {}
    for line in requirements.read_text(encoding="utf-8").splitlines():
        requirement = line.split("#")[0].removesuffix("\\").strip()
        if "==" in requirement and not requirement.startswith("-"):
            name, version = requirement.split("==")
            pins[name.strip()] = version.strip()
    return pins


def sdk_versions(requirements: Path = SDK_REQUIREMENTS) -> str:
    """'boto3==X, botocore==Y' from the pins the layer is built from."""
    pins = sdk_pins(requirements)
    return ", ".join(f"{name}=={pins[name]}" for name in ("boto3", "botocore"))


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
        self.role = function_role(
            self,
            "Role",
            role_name=sweeper_role_name("", cdk.Aws.REGION) if settings.accounts else None,
            description="ecr-sweeper Lambda: read and delete ECR images, write its own logs",
            log_group=self.log_group,
            grants=self.grants,
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

        run_in_vpc(self.function, self.role, settings)
        cdk.Validations.of(self.function).acknowledge(
            cdk.Acknowledgment(id="AwsSolutions-L1", reason=_ACK_RUNTIME)
        )
