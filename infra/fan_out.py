"""The Step Functions fan-out (settings: fanOut): List, a Distributed Map of Plan children, Check
(the deletion guard over the run's total), a Distributed Map of Sweep children, and Summarize,
with the run bucket that carries the work items, the in-use snapshot, the plans and the results.
A dry run skips Plan and Check; a run Check holds skips the Sweep Map.

The definition is written as ASL (`fan_out_definition`; CDK resolves the ARN tokens in its
JSON), so the template holds exactly what the
tests run on moto's ASL interpreter. Each child sweeps a batch of repositories that List grouped
(moto's interpreter, like the definition we deploy, has no ItemBatcher).
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from ecr_sweeper.aws import permissions
from ecr_sweeper.aws.ssm import STATE_PARAMETER_VARIABLE
from ecr_sweeper.core.settings import StackSettings, function_environment
from ecr_sweeper.sweep import fan_out
from infra.checkov import acknowledge_checkov
from infra.function import (
    ARCHITECTURE,
    FAN_OUT_ASSUMING_KINDS,
    POWERTOOLS_LAYER_ARN,
    RUNTIME,
    function_role,
    retention_for,
    run_in_vpc,
    sweeper_code,
    sweeper_role_name,
)
from infra.grants import (
    Grant,
    extra_references_grants,
    in_use_grants,
    member_role_grants,
    nag_resource,
    own_bucket_condition,
    registry_listing_grants,
    repository_grants,
    repository_reading_grants,
)

HANDLERS = {
    "List": "ecr_sweeper.handlers.fan_out.list_handler",
    "Plan": "ecr_sweeper.handlers.fan_out.plan_handler",
    "Check": "ecr_sweeper.handlers.fan_out.check_handler",
    "Sweep": "ecr_sweeper.handlers.fan_out.sweep_handler",
    "Summarize": "ecr_sweeper.handlers.fan_out.summarize_handler",
}
RUN_DOCUMENTS_DAYS = 14
"""Run documents expire after two weeks: enough to look into a run, too short to pile up."""

LAMBDA_RETRY_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
"""Lambda's transient errors and throttling: retried with backoff, as the Step Functions docs
recommend for every Lambda task."""

RETRY: dict[str, Any] = {
    "ErrorEquals": list(LAMBDA_RETRY_ERRORS),
    "IntervalSeconds": 2,
    "MaxAttempts": 6,
    "BackoffRate": 2,
}
RUN_DOCUMENT_WRITES = (
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:PutObjectTagging",
    "s3:RestoreObject",
)
"""What the run bucket's policy denies to every principal but the fan-out's writing steps."""

STEP_TIMEOUT_MARGIN_SECONDS = 60
"""A task waits this much longer than its Lambda's timeout before Step Functions gives up on it."""


def _invoke(function_arn: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Lambda task (the optimized integration) whose output is the function's return value."""
    parameters: dict[str, Any] = {"FunctionName": function_arn}
    if payload is None:
        parameters["Payload.$"] = "$"
    else:
        parameters["Payload"] = payload
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": parameters,
        "OutputPath": "$.Payload",
        "Retry": [RETRY],
    }


def child_input() -> dict[str, str]:
    """What each child execution gets: its work item as List wrote it (inline or from the
    manifest), and the run (its id and its run document's SHA-256) from the execution's own
    state, List's output, which no one else writes. The child checks the one against the other
    (`sweep.fan_out.checked_batch`)."""
    return {"item.$": "$$.Map.Item.Value", "run.$": "$.run"}


def _batches(
    step: str, function_arn: str, comment: str, settings: StackSettings, then: str
) -> dict[str, Any]:
    """A Distributed Map of `step` children over the work items (inline, or the S3 manifest),
    each child getting `child_input()`: the states `<step>Route`, `<step>Inline` and
    `<step>FromManifest`."""
    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": step,
        "States": {
            step: {
                **_invoke(function_arn),
                "Comment": comment,
                "TimeoutSeconds": settings.function_timeout_seconds + STEP_TIMEOUT_MARGIN_SECONDS,
                "Catch": [
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "BatchFailed"}
                ],
                "End": True,
            },
            "BatchFailed": {
                "Type": "Pass",
                "Comment": "Summarize reports the batch's repositories as failed",
                "Parameters": {"batch.$": "$.item.batch", "failed": True},
                "End": True,
            },
        },
    }
    common = {
        "Type": "Map",
        "ItemSelector": child_input(),
        "ItemProcessor": processor,
        "MaxConcurrency": settings.fan_out_concurrency,
        "ResultPath": None,
        "Next": then,
    }
    return {
        f"{step}Route": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.manifestKey", "IsPresent": True, "Next": f"{step}FromManifest"}
            ],
            "Default": f"{step}Inline",
        },
        f"{step}Inline": {**common, "ItemsPath": "$.items"},
        f"{step}FromManifest": {
            **common,
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "JSON"},
                "Parameters": {"Bucket.$": "$.bucket", "Key.$": "$.manifestKey"},
            },
        },
    }


