"""`ecr-sweeper runs`: what the deployed function did, read from its CloudWatch Logs.

`runs` lists the `run.summary` records of recent runs, newest first; `runs show RUN_ID` shows one
run per repository with the same summary as `plan` (rebuilt from its `repository.summary` records,
every page of them), and its deletions with `--details`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.text import Text

from ecr_sweeper.aws.clients import AwsTarget
from ecr_sweeper.core import log_events as ev
from ecr_sweeper_cli.config import ConfigError, add_settings_options, load_settings
from ecr_sweeper_cli.options import endpoint_url, region_name

DEFAULT_STACK_NAME = "EcrSweeper"
"""The stack's name as `cdk deploy` creates it (infra.stack.STACK_ID)."""

REPOSITORIES_UNFINISHED = "repositoriesUnfinished"
UNREADABLE_TEXT = "summary unreadable (truncated?)"
"""How a `run.summary` line that doesn't parse is shown: the run is listed, never dropped."""
ENVELOPE_FIELDS = frozenset(
    {"level", "location", "message", "timestamp", "service", "cold_start", "function_name",
     "function_memory_size", "function_arn", "function_request_id", "correlation_id",
     "xray_trace_id", "sampling_rate", "logTimestamp", ev.EVENT, ev.RUN_ID, ev.DRY_RUN}
)  # fmt: skip
"""Fields of a logged record that belong to the logger, not to the repository's entry."""
TOTALS = (
    "imagesScanned", "imagesExpired", "imagesDeleted", "imagesKept", "bytesExpired",
    "bytesReclaimed", "imagesToArchive", "imagesArchived", "bytesArchived",
)  # fmt: skip
"""The run's totals that its repositories' records add up to (when its summary is unreadable)."""
_DURATION = re.compile(r"([1-9][0-9]*)([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_RUN_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def duration(value: str) -> timedelta:
    """'30m', '12h', '7d' or '2w' as a timedelta; anything else is refused with what is accepted."""
    match = _DURATION.fullmatch(value.strip())
    if not match:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a duration; expected a whole number and a unit m, h, d or w, "
            "e.g. 30m, 12h or 7d"
        )
    span = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if span > timedelta(days=3653):
        raise argparse.ArgumentTypeError(f"{value!r} is longer than 10 years")
    return span


def _run_id(value: str) -> str:
    if not _RUN_ID.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a run id; expected the runId a run printed or logged, "
            "e.g. 2f1c7a4e-3b8d-4e36-9a6f-0c5d2e7b1a90"
        )
    return value


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--log-group", metavar="NAME", help="the function's log group")
    where.add_argument(
        "--stack-name", default=DEFAULT_STACK_NAME,
        help=f"read the log group from this stack's LogGroupName output "
        f"(default: {DEFAULT_STACK_NAME})",
    )  # fmt: skip
    parser.add_argument(
        "--since", type=duration, default=timedelta(days=7), metavar="DURATION",
        help="how far back to look: 30m, 12h, 7d, 2w (default: 7d)",
    )  # fmt: skip
    parser.add_argument("--region", type=region_name, help="AWS region of the stack")
    parser.add_argument("--profile", help="AWS named profile")
    parser.add_argument(
        "--endpoint-url", type=endpoint_url,
        help="send every AWS call to this endpoint, e.g. the local emulator",
    )  # fmt: skip
    parser.add_argument(
        "--output", choices=("table", "json"), default="table",
        help="table (default) or json: the logged records, newest first",
    )  # fmt: skip
    add_settings_options(parser)


def register(commands: Any) -> None:
    summary = "list recent runs of the deployed function, from its CloudWatch Logs"
    parser = commands.add_parser("runs", help=summary, description=summary)
    _add_source_options(parser)
    parser.set_defaults(func=run_list)
    show_help = "show one run per repository, as plan does; --details adds its deletions"
    sub = parser.add_subparsers(dest="runs_command", metavar="show")
    show = sub.add_parser("show", help=show_help, description=show_help)
    show.add_argument("run_id", type=_run_id, metavar="RUN_ID")
    _add_source_options(show)
    show.add_argument(
        "--details", action="store_true", help="also list the run's image.deleted records"
    )
    show.set_defaults(func=run_show)


def _target(args: argparse.Namespace) -> AwsTarget:
    target = AwsTarget(region=args.region, profile=args.profile, endpoint_url=args.endpoint_url)
    if not target.has_credentials():
        raise ConfigError(
            "no AWS credentials found: configure a profile (--profile) or the AWS_* environment"
        )
    return target


def _log_group(args: argparse.Namespace, target: AwsTarget) -> str:
    from ecr_sweeper_cli.run_logs import log_group_of_stack

    return str(args.log_group) if args.log_group else log_group_of_stack(target, args.stack_name)


