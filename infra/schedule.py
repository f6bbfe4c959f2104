"""The nightly trigger: an EventBridge Scheduler schedule invoking the sweeper Lambda (or, with
fanOut, starting the fan-out state machine).

Written with the L1 CfnSchedule and an explicit role: the L2 Lambda target also grants
`<function>:*` (every version and alias), and the schedule only ever invokes the function itself.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from ecr_sweeper.settings import Settings

SCHEDULE_INPUT: dict[str, object] = {}
"""The payload of a scheduled run: empty, so `dryRun` comes from the settings alone."""

RETRY_ATTEMPTS = 2
"""Scheduler retries a failed *delivery* (throttled or unavailable Lambda API), not a failed run."""

MAXIMUM_EVENT_AGE_SECONDS = 3600
"""A sweep that can't be delivered within an hour waits for the next night instead."""


class SweeperSchedule(Construct):
    """Runs the sweeper on `scheduleExpression` in `scheduleTimezone`, exactly on time."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.IFunction,
        settings: Settings,
        state_machine: sfn.IStateMachine | None = None,
    ) -> None:
        """With `state_machine` (settings: fanOut) the schedule starts it instead of invoking
        the function; the role may then do only that."""
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            description="EventBridge Scheduler: invoke the ecr-sweeper function, nothing else",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={
                    "StringEquals": {
                        "aws:SourceAccount": stack.account,
                        "aws:SourceArn": stack.format_arn(
                            service="scheduler",
                            resource="schedule-group",
                            resource_name="default",
                        ),
                    }
                },
            ),
        )
        if state_machine is None:
            target_arn = function.function_arn
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="InvokeSweeper",
                    actions=["lambda:InvokeFunction"],
                    resources=[function.function_arn],
                )
            )
        else:
            target_arn = state_machine.state_machine_arn
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="StartFanOut",
                    actions=["states:StartExecution"],
                    resources=[state_machine.state_machine_arn],
                )
            )
        self.schedule = scheduler.CfnSchedule(
            self,
            "Schedule",
            description="ecr-sweeper nightly sweep",
            schedule_expression=settings.schedule_expression,
            schedule_expression_timezone=settings.schedule_timezone,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED",
            target=scheduler.CfnSchedule.TargetProperty(
                arn=target_arn,
                role_arn=self.role.role_arn,
                input=json.dumps(SCHEDULE_INPUT),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=RETRY_ATTEMPTS,
                    maximum_event_age_in_seconds=MAXIMUM_EVENT_AGE_SECONDS,
                ),
            ),
        )
        # The role's policy must exist before the schedule first fires.
        policy = self.role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            self.schedule.node.add_dependency(policy)