def fan_out_definition(
    *,
    list_arn: str,
    plan_arn: str,
    check_arn: str,
    sweep_arn: str,
    summarize_arn: str,
    settings: StackSettings,
) -> dict[str, Any]:
    """The state machine, as ASL. ARNs may be CDK tokens.

    A live run plans every batch first (the Plan Map), Check sums the plans under the deletion
    guard, and only a run it lets proceed reaches the Sweep Map; both Maps read List's items.
    """
    return {
        "Comment": "ecr-sweeper fan-out: List, plan batches, Check (the deletion guard), sweep "
        "batches, Summarize",
        "StartAt": "List",
        "States": {
            "List": {**_invoke(list_arn), "Next": "Route"},
            "Route": {
                "Type": "Choice",
                "Comment": "a dry run deletes nothing: no guard, straight to the Sweep Map",
                "Choices": [{"Variable": "$.dryRun", "BooleanEquals": True, "Next": "SweepRoute"}],
                "Default": "PlanRoute",
            },
            **_batches(
                "Plan",
                plan_arn,
                "plan one batch of repositories; it writes nothing to ECR",
                settings,
                then="Check",
            ),
            "Check": {
                **_invoke(check_arn, {"runId.$": "$.runId"}),
                "Comment": "the deletion guard over every batch's plan",
                "OutputPath": "$",
                "ResultSelector": {"held.$": "$.Payload.held"},
                "ResultPath": "$.guard",
                "Next": "Held",
            },
            "Held": {
                "Type": "Choice",
                "Comment": "a held run deletes nothing: no child sweeps",
                "Choices": [
                    {"Variable": "$.guard.held", "BooleanEquals": True, "Next": "Summarize"}
                ],
                "Default": "SweepRoute",
            },
            **_batches(
                "Sweep",
                sweep_arn,
                "one batch of repositories; one repository's error never fails it",
                settings,
                then="Summarize",
            ),
            "Summarize": {**_invoke(summarize_arn, {"runId.$": "$.runId"}), "End": True},
        },
    }


_ACK_BUCKET_LOGS = (
    "The run bucket holds scratch documents of the sweeper's own runs (work items, the in-use "
    "snapshot, per-batch results), written and read only by the sweeper's roles and expired "
    "after two weeks; the audit trail is the function's log group. Server access logs would need "
    "another bucket for no reader."
)
_ACK_RUN_OBJECTS = (
    "Run documents are written under runs/<runId>/, a prefix only known at run time; the grant is "
    "limited to that prefix of this stack's own bucket."
)
_ACK_CHILD_EXECUTIONS = (
    "A Distributed Map starts child executions of this very state machine, whose execution names "
    "are only known at run time; the grant is limited to this state machine's executions."
)
_CHECKOV_STEP = {
    "CKV_AWS_115": "A step runs only when the state machine invokes it: at most "
    "fanOutConcurrency Sweep children at once (the Map's MaxConcurrency), one List and one "
    "Summarize per execution. Reserved concurrency would take from the account's pool for that.",
    "CKV_AWS_116": "Step Functions invokes the steps synchronously, retries them and catches "
    "their failures (a failed batch is reported by Summarize); a dead-letter queue serves "
    "asynchronous invocations only.",
}
_ACK_DELIVERY = (
    "CloudWatch Logs delivery and X-Ray actions (state machine logging and tracing) support no "
    "resource-level permissions."
)