def _read(args: argparse.Namespace, events: tuple[str, ...], run_id: str | None = None) -> Any:
    from ecr_sweeper_cli.run_logs import LogsError, records

    target = _target(args)
    try:
        group = _log_group(args, target)
        start = datetime.now(UTC) - args.since
        return list(records(target, group, events, start=start, run_id=run_id))
    except LogsError as error:
        raise ConfigError(str(error)) from error


def newest_first(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(summaries, key=lambda r: (str(r.get("startedAt", "")), r.get("runId", "")))[::-1]


def _when(record: dict[str, Any]) -> str:
    started = record.get("startedAt")
    try:
        moment = datetime.fromisoformat(str(started))
    except ValueError:
        return str(started)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration_text(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "?"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m {rest:02d}s" if minutes else f"{rest}s"


def _mode(record: dict[str, Any]) -> str:
    """dry run, live, or held: a live run the deletion guard held (it deleted nothing)."""
    if record.get(ev.UNREADABLE):
        return UNREADABLE_TEXT
    guard = record.get("guard")
    if isinstance(guard, dict) and guard.get("held") is True:
        return "held"
    return "dry run" if record.get("dryRun") else "live"


def _unfinished_text(record: dict[str, Any]) -> str:
    """ "N: names" of the unfinished repositories: the names the record lists (at most the first
    20), then "M more" for those it only counts."""
    if record.get(ev.UNREADABLE):
        return "?"
    value = record.get(REPOSITORIES_UNFINISHED) or []
    names = [str(name) for name in value] if isinstance(value, list) else []
    count = record.get(REPOSITORIES_UNFINISHED + "Count")
    total = count if isinstance(count, int) and count > len(names) else len(names)
    if total > len(names):
        names.append(f"{total - len(names)} more")
    return f"{total}: {', '.join(names)}" if names else "none"


def _dump(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def run_list(args: argparse.Namespace) -> int:
    summaries = newest_first(_read(args, (ev.RUN_SUMMARY,)))
    if args.output == "json":
        _dump(summaries)
        return 0
    from ecr_sweeper_cli.layout import Column, first_fitting, fitted_table
    from ecr_sweeper_cli.render import BYTES_PER_GB, console_for_output

    console = console_for_output()
    if not summaries:
        console.print(f"No runs logged in the last {_since_text(args)}.")
        return 0
    dry = [bool(record.get("dryRun")) or _mode(record) != "live" for record in summaries]
    deleted = [
        record.get("imagesExpired" if d else "imagesDeleted", 0)
        for record, d in zip(summaries, dry, strict=True)
    ]
    sizes = [
        (record.get("bytesExpired" if d else "bytesReclaimed", 0) or 0) / BYTES_PER_GB
        for record, d in zip(summaries, dry, strict=True)
    ]
    failures = [int(record.get("failures", 0) or 0) for record in summaries]
    when = Column("when", [_when(record) for record in summaries], fold=10)
    run_id = Column("run id", [Text(str(record.get("runId", ""))) for record in summaries], fold=18)
    mode = Column("mode", [_mode(record) for record in summaries])
    readable = [not record.get(ev.UNREADABLE) for record in summaries]
    counts = [
        Column(
            "deleted",
            [
                (f"({n} would)" if d else str(n)) if ok else "?"
                for n, d, ok in zip(deleted, dry, readable, strict=True)
            ],
            "right",
        ),
        Column(
            "GB reclaimed",
            [
                (f"({gb:.2f})" if d else f"{gb:.2f}") if ok else "?"
                for gb, d, ok in zip(sizes, dry, readable, strict=True)
            ],
            "right",
        ),
        Column(
            "failures",
            [
                Text(str(n) if ok else "?", style="red" if n else "")
                for n, ok in zip(failures, readable, strict=True)
            ],
            "right",
        ),
    ]
    duration = Column(
        "duration", [_duration_text(record.get("durationSeconds")) for record in summaries], "right"
    )
    left = Column(
        "unfinished repositories", [Text(_unfinished_text(record)) for record in summaries], fold=10
    )
    chosen = first_fitting(
        [
            [when, run_id, mode, *counts, duration, left],
            [when, run_id, *counts, duration, left],
            [when, run_id, *counts, left],
        ],
        console.width,
    )
    table = fitted_table(
        chosen,
        console.width,
        title=f"Runs in the last {_since_text(args)}, newest first",
        title_justify="left",
    )
    console.print(table)
    return 0


def _since_text(args: argparse.Namespace) -> str:
    span: timedelta = args.since
    if span % timedelta(days=1) == timedelta(0):
        return f"{span.days} days"
    hours = span / timedelta(hours=1)
    return f"{hours:g} hours" if hours >= 1 else f"{span / timedelta(minutes=1):g} minutes"


def run_show(args: argparse.Namespace) -> int:
    events: tuple[str, ...] = (ev.RUN_SUMMARY, ev.REPOSITORY_SUMMARY)
    if args.details:
        events += (ev.IMAGE_DELETED, ev.IMAGE_EXPIRED_DRY_RUN)
    found = _read(args, events, run_id=args.run_id)
    summaries = [r for r in found if r.get(ev.EVENT) == ev.RUN_SUMMARY]
    logged = [r for r in found if r.get(ev.EVENT) == ev.REPOSITORY_SUMMARY]
    repositories = per_repository(logged)
    images = [r for r in found if r.get(ev.EVENT) in (ev.IMAGE_DELETED, ev.IMAGE_EXPIRED_DRY_RUN)]
    if not summaries and not repositories:
        raise ConfigError(
            f"run {args.run_id}: no run.summary record (nor any repository.summary record) in "
            f"the last {_since_text(args)} (an older run needs a longer --since)"
        )
    summary, note = _summary_of(summaries, repositories, dry_run=_dry_run(logged))
    document = {**summary, "perRepository": repositories}
    if args.output == "json":
        if args.details:
            document["images"] = images
        _dump(document)
        return 0
    from ecr_sweeper_cli.render import console_for_output, render_run

    price = load_settings(args.config, args.context).storage_price_per_gb_month
    console = console_for_output()
    if args.details:
        _image_table(console, images)
    mode = {"live": "live run", "held": "held by the deletion guard", "dry run": "dry run"}.get(
        _mode(summary), UNREADABLE_TEXT
    )
    took = _duration_text(summary.get("durationSeconds"))
    title = f"Run {args.run_id} ({mode}, {_when(summary)}, {took})"
    render_run(console, document, price_per_gb_month=price, title=title)
    if note:
        console.print(Text(note, style="yellow"))
    return 0


def per_repository(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each repository's entry from its `repository.summary` records, in (target, name) order;
    a repository logged twice (a fan-out child retried) counts once, as last logged."""
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        entry = {key: value for key, value in record.items() if key not in ENVELOPE_FIELDS}
        if isinstance(entry.get("repository"), str):
            entries[(str(entry.get("target", "")), entry["repository"])] = entry
    return [entries[key] for key in sorted(entries)]


def _dry_run(records: list[dict[str, Any]]) -> bool:
    """Whether the run was a dry run, from its records (the logger adds `dryRun` to each)."""
    return any(record.get(ev.DRY_RUN) is True for record in records)


def _summary_of(
    summaries: list[dict[str, Any]], repositories: list[dict[str, Any]], *, dry_run: bool
) -> tuple[dict[str, Any], str | None]:
    """The run's summary record, and a note when it is unreadable or missing: then the totals
    are added up from the repositories' records, and no cause is assumed."""
    summary = summaries[-1] if summaries else {}
    if summary and not summary.get(ev.UNREADABLE):
        return summary, None
    rebuilt: dict[str, Any] = {**summary}
    for name in TOTALS:
        rebuilt[name] = sum(int(r.get(name, 0) or 0) for r in repositories)
    failed = sum(1 for r in repositories if r.get("status") == "failed" or r.get("uncertain"))
    rebuilt["failures"] = failed + sum(
        int(r.get("deleteFailureCount", 0) or 0) for r in repositories
    )
    rebuilt["repositories"] = sum(1 for r in repositories if r.get("status") == "swept")
    rebuilt["dryRun"] = dry_run
    rebuilt[ev.UNREADABLE] = True
    why = (
        f"Its run.summary record is unreadable (truncated?): the totals are added up from the "
        f"{len(repositories)} repository.summary records."
        if summary
        else f"No run.summary record was found (the run may still be going, or ended early): "
        f"the totals are added up from the {len(repositories)} repository.summary records."
    )
    return rebuilt, why


def _image_table(console: Console, images: list[dict[str, Any]]) -> None:
    from ecr_sweeper_cli.layout import Column, first_fitting, fitted_table
    from ecr_sweeper_cli.render import size_text

    if not images:
        console.print("No image records for this run.")
        return
    ordered = sorted(images, key=lambda r: (str(r.get("repository")), r.get("logTimestamp") or 0))
    columns = [
        Column("repository", [Text(str(r.get("repository", ""))) for r in ordered], fold=12),
        Column(
            "action",
            ["deleted" if r.get(ev.EVENT) == ev.IMAGE_DELETED else "would delete" for r in ordered],
            fold=6,
        ),
        Column(
            "tags",
            [Text(", ".join(r.get("imageTags") or []) or "<untagged>") for r in ordered],
            fold=10,
        ),
        Column(
            "digest", [str(r.get("imageDigest", "")).removeprefix("sha256:")[:12] for r in ordered]
        ),
        Column(
            "size", [size_text(int(r.get("imageSizeInBytes", 0) or 0)) for r in ordered], "right"
        ),
        Column(
            "reason",
            [Text(str(r.get("reason", "")).removeprefix("expire: ")) for r in ordered],
            fold=20,
        ),
    ]
    without_digest = [column for column in columns if column.header != "digest"]
    chosen = first_fitting([columns, without_digest], console.width)
    table = fitted_table(chosen, console.width, title="Images", title_justify="left")
    console.print(table)
