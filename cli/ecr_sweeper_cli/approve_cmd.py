"""`ecr-sweeper approve RUN_ID`: a person's approval of a run the deletion guard held.

It reads the held run's `run.summary` record (and its `repository.summary` records) from the
function's log group, as `runs show` does, shows what the run would have deleted, asks, and
records an approval for up to that many deletions plus 10% for images pushed since, in the
stack's state parameter (under "approval"; the cursor's keys are kept). The next live run uses it
once. `--now` starts that run straight away.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.table import Table
from rich.text import Text

from ecr_sweeper.aws.clients import AwsTarget
from ecr_sweeper.aws.ssm import ParameterApprovals
from ecr_sweeper.core import guard as core
from ecr_sweeper.core import log_events as ev
from ecr_sweeper_cli.config import ConfigError
from ecr_sweeper_cli.options import endpoint_url, region_name, typed_yes
from ecr_sweeper_cli.runs_cmd import DEFAULT_STACK_NAME, duration
from ecr_sweeper_cli.runs_cmd import _run_id as run_id_argument
from ecr_sweeper_cli.runs_cmd import _since_text as since_text
from ecr_sweeper_cli.runs_cmd import _target as aws_target
from ecr_sweeper_cli.runs_cmd import _when as when

STATE_PARAMETER_OUTPUT = "StateParameterName"
FUNCTION_OUTPUT = "FunctionName"
STATE_MACHINE_OUTPUT = "StateMachineArn"
"""Stack outputs (infra/stack.py): where the approval goes, and what `--now` starts."""

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def register(commands: Any) -> None:
    summary = "approve a run the deletion guard held: the next live run may delete that much"
    parser = commands.add_parser("approve", help=summary, description=summary)
    parser.add_argument("run_id", type=run_id_argument, metavar="RUN_ID")
    parser.add_argument(
        "--stack-name", default=DEFAULT_STACK_NAME,
        help=f"the deployed stack (default: {DEFAULT_STACK_NAME}); its outputs name the log "
        "group, the state parameter and the function",
    )  # fmt: skip
    parser.add_argument(
        "--expires-in", type=duration, default=timedelta(days=core.DEFAULT_APPROVAL_DAYS),
        metavar="DURATION",
        help=f"how long the approval stays usable: 30m, 12h, 7d, 2w "
        f"(default: {core.DEFAULT_APPROVAL_DAYS}d)",
    )  # fmt: skip
    parser.add_argument(
        "--since", type=duration, default=timedelta(days=7), metavar="DURATION",
        help="how far back to look for the held run in the logs (default: 7d)",
    )  # fmt: skip
    parser.add_argument("--yes", action="store_true", help="don't ask for confirmation")
    parser.add_argument(
        "--now", action="store_true",
        help="start the next live run right away (invokes the function, or starts the fan-out)",
    )  # fmt: skip
    parser.add_argument("--region", type=region_name, help="AWS region of the stack")
    parser.add_argument("--profile", help="AWS named profile")
    parser.add_argument(
        "--endpoint-url", type=endpoint_url,
        help="send every AWS call to this endpoint, e.g. the local emulator",
    )  # fmt: skip
    parser.set_defaults(func=run_approve)


def run_approve(args: argparse.Namespace) -> int:
    from ecr_sweeper_cli.render import console_for_output
    from ecr_sweeper_cli.run_logs import LogsError, records, stack_outputs

    target = aws_target(args)
    start = datetime.now(UTC) - args.since
    try:
        outputs = stack_outputs(target, args.stack_name)
        group = _output(outputs, "LogGroupName", args.stack_name)
        parameter = _output(outputs, STATE_PARAMETER_OUTPUT, args.stack_name)
        found = list(
            records(
                target,
                group,
                (ev.RUN_SUMMARY, ev.REPOSITORY_SUMMARY),
                start=start,
                run_id=args.run_id,
            )
        )
    except LogsError as error:
        raise ConfigError(str(error)) from error
    summaries = [r for r in found if r.get(ev.EVENT) == ev.RUN_SUMMARY]
    if not summaries:
        raise ConfigError(
            f"run {args.run_id}: no run.summary record in the last {since_text(args)} "
            "(an older run needs a longer --since)"
        )
    summary = summaries[-1]
    if summary.get(ev.UNREADABLE):
        raise ConfigError(
            f"run {args.run_id}: its run.summary record is unreadable (truncated?), so what the "
            "deletion guard held can't be read; approve a later held run"
        )
    held = summary.get("guard")
    if not isinstance(held, dict) or held.get("held") is not True:
        raise ConfigError(
            f"run {args.run_id}: the deletion guard did not hold it (outcome: "
            f"{summary.get('outcome', 'unknown')}); there is nothing to approve"
        )
    would = _count(held.get("wouldDelete"))
    scanned = _count(held.get("imagesScanned"))
    now = datetime.now(UTC)
    approval = core.approval_for(args.run_id, would, now=now, valid_for=args.expires_in)
    console = console_for_output()
    repositories = [r for r in found if r.get(ev.EVENT) == ev.REPOSITORY_SUMMARY]
    _show(console, summary, held, repositories)
    console.print(
        f"Approving lets the next live run delete (or archive) up to "
        f"{approval.max_deletions} images ({would} planned, plus 10% for images pushed since) "
        f"of the {scanned} it scanned, once, until "
        f"{approval.expires_at.strftime('%Y-%m-%d %H:%M UTC')}.",
        markup=False,
    )
    if not args.yes:
        if not sys.stdin.isatty():
            print(
                "ecr-sweeper: refusing to approve without --yes: stdin is not a terminal",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
        if not typed_yes(f"Approve up to {approval.max_deletions} deletions?"):
            print("Nothing approved.", file=sys.stderr)
            return EXIT_OK
    approvals = ParameterApprovals(target.client("ssm"), parameter)
    if not approvals.save(approval):
        raise ConfigError(str(approvals.problem))
    console.print(f"Approved: recorded in {parameter}.", markup=False)
    if args.now:
        _start(target, outputs, args.stack_name)
        console.print("Started the next live run.")
    return EXIT_OK


def _output(outputs: dict[str, str], key: str, stack_name: str) -> str:
    value = outputs.get(key)
    if not value:
        raise ConfigError(
            f"--stack-name {stack_name}: the stack has no {key} output; deploy this version "
            "of ecr-sweeper first"
        )
    return value


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _show(
    console: Any,
    summary: dict[str, Any],
    held: dict[str, Any],
    repositories: list[dict[str, Any]],
) -> None:
    """The held run's totals (from its run.summary) and what each repository would lose (from
    its repository.summary records; the guard's top five if there are none)."""
    console.print(
        f"Run {summary.get('runId')} ({when(summary)}) was held: {held.get('reason')}",
        markup=False,
    )
    table = Table(title="What it would have deleted", title_justify="left")
    for column in ("repository", "images", "would delete"):
        table.add_column(column, justify="left" if column == "repository" else "right")
    rows = [
        (
            f"{r['target']} {r.get('repository')}" if r.get("target") else str(r.get("repository")),
            str(r.get("imagesScanned", "")),
            _count(r.get("imagesExpired")) + _count(r.get("imagesToArchive")),
        )
        for r in repositories
    ]
    if not rows:
        rows = [
            (str(entry.get("repository")), "", _count(entry.get("wouldDelete")))
            for entry in held.get("topRepositories") or []
            if isinstance(entry, dict)
        ]
    for name, images, count in sorted(rows, key=lambda row: (-row[2], row[0])):
        if count:
            table.add_row(Text(name), images, str(count))
    console.print(table)


def _start(target: AwsTarget, outputs: dict[str, str], stack_name: str) -> None:
    """Start the next live run now: the fan-out's state machine if the stack has one, else the
    function, asynchronously (as the schedule does)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if outputs.get(STATE_MACHINE_OUTPUT):
            target.client("stepfunctions").start_execution(
                stateMachineArn=outputs[STATE_MACHINE_OUTPUT], input="{}"
            )
        else:
            target.client("lambda").invoke(
                FunctionName=_output(outputs, FUNCTION_OUTPUT, stack_name),
                InvocationType="Event",
                Payload=b"{}",
            )
    except (ClientError, BotoCoreError) as error:
        raise ConfigError(
            f"approved, but the run could not be started ({error}); it runs at the next "
            "scheduled time, or start it by hand"
        ) from error