class SweeperFanOut(Construct):
    """A Standard state machine: List, a Distributed Map of Sweep children, Summarize.

    Each step's function has a role of its own with exactly what its code calls (List: read the
    registry's listing and the in-use sources, write the run; Sweep: read and delete in the
    selected repositories, read the run, write its results; Summarize: read the results), and
    only List and Sweep may write to the run bucket."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        log_group: logs.ILogGroup,
        sdk_layer: lambda_.ILayerVersion,
        state_parameter: ssm.IStringParameter,
    ) -> None:
        super().__init__(scope, construct_id)
        self._state_parameter = state_parameter
        stack = cdk.Stack.of(self)
        self.bucket = s3.Bucket(
            self,
            "Runs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # An overwritten or deleted run document stays readable as an older version: what
            # was tampered with, and when, can be seen (children refuse it by its digest).
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=cdk.Duration.days(RUN_DOCUMENTS_DAYS),
                    noncurrent_version_expiration=cdk.Duration.days(RUN_DOCUMENTS_DAYS),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
        )
        cdk.Validations.of(self.bucket).acknowledge(
            cdk.Acknowledgment(id="AwsSolutions-S1", reason=_ACK_BUCKET_LOGS)
        )
        self.roles = {
            step: function_role(
                self,
                f"{step}Role",
                role_name=sweeper_role_name(step.lower(), cdk.Aws.REGION)
                if settings.accounts and step.lower() in FAN_OUT_ASSUMING_KINDS
                else None,
                description=f"ecr-sweeper fan-out: the {step} step",
                log_group=log_group,
                grants=grants,
            )
            for step, grants in self._step_grants(settings).items()
        }
        self._protect_run_documents(
            writers=[self.roles[step] for step in ("List", "Plan", "Check", "Sweep")]
        )
        environment = {
            **function_environment(settings),
            fan_out.BUCKET_VARIABLE: self.bucket.bucket_name,
            # Check reads (and records the use of) an approval of a held run there.
            STATE_PARAMETER_VARIABLE: state_parameter.parameter_name,
        }
        layer = lambda_.LayerVersion.from_layer_version_arn(
            self, "Powertools", POWERTOOLS_LAYER_ARN
        )
        self.functions: dict[str, lambda_.Function] = {}
        for step, handler in HANDLERS.items():
            self.functions[step] = lambda_.Function(
                self,
                step,
                description=f"ecr-sweeper fan-out: the {step} step",
                runtime=RUNTIME,
                architecture=ARCHITECTURE,
                handler=handler,
                code=sweeper_code(),
                layers=[layer, sdk_layer],
                timeout=cdk.Duration.seconds(settings.function_timeout_seconds),
                memory_size=settings.function_memory_mb,
                tracing=lambda_.Tracing.ACTIVE,
                # Step Functions retries (with backoff) and catches; Lambda must not retry too.
                retry_attempts=0,
                environment=environment,
                log_group=log_group,
                role=self.roles[step],
            )
            if step == "List":  # the step that reads the images in use (EKS clusters too)
                run_in_vpc(self.functions[step], self.roles[step], settings)
            cdk.Validations.of(self.functions[step]).acknowledge(
                cdk.Acknowledgment(
                    id="AwsSolutions-L1",
                    reason="python3.12 is the runtime the code, its tests and the pinned "
                    "Powertools layer target, as for the sweeper function.",
                )
            )
            function = self.functions[step].node.default_child
            assert isinstance(function, cdk.CfnResource)
            acknowledge_checkov(function, _CHECKOV_STEP)

        name = f"{stack.stack_name}-FanOut"
        state_machine_arn = stack.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=name,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        definition = fan_out_definition(
            list_arn=self.functions["List"].function_arn,
            plan_arn=self.functions["Plan"].function_arn,
            check_arn=self.functions["Check"].function_arn,
            sweep_arn=self.functions["Sweep"].function_arn,
            summarize_arn=self.functions["Summarize"].function_arn,
            settings=settings,
        )
        self.log_group = logs.LogGroup(
            self,
            "ExecutionLogs",
            retention=retention_for(settings.log_retention_days),
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.role = iam.Role(
            self,
            "Role",
            description="ecr-sweeper fan-out: invoke its own functions, run its own children",
            assumed_by=iam.ServicePrincipal(
                "states.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": state_machine_arn},
                },
            ),
        )
        manifests = f"{fan_out.RUNS_FOLDER}*/{fan_out.MANIFEST_DOCUMENT}"
        statements = [
            iam.PolicyStatement(
                sid="InvokeSteps",
                actions=["lambda:InvokeFunction"],
                resources=[f.function_arn for f in self.functions.values()],
            ),
            iam.PolicyStatement(
                sid="StartChildren",
                actions=["states:StartExecution"],
                resources=[state_machine_arn],
            ),
            iam.PolicyStatement(
                sid="ManageChildren",
                actions=["states:DescribeExecution", "states:StopExecution"],
                resources=[
                    stack.format_arn(
                        service="states",
                        resource="execution",
                        resource_name=f"{name}/*",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            ),
            self._run_documents(
                "ReadManifest", permissions.S3_RUN_READ_ACTIONS, [manifests]
            ).statement(),
        ]
        for statement in statements:
            self.role.add_to_policy(statement)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(json.dumps(definition)),
            role=self.role,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL),
        )
        policy = self.role.node.try_find_child("DefaultPolicy")
        assert policy is not None, "the role's policy is created by add_to_policy above"
        cdk.Validations.of(policy).acknowledge(
            cdk.Acknowledgment(id="AwsSolutions-IAM5[Resource::*]", reason=_ACK_DELIVERY),
            cdk.Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{nag_resource(self, statements[3].resources[0])}]",
                reason=_ACK_RUN_OBJECTS,
            ),
            cdk.Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{nag_resource(self, statements[2].resources[0])}]",
                reason=_ACK_CHILD_EXECUTIONS,
            ),
        )

    def _step_grants(self, settings: StackSettings) -> dict[str, list[Grant]]:
        """What each step's code calls: the grant families, and its own run documents."""
        run, in_use, results = (
            f"{fan_out.RUNS_FOLDER}*/{fan_out.RUN_DOCUMENT}",
            f"{fan_out.RUNS_FOLDER}*/{fan_out.IN_USE_FOLDER}*",
            f"{fan_out.RUNS_FOLDER}*/{fan_out.RESULTS_FOLDER}*",
        )
        plans, guard = (
            f"{fan_out.RUNS_FOLDER}*/{fan_out.PLANS_FOLDER}*",
            f"{fan_out.RUNS_FOLDER}*/{fan_out.GUARD_DOCUMENT}",
        )
        manifest = f"{fan_out.RUNS_FOLDER}*/{fan_out.MANIFEST_DOCUMENT}"
        write, read = permissions.S3_RUN_WRITE_ACTIONS, permissions.S3_RUN_READ_ACTIONS
        return {
            "List": [
                *registry_listing_grants(self, settings),
                *in_use_grants(self, settings),
                *extra_references_grants(self, settings),
                *member_role_grants(self, settings),
                self._run_documents("WriteRun", write, [run, in_use, manifest]),
            ],
            "Plan": [
                *repository_reading_grants(self, settings),
                *member_role_grants(self, settings),
                self._run_documents("ReadRun", read, [run, in_use]),
                self._run_documents("WritePlans", write, [plans]),
            ],
            "Check": [
                self._run_documents("ReadPlans", read, [run, plans]),
                self._listing("ListPlans"),
                self._run_documents("WriteGuard", write, [guard]),
                Grant(
                    "ApprovalInStateParameter",
                    permissions.SSM_CURSOR_ACTIONS,
                    (self._state_parameter.parameter_arn,),
                ),
            ],
            "Sweep": [
                *repository_grants(self, settings),
                *member_role_grants(self, settings),
                self._run_documents("ReadRun", read, [run, in_use, plans, guard]),
                self._run_documents("WriteResults", write, [results]),
            ],
            "Summarize": [
                self._run_documents("ReadResults", read, [run, results, plans, guard]),
                self._listing("ListResults"),
            ],
        }

    def _listing(self, sid: str) -> Grant:
        """List the run documents of this account's run bucket."""
        return Grant(
            sid,
            permissions.S3_RUN_BUCKET_ACTIONS,
            (self.bucket.bucket_arn,),
            conditions={
                **own_bucket_condition(self),
                "StringLike": {"s3:prefix": f"{fan_out.RUNS_FOLDER}*"},
            },
        )

    def _run_documents(self, sid: str, actions: tuple[str, ...], patterns: list[str]) -> Grant:
        """`actions` on these run documents (key patterns) of this account's run bucket."""
        return Grant(
            sid,
            actions,
            tuple(self.bucket.arn_for_objects(pattern) for pattern in patterns),
            _ACK_RUN_OBJECTS,
            conditions=own_bucket_condition(self),
        )

    def _protect_run_documents(self, *, writers: list[iam.Role]) -> None:
        """Only the steps that write run documents may: anyone else with s3:PutObject in the
        account could otherwise blank the in-use snapshot between List and Sweep."""
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheFanOutWritesRunDocuments",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=list(RUN_DOCUMENT_WRITES),
                resources=[self.bucket.arn_for_objects("*")],
                conditions={
                    "ArnNotEquals": {"aws:PrincipalArn": [role.role_arn for role in writers]}
                },
            )
        )

    def add_failure_alarm(self, topic: sns.ITopic) -> cloudwatch.Alarm:
        """Executions that failed, timed out or were aborted (List or Summarize failed after
        their retries): the run's metrics may be missing, so alarm on the execution itself."""
        alarm = cloudwatch.Alarm(
            self,
            "ExecutionsFailed",
            alarm_description=(
                "A fan-out execution failed, timed out or was aborted. Open it in the Step "
                "Functions console (StateMachineArn output) to see which step failed and why."
            ),
            metric=cloudwatch.MathExpression(
                expression="failed + timedOut + aborted",
                using_metrics={
                    "failed": self.state_machine.metric_failed(period=cdk.Duration.hours(1)),
                    "timedOut": self.state_machine.metric_timed_out(period=cdk.Duration.hours(1)),
                    "aborted": self.state_machine.metric_aborted(period=cdk.Duration.hours(1)),
                },
                period=cdk.Duration.hours(1),
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        action = cloudwatch_actions.SnsAction(topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        return alarm
