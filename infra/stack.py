"""The ecr-sweeper stack: function, schedule and monitoring. Environment-agnostic by design.

No account or region is read at synth (the template uses AWS::Region/AWS::AccountId), so
`cdk synth` needs no credentials and one template deploys anywhere.
"""

from __future__ import annotations

import tempfile
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from ecr_sweeper.core.settings import StackSettings
from infra.checkov import add_checkov_acknowledgments
from infra.config import cdk_json_context, settings_from_app
from infra.eks_access import EksViewAccess
from infra.fan_out import SweeperFanOut
from infra.function import SweeperFunction, apply_permissions_boundary
from infra.member import MEMBER_STACK_ID, EcrSweeperMemberStack
from infra.monitoring import SweeperMonitoring
from infra.schedule import FailedSweepsQueue, SweeperSchedule

STACK_ID = "EcrSweeper"


class EcrSweeperStack(cdk.Stack):
    """Everything ecr-sweeper deploys, built from validated Settings only."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: StackSettings, **kwargs: Any
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="ecr-sweeper: nightly Lambda that deletes untagged and outdated ECR images",
            **kwargs,
        )
        self.settings = settings
        apply_permissions_boundary(self, settings)
        self.failed_sweeps = FailedSweepsQueue(self, "FailedSweeps")
        self.sweeper = SweeperFunction(
            self, "Sweeper", settings=settings, dead_letter_queue=self.failed_sweeps.queue
        )
        self.fan_out = (
            SweeperFanOut(
                self,
                "FanOut",
                settings=settings,
                log_group=self.sweeper.log_group,
                sdk_layer=self.sweeper.sdk_layer,
                state_parameter=self.sweeper.cursor,
            )
            if settings.fan_out
            else None
        )
        # The roles that read the images in use: the single Lambda's and the fan-out's List.
        readers = [self.sweeper.role]
        if self.fan_out is not None:
            readers.append(self.fan_out.roles["List"])
        self.eks_access = EksViewAccess(
            self, "EksAccess", clusters=settings.eks_clusters, roles=readers
        )
        self.schedule = SweeperSchedule(
            self,
            "Schedule",
            function=self.sweeper.function,
            settings=settings,
            dead_letter_queue=self.failed_sweeps.queue,
            state_machine=self.fan_out.state_machine if self.fan_out else None,
        )
        self.monitoring = SweeperMonitoring(
            self,
            "Monitoring",
            function=self.sweeper.function,
            log_group=self.sweeper.log_group,
            settings=settings,
            failed_sweeps=self.failed_sweeps.queue,
        )
        if self.fan_out is not None:
            self.fan_out.add_failure_alarm(self.monitoring.topic)
        outputs = {
            "FunctionName": (self.sweeper.function.function_name, 'invoke with {"dryRun": true}'),
            "LogGroupName": (self.sweeper.log_group.log_group_name, "for Logs Insights queries"),
            "DashboardName": (self.monitoring.dashboard.dashboard_name, "CloudWatch dashboard"),
            "AlarmTopicArn": (self.monitoring.topic.topic_arn, "subscribe more endpoints here"),
            "SweeperRoleArn": (
                self.sweeper.role.role_arn,
                "give it read access to EKS clusters named by a wildcard (README: EKS clusters)",
            ),
            "FailedSweepsQueueUrl": (
                self.failed_sweeps.queue.queue_url,
                "sweeps that never ran (schedule not delivered, throttled, failed)",
            ),
            "StateParameterName": (
                self.sweeper.cursor.parameter_name,
                "the run cursor and the deletion guard's approval (ecr-sweeper approve)",
            ),
        }
        if self.fan_out is not None:
            outputs["FanOutListRoleArn"] = (
                self.fan_out.roles["List"].role_arn,
                "the fan-out's List reads EKS clusters too: give it read access as well",
            )
            outputs["StateMachineArn"] = (
                self.fan_out.state_machine.state_machine_arn,
                'start with {"dryRun": true} for a dry run',
            )
        for name, (value, description) in outputs.items():
            cdk.CfnOutput(self, name, value=value, description=description)


def add_compliance_checks(app: cdk.App) -> None:
    """cdk-nag's AwsSolutions pack as a CDK validation plugin: any finding fails synth."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def build_app(
    context: dict[str, Any] | None = None, *, outdir: str | None = None
) -> tuple[cdk.App, EcrSweeperStack]:
    """The app exactly as `cdk synth` builds it; tests pass cdk.json's context explicitly.

    Raises SettingsError (naming every bad key) before any construct exists.
    """
    app = cdk.App(context=context, outdir=outdir)
    settings = settings_from_app(app)
    stack = EcrSweeperStack(app, STACK_ID, settings=settings)
    if settings.accounts:
        EcrSweeperMemberStack(app, MEMBER_STACK_ID, settings=settings)
    add_compliance_checks(app)
    add_checkov_acknowledgments(app)
    return app, stack


def synthesized_template(context: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stack's CloudFormation template, synthesized offline (cdk-nag included).

    `context` defaults to cdk.json's. For tests that compare the template with the handler, e.g.
    `template_metrics.custom_metric_names(synthesized_template(), namespace)`.
    """
    with tempfile.TemporaryDirectory(prefix="ecr-sweeper-synth-") as outdir:
        app, stack = build_app(cdk_json_context() if context is None else context, outdir=outdir)
        template: dict[str, Any] = app.synth().get_stack_by_name(stack.stack_name).template
    return template
