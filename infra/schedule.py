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
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from ecr_sweeper.core.settings import StackSettings

SCHEDULE_INPUT: dict[str, object] = {}
"""The payload of a scheduled run: empty, so `dryRun` comes from the settings alone."""

RETRY_ATTEMPTS = 2
"""Scheduler retries a failed *delivery* (throttled or unavailable Lambda API), not a failed run."""

MAXIMUM_EVENT_AGE_SECONDS = 3600
"""A sweep that can't be delivered, or can't start, within an hour waits for the next night
instead; its event goes to the failed-sweeps queue, whose alarm says so."""

FAILED_SWEEPS_RETENTION = cdk.Duration.days(14)
"""SQS's longest retention: two weeks to notice the alarm and look at the events."""


class FailedSweepsQueue(Construct):
    """Where a nightly sweep that never ran ends up, instead of vanishing.

    Two ways in: EventBridge Scheduler could not deliver the invocation after its retries (its
    dead-letter queue), or Lambda accepted it but could not run it successfully, for example
    because another sweep held the only reserved concurrency for longer than the event may wait,
    or the run failed (the function's on-failure destination). SQS-managed encryption at rest,
    TLS only.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=FAILED_SWEEPS_RETENTION,
        )


class SweeperSchedule(Construct):
    """Runs the sweeper on `scheduleExpression` in `scheduleTimezone`, exactly on time."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.IFunction,
        settings: StackSettings,
        dead_letter_queue: sqs.IQueue | None = None,
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
        dead_letter_config = None
        if dead_letter_queue is not None:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="SendUndeliveredToDeadLetterQueue",
                    actions=["sqs:SendMessage"],
                    resources=[dead_letter_queue.queue_arn],
                )
            )
            dead_letter_config = scheduler.CfnSchedule.DeadLetterConfigProperty(
                arn=dead_letter_queue.queue_arn
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
                dead_letter_config=dead_letter_config,
            ),
        )
        # The role's policy must exist before the schedule first fires.
        policy = self.role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            self.schedule.node.add_dependency(policy)
