"""The settings, one pydantic model per concern; `core.settings` composes them.

Field names are the snake_case form of the cdk.json keys (the camelCase aliases). Each field's
`description` is its help text (`ecr-sweeper settings`, the JSON Schema, the README's table).
"""

from __future__ import annotations

from typing import Self

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic.dataclasses import dataclass

from ecr_sweeper.core import lifecycle
from ecr_sweeper.core.setting_types import (
    Accounts,
    ArchiveRetentionDays,
    Boolean,
    DeletionCount,
    EksClusters,
    Email,
    ExcludedRepositories,
    ExpiredImageAction,
    Fraction,
    IncludedRepositories,
    KmsKeyArn,
    Location,
    LogLevel,
    LogRetention,
    Namespace,
    NativePolicy,
    Policy,
    PolicyArn,
    Price,
    Problems,
    Regions,
    RoleName,
    Schedule,
    SecurityGroupIds,
    SubnetIds,
    TagPatterns,
    Timezone,
    WholeNumber,
)

DEFAULT_MAX_CONCURRENCY = 32
"""Measured with `make bench` (200 x 500 images at 50 ms a call, alternating runs): 16 workers
took 10.0-11.3 s, with the calls in flight capped below what the latency needs; 24 to 64 took
7.6-9.5 s, and 32 halves down as well under 20% throttling (0 failures). Beyond 32 the gain is
within noise, and a higher cap only gives the limiter further to fall when ECR throttles."""
MAX_CONCURRENCY_LIMIT = 64
FAN_OUT_BATCH_SIZE_LIMIT = 1000
FAN_OUT_CONCURRENCY_LIMIT = 1000
"""A Distributed Map runs at most 10,000 child executions at once; 1000 keeps the account's
ECR throttling the bound, not the map."""
ARCHIVE_STORAGE_PRICE_PER_GB_MONTH = 0.10
"""ECR's archive storage class, first 150 TB a month (0.07 above), in us-east-1 and
ap-northeast-1 as checked in 2026: the same as standard storage. See README, "Settings"."""


CONFIG = ConfigDict(
    alias_generator=to_camel,
    validate_by_name=True,
    validate_by_alias=True,
    extra="forbid",
    field_title_generator=lambda name, _info: to_camel(name),
)


@dataclass(frozen=True, config=CONFIG)
class PolicySettings:
    """What expires, and what becomes of it."""

    keep_tagged_images: WholeNumber = Field(
        default=10, ge=1, le=10000, description="newest tagged images kept per repository"
    )
    untagged_grace_days: WholeNumber = Field(
        default=1, ge=1, le=3650, description="days an untagged image is kept"
    )
    protected_tags: TagPatterns = Field(
        default=("latest",), description="images with a matching tag are kept ([] for none)"
    )
    minimum_age_days: WholeNumber = Field(
        default=0, ge=0, le=3650, description="images younger than this are never deleted"
    )
    lifecycle_policy: Policy = Field(
        default=None,
        description="an ECR lifecycle policy; replaces keepTaggedImages and untaggedGraceDays",
    )
    expired_image_action: ExpiredImageAction = Field(
        default="delete",
        description="what happens to what the policy expires: delete it, or archive it "
        "(reversible)",
    )
    archive_retention_days: ArchiveRetentionDays = Field(
        default=None,
        description="with archive: delete archived images this many days after archiving "
        "(null: never)",
    )
    native_lifecycle_policy: NativePolicy = Field(
        default=None,
        description="an ECR lifecycle policy the nightly run puts on every selected repository "
        "(where it differs)",
    )
    sweep_images: Boolean = Field(
        default=True,
        description="false: the run deletes no image itself (it only enforces "
        "nativeLifecyclePolicy)",
    )
    native_lifecycle_policy_force: Boolean = Field(
        default=False,
        description="true: put nativeLifecyclePolicy even where it would expire images the sweep "
        "keeps (in use, children of kept indexes, referrers of kept images)",
    )

    @property
    def archives(self) -> bool:
        """Whether the sweeper moves images to the archive tier (and needs the IAM grant)."""
        return self.expired_image_action == "archive"

    @model_validator(mode="after")
    def _combinations(self) -> Self:
        """Settings that are each valid but don't go together."""
        found: list[str] = []
        if not self.sweep_images and self.native_lifecycle_policy is None:
            found.append(
                "sweepImages: false with no nativeLifecyclePolicy would make a run that does "
                "nothing; set nativeLifecyclePolicy (or nativeLifecyclePolicyFile), or leave "
                "sweepImages true"
            )
        if self.archive_retention_days is not None and not self.archives:
            found.append(
                f"archiveRetentionDays: got {self.archive_retention_days}; it applies only with "
                'expiredImageAction "archive" (with "delete", archived images are left alone); '
                "set expiredImageAction to archive or archiveRetentionDays to null"
            )
        rules = lifecycle.parse_policy(self.lifecycle_policy).rules if self.lifecycle_policy else ()
        transition = next((rule for rule in rules if rule.action == "transition"), None)
        if transition is not None and not self.archives:
            found.append(
                f"lifecyclePolicy: {transition.label} transitions images to archive; set "
                'expiredImageAction to "archive" (that grants ecr:UpdateImageStorageClass)'
            )
        archive_rule = next((r for r in rules if r.selection.storage_class == "archive"), None)
        if archive_rule is not None and self.archive_retention_days is not None:
            found.append(
                f"archiveRetentionDays and lifecyclePolicy: {archive_rule.label} already expires "
                "archived images; give one of them, not both"
            )
        if found:
            raise Problems(*found)
        return self

    def policy(
        self, keep_tagged_images: int | None = None, untagged_grace_days: int | None = None
    ) -> lifecycle.LifecyclePolicy:
        """The lifecycle policy in force: the one given, or the simple settings compiled, with a
        repository's own keep and grace days (its override tags) in place of the settings'."""
        if self.lifecycle_policy is not None:
            policy = lifecycle.parse_policy(self.lifecycle_policy)
        else:
            policy = lifecycle.simple_policy(
                self.keep_tagged_images if keep_tagged_images is None else keep_tagged_images,
                self.untagged_grace_days if untagged_grace_days is None else untagged_grace_days,
            )
        if self.archives:
            return lifecycle.archiving(policy, self.archive_retention_days)
        return policy


