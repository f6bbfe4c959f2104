"""Alarms, their SNS topic and the CloudWatch dashboard (issue 6).

Every custom metric is read with the dimensions the handler writes: Powertools' `service` plus
`Mode`. Alarms read Mode=Live only, so a dry run can never page anyone or hide a missed sweep.
Metric names come from metrics_catalog and log fields from log_events, never from literals.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core import metrics_catalog as names
from ecr_sweeper.core.settings import StackSettings

SERVICE_DIMENSION = "service"
"""The dimension Powertools Metrics adds to every metric, valued POWERTOOLS_SERVICE_NAME."""

NIGHT = cdk.Duration.days(1)
HOUR = cdk.Duration.hours(1)
BYTES_PER_GB = 1_000_000_000

MISSED_RUN_HOURS = 26
"""Alarm when no live run completed in this many hours: a day plus slack for a slow run."""

DURATION_ALARM_FRACTION = 0.8
"""Alarm when a run takes more than this share of the Lambda timeout."""

TOPIC_ENCRYPTION_DECISION = (
    "The alarm topic is not KMS-encrypted at rest. Its messages carry only alarm names, states "
    "and metric values, no secrets. The AWS-managed alias/aws/sns key can't be used (CloudWatch "
    "alarms can't publish to topics encrypted with it), and a customer-managed key would add a "
    "monthly key charge and an account-root kms:* key policy for protection these messages don't "
    "need. Publishing requires TLS (enforce_ssl). cdk-nag 3's AwsSolutions pack has no SNS "
    "encryption rule (SNS2 is gone), so nothing needs acknowledging."
)


class SweeperMonitoring(Construct):
    """Nine alarms to an SNS topic, and a dashboard answering 'what did the sweeper do?'."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.Function,
        log_group: logs.ILogGroup,
        settings: StackSettings,
        failed_sweeps: sqs.IQueue | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        self._function = function
        self._failed_sweeps = failed_sweeps
        self.topic = self._alarm_topic(settings.alarm_email)
        self.alarms = self._alarms()
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            default_interval=cdk.Duration.days(14),
            widgets=self._widgets(log_group.log_group_name),
        )

    # Metrics ------------------------------------------------------------------------------

    def metric(
        self,
        name: str,
        *,
        mode: str = names.MODE_LIVE,
        statistic: str = cloudwatch.Stats.SUM,
        period: cdk.Duration = NIGHT,
        label: str | None = None,
    ) -> cloudwatch.Metric:
        """One of the handler's metrics, exactly as it emits it (namespace and dimensions)."""
        return cloudwatch.Metric(
            namespace=self._settings.metrics_namespace,
            metric_name=name,
            dimensions_map={SERVICE_DIMENSION: names.SERVICE, names.MODE_DIMENSION: mode},
            statistic=statistic,
            period=period,
            label=label or name,
        )

    # Alarms -------------------------------------------------------------------------------

    def _alarm_topic(self, email: str | None) -> sns.Topic:
        topic = sns.Topic(self, "AlarmTopic", display_name="ecr-sweeper alarms", enforce_ssl=True)
        stack = cdk.Stack.of(self)
        # enforce_ssl gives the topic a resource policy, which replaces SNS's default one; without
        # this statement CloudWatch alarms would be refused when they publish.
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )
        if email is not None:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        return topic

    def _above_zero(self, construct_id: str, metric: str, description: str) -> cloudwatch.Alarm:
        """An alarm on any live-run count of this metric in an hour."""
        return cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=description,
            metric=self.metric(metric, period=HOUR),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _alarms(self) -> list[cloudwatch.Alarm]:
        timeout_ms = self._settings.function_timeout_seconds * 1000
        not_breaching = cloudwatch.TreatMissingData.NOT_BREACHING
        alarms = [
            cloudwatch.Alarm(
                self,
                "FunctionErrors",
                alarm_description=(
                    "The sweeper Lambda failed (exception or timeout). Check the dashboard's "
                    "'Errors and warnings' panel for the run's ERROR records."
                ),
                metric=self._function.metric_errors(statistic=cloudwatch.Stats.SUM, period=HOUR),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=not_breaching,
            ),
            self._above_zero(
                "DeleteFailures",
                names.DELETE_FAILURES,
                "A live sweep could not delete some images it meant to delete. They are kept; "
                f"see '{ev.IMAGE_DELETE_FAILED}' records for the repositories and error codes.",
            ),
            self._above_zero(
                "FailedRepositories",
                names.FAILED_REPOSITORIES,
                "A live sweep failed in some repositories, or deleted nothing there because it "
                "could not decide safely (an index or the images in use could not be read). "
                f"See '{ev.REPOSITORY_FAILED}' and '{ev.USAGE_UNAVAILABLE}' records.",
            ),
            self._above_zero(
                "UnfinishedRepositories",
                names.UNFINISHED_REPOSITORIES,
                "A live sweep ran out of its time budget before finishing every repository. "
                "The next run starts with the unfinished ones (see 'repositoriesUnfinished' in "
                f"the '{ev.RUN_SUMMARY}' record); if this repeats, lower the work per run or "
                "raise maxConcurrency.",
            ),
            self._above_zero(
                "CursorFailures",
                names.CURSOR_FAILURES,
                "A live sweep could not read or write its resume cursor (the stack's state "
                "parameter), so the next run starts again at the first repository and target, "
                "and with time running out those after it are never reached. See "
                f"'{ev.CURSOR_UNAVAILABLE}' records (usually a missing ssm:GetParameter or "
                "ssm:PutParameter grant on StateParameterName, or throttling).",
            ),
            # "No live run completed in 26 h": each hourly datapoint breaches when it holds no
            # RunCompleted (Sum < 1, or no data at all: BREACHING); the alarm needs all 26 of the
            # last 26 hours to breach, i.e. no hour in the window saw a completed run.
            cloudwatch.Alarm(
                self,
                "NoRecentRun",
                alarm_description=(
                    f"No live sweep completed in the last {MISSED_RUN_HOURS} hours: the schedule "
                    "is disabled, the function fails before finishing, or only dry runs ran."
                ),
                metric=self.metric(names.RUN_COMPLETED, period=HOUR),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=MISSED_RUN_HOURS,
                datapoints_to_alarm=MISSED_RUN_HOURS,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            ),
            self._above_zero(
                "GuardHeld",
                names.GUARD_HELD,
                "The deletion guard held a live run: its plan would have deleted more than "
                "guardMaxDeletionFraction of the images it scanned (or more than "
                "guardMaxDeletions), so it deleted nothing. On the first night after deploy this "
                "is expected. Review the run (`ecr-sweeper runs`, then `ecr-sweeper runs show "
                f"RUN_ID`, or the '{ev.GUARD_HELD}' record), then approve it with `ecr-sweeper "
                "approve RUN_ID`, or fix the settings if the plan is wrong.",
            ),
            cloudwatch.Alarm(
                self,
                "DurationNearTimeout",
                alarm_description=(
                    f"A sweep used more than {DURATION_ALARM_FRACTION:.0%} of the "
                    f"{self._settings.function_timeout_seconds} s Lambda timeout; raise "
                    "functionTimeoutSeconds or narrow includeRepositories before runs time out."
                ),
                metric=self._function.metric_duration(
                    statistic=cloudwatch.Stats.MAXIMUM, period=HOUR
                ),
                threshold=DURATION_ALARM_FRACTION * timeout_ms,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=not_breaching,
            ),
        ]
        if self._failed_sweeps is not None:
            alarms.append(self._failed_sweeps_alarm(self._failed_sweeps))
        action = cloudwatch_actions.SnsAction(self.topic)
        for alarm in alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
        return alarms

    def _failed_sweeps_alarm(self, queue: sqs.IQueue) -> cloudwatch.Alarm:
        """Any message in the failed-sweeps queue: a sweep that never ran, or failed."""
        return cloudwatch.Alarm(
            self,
            "FailedSweeps",
            alarm_description=(
                "A sweep did not run: EventBridge Scheduler could not deliver it, Lambda throttled "
                "it (another sweep held the reserved concurrency) for longer than it may wait, "
                "or the run failed. Each message in the FailedSweepsQueueUrl queue holds the "
                "event and why; read them, then purge the queue to clear the alarm."
            ),
            metric=queue.metric_approximate_number_of_messages_visible(
                statistic=cloudwatch.Stats.MAXIMUM, period=cdk.Duration.minutes(5)
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    # Dashboard ----------------------------------------------------------------------------

    def _widgets(self, log_group_name: str) -> list[list[cloudwatch.IWidget]]:
        price = self._settings.storage_price_per_gb_month
        timeout = self._settings.function_timeout_seconds
        gb_expression = f"bytes / {BYTES_PER_GB}"
        saving_expression = f"bytes / {BYTES_PER_GB} * {price}"
        reclaimed = {"bytes": self.metric(names.BYTES_RECLAIMED)}

        settings = self._settings
        header = cloudwatch.TextWidget(
            width=24,
            height=2,
            markdown=(
                "# ecr-sweeper\n"
                "Live runs only unless a panel says **DryRun**. Storage price used for savings: "
                f"**{price} USD per GB-month**. Metric namespace `{settings.metrics_namespace}`, "
                f"schedule `{settings.schedule_expression}` ({settings.schedule_timezone}). "
                "See docs/dashboard.md."
            ),
        )
        deleted = cloudwatch.GraphWidget(
            title="Images deleted per night",
            width=8,
            left=[
                self.metric(names.IMAGES_DELETED, label="images deleted"),
                self.metric(names.IMAGES_ARCHIVED, label="images archived"),
            ],
            left_y_axis=cloudwatch.YAxisProps(min=0, label="images", show_units=False),
        )
        gigabytes = cloudwatch.GraphWidget(
            title="GB reclaimed per night",
            width=8,
            left=[
                cloudwatch.MathExpression(
                    expression=gb_expression,
                    using_metrics=reclaimed,
                    label="GB reclaimed (sum of deleted image sizes)",
                    period=NIGHT,
                ),
                cloudwatch.MathExpression(
                    expression=f"archived / {BYTES_PER_GB}",
                    using_metrics={"archived": self.metric(names.BYTES_ARCHIVED)},
                    label="GB moved to the archive storage class",
                    period=NIGHT,
                ),
            ],
            left_y_axis=cloudwatch.YAxisProps(min=0, label="GB", show_units=False),
        )
        saving_label = f"USD/month saved at {price} USD per GB-month"
        saving = cloudwatch.GraphWidget(
            title=f"Estimated monthly saving per night (at {price} USD/GB-month)",
            width=8,
            left=[
                cloudwatch.MathExpression(
                    expression=saving_expression,
                    using_metrics=reclaimed,
                    label=f"{saving_label}, from that night's deletions",
                    period=NIGHT,
                )
            ],
            left_y_axis=cloudwatch.YAxisProps(min=0, label="USD / month", show_units=False),
        )
        saving_total = cloudwatch.SingleValueWidget(
            title=f"Estimated monthly saving from deletions in the time range ({price} USD/GB-mo)",
            width=8,
            height=6,
            set_period_to_time_range=True,
            metrics=[
                cloudwatch.MathExpression(
                    expression=saving_expression,
                    using_metrics=reclaimed,
                    label=saving_label,
                    period=NIGHT,
                )
            ],
        )
        failures = cloudwatch.GraphWidget(
            title="Failures per night",
            width=8,
            left=[
                self.metric(names.DELETE_FAILURES, label="images that failed to delete"),
                self.metric(names.FAILED_REPOSITORIES, label="repositories that failed"),
                self.metric(
                    names.UNFINISHED_REPOSITORIES, label="repositories left for the next run"
                ),
            ],
            right=[self.metric(names.THROTTLED_CALLS, label="ECR calls throttled (retried)")],
            left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
            right_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
        )
        alarm_status = cloudwatch.AlarmStatusWidget(
            title="Alarms", width=8, height=6, alarms=self.alarms
        )
        duration = cloudwatch.GraphWidget(
            title=f"Run duration against the {timeout} s timeout",
            width=8,
            left=[
                self.metric(
                    names.RUN_DURATION_SECONDS,
                    statistic=cloudwatch.Stats.MAXIMUM,
                    label="run duration (s)",
                )
            ],
            left_annotations=[
                cloudwatch.HorizontalAnnotation(value=timeout, label="Lambda timeout"),
                cloudwatch.HorizontalAnnotation(
                    value=DURATION_ALARM_FRACTION * timeout,
                    label=f"alarm ({DURATION_ALARM_FRACTION:.0%} of timeout)",
                    color=cloudwatch.Color.ORANGE,
                ),
            ],
            left_y_axis=cloudwatch.YAxisProps(min=0, max=round(timeout * 1.1), show_units=False),
        )
        errors = cloudwatch.GraphWidget(
            title="Function errors and throttles",
            width=8,
            left=[
                self._function.metric_errors(statistic=cloudwatch.Stats.SUM, period=HOUR),
                self._function.metric_throttles(statistic=cloudwatch.Stats.SUM, period=HOUR),
            ],
            left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
        )
        runs = cloudwatch.GraphWidget(
            title="Live runs completed per night",
            width=8,
            left=[self.metric(names.RUN_COMPLETED, label="runs completed")],
            left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
        )
        volume = cloudwatch.GraphWidget(
            title="What each night looked at",
            width=12,
            left=[
                self.metric(names.REPOSITORIES_SCANNED, label="repositories scanned"),
                self.metric(names.IMAGES_SCANNED, label="images scanned"),
                self.metric(names.IMAGES_EXPIRED, label="images expired by the policy"),
                self.metric(names.IMAGES_KEPT, label="images kept"),
            ],
            right=[
                self.metric(
                    names.LIFECYCLE_POLICIES_CHANGED,
                    label="native lifecycle policies created or updated",
                ),
                self.metric(
                    names.LIFECYCLE_POLICIES_SKIPPED,
                    label="native lifecycle policies not written (would expire what the sweep "
                    "keeps)",
                ),
            ],
            left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
            right_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
        )
        protections = cloudwatch.GraphWidget(
            title="Images kept by a safety protection (the policy would have expired them)",
            width=12,
            stacked=True,
            left=[
                self.metric(metric, label=protection.value)
                for protection, metric in names.KEPT_BY_PROTECTION.items()
            ],
            left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
        )
        guard = cloudwatch.GraphWidget(
            title="Deletion guard: live runs held per night",
            width=8,
            left=[self.metric(names.GUARD_HELD, label="runs held (nothing deleted; approve them)")],
            left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
        )
        dry_runs = cloudwatch.GraphWidget(
            title="Dry runs (Mode=DryRun): what would have been deleted",
            width=16,
            left=[
                self.metric(
                    names.IMAGES_EXPIRED, mode=names.MODE_DRY_RUN, label="images a dry run expired"
                )
            ],
            right=[
                cloudwatch.MathExpression(
                    expression=f"dry / {BYTES_PER_GB}",
                    using_metrics={
                        "dry": self.metric(names.BYTES_EXPIRED, mode=names.MODE_DRY_RUN)
                    },
                    label="GB a dry run would free",
                    period=NIGHT,
                )
            ],
            left_y_axis=cloudwatch.YAxisProps(min=0, label="images", show_units=False),
            right_y_axis=cloudwatch.YAxisProps(min=0, label="GB", show_units=False),
        )
        queries: list[cloudwatch.IWidget] = [
            cloudwatch.LogQueryWidget(
                title=title,
                width=width,
                height=8,
                log_group_names=[log_group_name],
                query_lines=lines,
            )
            for title, width, lines in (
                ("Top repositories by reclaimed bytes", 12, top_repositories_query()),
                ("Errors and warnings", 12, errors_and_warnings_query()),
                ("Latest deletions and why", 24, latest_deletions_query()),
            )
        ]
        return [
            [header],
            [deleted, gigabytes, saving],
            [saving_total, alarm_status, runs],
            [failures, duration, errors],
            [volume, protections],
            [dry_runs, guard],
            queries[:2],
            [queries[2]],
        ]


# Logs Insights queries (one line per pipe stage; CDK joins them with '|') ----------------------


def top_repositories_query(limit: int = 20) -> list[str]:
    """Repositories ranked by bytes reclaimed over the dashboard's time range."""
    return [
        f"fields {ev.REPOSITORY}, {ev.BYTES_RECLAIMED} / {BYTES_PER_GB} as gb, {ev.IMAGES_DELETED}",
        f'filter {ev.EVENT} = "{ev.REPOSITORY_SUMMARY}"',
        f"stats sum(gb) as gbReclaimed, sum({ev.IMAGES_DELETED}) as imagesDeletedTotal "
        f"by {ev.REPOSITORY}",
        "sort gbReclaimed desc",
        f"limit {limit}",
    ]


def latest_deletions_query(limit: int = 100) -> list[str]:
    """The most recent deleted images with the rule and reason that expired them."""
    return [
        f"fields @timestamp, {ev.REPOSITORY}, {ev.IMAGE_DIGEST}, {ev.IMAGE_TAGS}.0 as firstTag, "
        f"{ev.REASON}, {ev.RULE_PRIORITY}, {ev.RUN_ID}",
        f'filter {ev.EVENT} = "{ev.IMAGE_DELETED}"',
        "sort @timestamp desc",
        f"limit {limit}",
    ]


def errors_and_warnings_query(limit: int = 50) -> list[str]:
    """Powertools ERROR/WARNING records, plus Lambda's own timeout and crash lines."""
    return [
        f"fields @timestamp, level, {ev.EVENT}, {ev.REPOSITORY}, {ev.ERROR_CODE}, message, "
        "@message",
        'filter level in ["CRITICAL", "ERROR", "WARNING"] or @message like /Task timed out/ '
        "or ispresent(errorType)",
        "sort @timestamp desc",
        f"limit {limit}",
    ]