@dataclass(frozen=True, config=CONFIG)
class SelectionSettings:
    """Which repositories, in which regions and accounts."""

    include_repositories: IncludedRepositories = Field(
        default=("*",), description="repositories swept"
    )
    exclude_repositories: ExcludedRepositories = Field(
        default=(), description="repositories never swept ([] for none)"
    )
    regions: Regions = Field(
        default=(),
        description="regions swept from one deployment (default: the deployment's own region)",
    )
    accounts: Accounts = Field(
        default=(),
        description="accounts swept through crossAccountRoleName (default: the deployment's own "
        "account)",
    )
    cross_account_role_name: RoleName = Field(
        default="EcrSweeperMember", description="the role the sweeper assumes in each of `accounts`"
    )


@dataclass(frozen=True, config=CONFIG)
class ProtectionSettings:
    """What keeps an image that the policy would expire."""

    protect_ecs_images: Boolean = Field(
        default=True, description="keep images that ECS tasks and services use"
    )
    protect_previous_task_definitions: WholeNumber = Field(
        default=1,
        ge=0,
        le=100,
        description="keep the images of this many ACTIVE revisions older than each one an ECS "
        "service runs, in its family (rollback targets); 0 turns it off",
    )
    protect_scheduled_task_images: Boolean = Field(
        default=True,
        description="keep images of ECS tasks that EventBridge rules and Scheduler schedules start",
    )
    protect_batch_images: Boolean = Field(
        default=True, description="keep images of ACTIVE AWS Batch job definitions"
    )
    protect_lambda_images: Boolean = Field(
        default=True, description="keep images that Lambda functions use"
    )
    protect_sage_maker_images: Boolean = Field(
        default=True, description="keep images of SageMaker models and of what endpoints run"
    )
    protect_code_build_images: Boolean = Field(
        default=True, description="keep the build images of CodeBuild projects"
    )
    eks_clusters: EksClusters = Field(
        default=("*",),
        description="EKS clusters whose workloads' images are kept, by name pattern ([] turns "
        "EKS off)",
    )
    extra_image_references: Location = Field(
        default=None,
        description="s3://BUCKET/KEY or ssm:/NAME of a JSON list of more image references to keep",
    )
    extra_image_references_kms_key_arn: KmsKeyArn = Field(
        default=None,
        description="KMS key that encrypts the extra references document; the function may "
        "decrypt with it",
    )
    repository_tags_may_loosen: Boolean = Field(
        default=False,
        description="let a repository's ecr-sweeper:* tags loosen the settings too (keep fewer, "
        "wait less); by default a looser tag is ignored with a warning",
    )

    @field_validator("extra_image_references_kms_key_arn")
    @classmethod
    def _kms_key_needs_references(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value and not info.data.get("extra_image_references"):
            raise Problems(
                "extraImageReferencesKmsKeyArn: only used to read extraImageReferences, which "
                "is not set; set both, or neither"
            )
        return value


@dataclass(frozen=True, config=CONFIG)
class RunOptions:
    """How the run goes: for real or not, how parallel, and the prices its report uses."""

    dry_run: Boolean = Field(default=False, description="plan and report, delete nothing")
    storage_price_per_gb_month: Price = Field(
        default=0.10, description="USD per GB-month, for the savings estimate"
    )
    max_concurrency: WholeNumber = Field(
        default=DEFAULT_MAX_CONCURRENCY,
        ge=1,
        le=MAX_CONCURRENCY_LIMIT,
        description="ECR calls in flight at once (repositories and delete batches in parallel)",
    )
    archive_storage_price_per_gb_month: Price = Field(
        default=ARCHIVE_STORAGE_PRICE_PER_GB_MONTH,
        description="USD per GB-month of the archive storage class, for the savings estimate",
    )
    fan_out_batch_size: WholeNumber = Field(
        default=50,
        ge=1,
        le=FAN_OUT_BATCH_SIZE_LIMIT,
        description="repositories per child execution of the fan-out",
    )
    guard_max_deletion_fraction: Fraction = Field(
        default=0.5,
        description="a live run that would delete more than this share of the images it scanned "
        "holds and deletes nothing until approved (1: no share check)",
    )
    guard_max_deletions: DeletionCount = Field(
        default=None,
        description="a live run that would delete more images than this holds (null: no count "
        "check)",
    )


@dataclass(frozen=True, config=CONFIG)
class DeploySettings:
    """What only the stack reads: when the sweep runs, its logs, its alarm, the fan-out's shape."""

    schedule_expression: Schedule = Field(
        default="cron(0 3 * * ? *)", description="when the sweep runs"
    )
    schedule_timezone: Timezone = Field(default="UTC", description="time zone of the schedule")
    log_retention_days: LogRetention = Field(
        default=90, description="days the function's logs are kept"
    )
    log_level: LogLevel = Field(default="INFO", description="the function's log level")
    function_timeout_seconds: WholeNumber = Field(
        default=900, ge=60, le=900, description="the Lambda timeout"
    )
    function_memory_mb: WholeNumber = Field(
        default=1024, ge=128, le=10240, description="the Lambda memory size"
    )
    metrics_namespace: Namespace = Field(
        default="EcrSweeper", description="CloudWatch metrics namespace"
    )
    alarm_email: Email = Field(default=None, description="email subscribed to the alarm topic")
    permissions_boundary_arn: PolicyArn = Field(
        default=None,
        description="a managed policy set as the permissions boundary of every role the stacks "
        "create (null: none)",
    )
    fan_out: Boolean = Field(
        default=False,
        description="sweep through a Step Functions Distributed Map instead of one Lambda",
    )
    fan_out_concurrency: WholeNumber = Field(
        default=10,
        ge=1,
        le=FAN_OUT_CONCURRENCY_LIMIT,
        description="child executions of the fan-out running at once (the Map's MaxConcurrency)",
    )
    allow_unknown_regions: Boolean = Field(
        default=False,
        description="true: accept regions the installed AWS SDK doesn't know (newer than it); "
        "synth and the CLI refuse them otherwise",
    )
    vpc_subnet_ids: SubnetIds = Field(
        default=(),
        description="subnets the functions that read images in use run in (private EKS "
        "clusters); with vpcSecurityGroupIds",
    )
    vpc_security_group_ids: SecurityGroupIds = Field(
        default=(), description="security groups of those functions in the VPC; with vpcSubnetIds"
    )

    @model_validator(mode="after")
    def _vpc_together(self) -> Self:
        if bool(self.vpc_subnet_ids) != bool(self.vpc_security_group_ids):
            given, missing = (
                ("vpcSubnetIds", "vpcSecurityGroupIds")
                if self.vpc_subnet_ids
                else ("vpcSecurityGroupIds", "vpcSubnetIds")
            )
            raise Problems(
                f"{given}: a function in a VPC needs both subnets and security groups; set "
                f"{missing} too, or neither"
            )
        return self
