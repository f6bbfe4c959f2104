"""`ecr-sweeper`: the nightly Lambda's engine, run locally with the same settings."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from botocore.exceptions import BotoCoreError, NoRegionError, ProfileNotFound

from ecr_sweeper.aws.clients import AwsTarget
from ecr_sweeper.core.results import OUTCOME_FAILED, OUTCOME_HELD, PER_REPOSITORY, RunSummary
from ecr_sweeper.core.settings import Settings
from ecr_sweeper.sweep import targets
from ecr_sweeper.sweep.budget import TimeBudget
from ecr_sweeper.sweep.engine import sweeper_for
from ecr_sweeper.sweep.guard import RunGuard
from ecr_sweeper_cli import (
    approve_cmd,
    demo_cmd,
    emulator_cmd,
    evaluate_cmd,
    policy_cmd,
    repository_patterns,
    runs_cmd,
    settings_cmd,
)
from ecr_sweeper_cli.config import (
    ConfigError,
    load_settings,
    narrow_repositories,
)
from ecr_sweeper_cli.interrupt import EXIT_INTERRUPTED, RunInterrupted, stop_on_interrupt
from ecr_sweeper_cli.local_extra import ACCEPTS_ANY_ARGUMENTS
from ecr_sweeper_cli.options import add_target_options, typed_yes
from ecr_sweeper_cli.progress import progress_display
from ecr_sweeper_cli.render import LeftToTheSummary, counted

EXIT_OK, EXIT_FAILURES, EXIT_BAD_INPUT, EXIT_HELD = 0, 1, 2, 3
"""EXIT_HELD: the deletion guard held the sweep (or a repository of it): nothing deleted there."""
EXIT_OUTPUT_CLOSED = 141
"""128 + SIGPIPE: the reader went away (`| head -1`); the Unix rule is to stop quietly."""
EXIT_CODES = (
    f"Exit codes: {EXIT_OK} success, {EXIT_FAILURES} the run had failures, {EXIT_BAD_INPUT} bad "
    f"input, {EXIT_HELD} the deletion guard held the sweep (nothing deleted), {EXIT_INTERRUPTED} "
    f"interrupted (Ctrl-C), {EXIT_OUTPUT_CLOSED} the output was closed before it was all written "
    "(e.g. piped into head), quietly."
)
SINGLE_TARGET = ""
"""The key of a single-target run's confirmed digests (results carry no target then)."""


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 10**7:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds above 0, e.g. 600")
    return seconds


def deletion_count(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or int(value) > 10**9:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a number of images; expected a whole number from 0, e.g. 120"
        )
    return int(value)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    add_target_options(
        parser,
        output_help="table (default) or json: the run summary as one JSON document on stdout",
    )
    parser.add_argument(
        "--time-budget",
        type=_seconds,
        metavar="SECONDS",
        help="stop starting repositories (and delete batches) after this many seconds and "
        "report what is unfinished (default: no limit)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log protections, deletions and each repository's result to stderr "
        "(every decision is in the table or in --output json)",
    )


def _add_view_options(parser: argparse.ArgumentParser) -> None:
    """What to look at: which repositories, and how much of each."""
    parser.add_argument(
        "--repository", action="append", default=[], metavar="PATTERN",
        help="only repositories matching PATTERN ('*' and '?' wildcards, as in "
        "includeRepositories; repeatable), within those the settings select",
    )  # fmt: skip
    parser.add_argument(
        "--details", action="store_true",
        help="also list every image with its decision and reason (default: a summary per "
        "repository)",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecr-sweeper",
        description="Delete untagged and outdated Amazon ECR images safely. "
        "Settings come from cdk.json, exactly as the deployed Lambda gets them.",
        epilog=EXIT_CODES,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    plan_help = "show what a sweep would delete and why (always a dry run)"
    plan = commands.add_parser("plan", help=plan_help, description=plan_help)
    _add_run_options(plan)
    _add_view_options(plan)
    plan.set_defaults(func=run_plan)
    sweep_help = (
        "delete what the plan expires (asks on a terminal unless --yes; dryRun in the settings "
        "makes it a dry run)"
    )
    sweep = commands.add_parser("sweep", help=sweep_help, description=sweep_help)
    _add_run_options(sweep)
    _add_view_options(sweep)
    sweep.add_argument("--yes", action="store_true", help="don't ask for confirmation")
    sweep.add_argument(
        "--approve-deletions",
        type=deletion_count,
        metavar="N",
        help="the deletions you expect: the sweep proceeds only if its plan deletes (or archives) "
        "at most N, whatever guardMaxDeletionFraction and guardMaxDeletions say; else it holds "
        "(exit 3)",
    )
    sweep.set_defaults(func=run_sweep)
    evaluate_cmd.register(commands)
    policy_cmd.register(commands)
    emulator_cmd.register(commands)
    demo_cmd.register(commands)
    runs_cmd.register(commands)
    approve_cmd.register(commands)
    settings_cmd.register(commands)
    return parser


def _configure_logging(verbose: bool, *, summarized: bool = False) -> None:
    """Log records to stderr: warnings and errors, everything with -v. `summarized`: the table
    the command prints reports each failed, skipped or unfinished repository and each failed
    delete, with its whole reason below the table, so without -v they are not logged too."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    if summarized and not verbose:
        handler.addFilter(LeftToTheSummary())
    root = logging.getLogger("ecr_sweeper")
    handler.setLevel(logging.INFO if verbose else logging.WARNING)  # progress reads INFO
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    root.propagate = False


def run_settings(args: argparse.Namespace) -> Settings:
    """The settings of cdk.json and -c, narrowed to the --repository patterns."""
    settings = load_settings(args.config, args.context)
    return narrow_repositories(settings, getattr(args, "repository", []))


def execute(
    args: argparse.Namespace,
    *,
    dry_run: bool,
    approved: dict[str, dict[str, frozenset[str]]] | None = None,
    settings: Settings | None = None,
    guard: RunGuard | None = None,
) -> RunSummary:
    """One run of the engine with the CLI's settings and AWS target(s).

    `approved`: per target label (SINGLE_TARGET for a single target), the digests confirmed per
    repository."""
    settings = settings or run_settings(args)
    target = AwsTarget(region=args.region, profile=args.profile, endpoint_url=args.endpoint_url)
    if not target.has_credentials():
        raise ConfigError(
            "no AWS credentials found: configure a profile (--profile) or the AWS_* environment; "
            "the local emulator accepts any, e.g. AWS_ACCESS_KEY_ID=testing "
            "AWS_SECRET_ACCESS_KEY=testing"
        )
    logger = logging.getLogger(RUN_LOGGER)
    dry = dry_run or settings.dry_run
    budget = TimeBudget(args.time_budget)
    with (
        stop_on_interrupt(budget, RUN_LOGGER) as interruption,
        progress_display(RUN_LOGGER, dry_run=dry),
    ):
        summary = _run_engine(args, settings, target, logger, dry, approved, budget, guard)
    if interruption.interrupted:
        raise RunInterrupted(summary, settings)
    return summary


def _run_engine(
    args: argparse.Namespace,
    settings: Settings,
    target: AwsTarget,
    logger: logging.Logger,
    dry: bool,
    approved: dict[str, dict[str, frozenset[str]]] | None,
    budget: TimeBudget,
    guard: RunGuard | None,
) -> RunSummary:
    if targets.is_multi_target(settings):
        return targets.sweep_targets(
            target,
            settings,
            logger,
            dry_run=dry,
            approved=approved,
            max_concurrency=args.concurrency,
            budget=budget,
            guard=guard,
        )
    return sweeper_for(
        target.in_region(next(iter(settings.regions), None)),
        settings,
        logger,
        dry_run=dry,
        approved=None if approved is None else approved.get(SINGLE_TARGET, {}),
        max_concurrency=args.concurrency,
        budget=budget,
    ).run(guard)


RUN_LOGGER = "ecr_sweeper.run"


def report(
    summary: RunSummary, output: str, settings: Settings | None = None, *, details: bool = False
) -> int:
    if output == "json":
        write_json(summary, sys.stdout)
    else:
        from ecr_sweeper_cli.render import console_for_output, render_summary

        price = (settings or Settings()).storage_price_per_gb_month
        render_summary(console_for_output(), summary, price_per_gb_month=price, details=details)
    return exit_code(summary)


def write_json(summary: RunSummary, stream: TextIO) -> None:
    """The run summary as one JSON document, streamed: its head, then each repository's entry
    (with every decision) as it is encoded, then the tail. Each piece goes through the C
    encoder (`json.dump` with `indent` always takes the pure-Python one: 39% of a 100,000-image
    sweep's CPU), and only one repository's decisions are held as dicts at a time."""
    opening = json.dumps(summary.head())
    stream.write(f"{opening[:-1]}, {json.dumps(PER_REPOSITORY)}: [")
    separator = "\n"
    for result in summary.results:
        stream.write(separator)
        stream.write(json.dumps(result.to_dict(include_decisions=True)))
        separator = ",\n"
    stream.write("\n]}\n" if summary.results else "]}\n")


def exit_code(summary: RunSummary) -> int:
    return {OUTCOME_HELD: EXIT_HELD, OUTCOME_FAILED: EXIT_FAILURES}.get(summary.outcome, EXIT_OK)


CLI_ADVICE = (
    "check the plan (ecr-sweeper plan), then state the number you expect with --approve-deletions N"
)


def _guard(settings: Settings, expected: int | None) -> RunGuard:
    """The CLI's deletion guard: the settings' limits, or the number a person stated."""
    return RunGuard(settings, logging.getLogger(RUN_LOGGER), expected=expected, advice=CLI_ADVICE)


def run_plan(args: argparse.Namespace) -> int:
    settings = run_settings(args)
    summary = execute(args, dry_run=True, settings=settings)
    unmatched = repository_patterns.refuse_unmatched(args, summary)
    if unmatched is not None:
        return unmatched
    summary = policy_cmd.add_native_policy_notes(args, summary)
    return report(summary, args.output, settings, details=args.details)


def run_sweep(args: argparse.Namespace) -> int:
    """Guarded like the Lambda: with --yes by the settings' limits (or --approve-deletions); at
    a terminal a person confirming the plan is the approval, for exactly what they saw."""
    settings = run_settings(args)
    if args.yes:
        guard = _guard(settings, args.approve_deletions)
        summary = execute(args, dry_run=False, settings=settings, guard=guard)
        unmatched = repository_patterns.refuse_unmatched(args, summary)
        if unmatched is not None:
            return unmatched
        return report(summary, args.output, settings, details=args.details)
    if not sys.stdin.isatty():
        print(
            "ecr-sweeper: refusing to delete without --yes: stdin is not a terminal",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    preview = execute(args, dry_run=True, settings=settings)
    unmatched = repository_patterns.refuse_unmatched(args, preview)
    if unmatched is not None:
        return unmatched
    report(preview, "table", settings, details=args.details)
    count = preview.total("images_expired") + preview.total("images_to_archive")
    if count == 0:
        print("Nothing to delete.", file=sys.stderr)
        return EXIT_FAILURES if preview.failures else EXIT_OK
    if not typed_yes(f"Delete {counted(count, 'image', 'images')}?"):
        print("Nothing deleted.", file=sys.stderr)
        return EXIT_OK
    approved: dict[str, dict[str, frozenset[str]]] = {}
    for result in preview.results:
        if result.plan is not None:
            approved.setdefault(result.target or SINGLE_TARGET, {})[result.repository] = frozenset(
                d.image.digest for d in (*result.plan.expired, *result.plan.transitioned)
            )
    expected = count if args.approve_deletions is None else args.approve_deletions
    guard = _guard(settings, expected)
    summary = execute(args, dry_run=False, approved=approved, settings=settings, guard=guard)
    return report(summary, args.output, settings, details=args.details)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run(argv)
    except BrokenPipeError:
        _drop_stdout()
        return EXIT_OUTPUT_CLOSED


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, ACCEPTS_ANY_ARGUMENTS, False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    _configure_logging(
        getattr(args, "verbose", False), summarized=getattr(args, "output", "") == "table"
    )
    try:
        code: int = args.func(args)
    except ConfigError as error:
        print(f"ecr-sweeper: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (NoRegionError, ProfileNotFound) as error:
        print(f"ecr-sweeper: {error} (pass --region / --profile)", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BotoCoreError as error:
        print(f"ecr-sweeper: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RunInterrupted as stopped:
        report(stopped.summary, args.output, stopped.settings, details=args.details)
        print(f"ecr-sweeper: {stopped}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("ecr-sweeper: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


def _drop_stdout() -> None:
    """After a broken pipe (`| head -1`), point stdout at /dev/null so the interpreter's final
    flush doesn't raise again (the Python `signal` module docs' recipe). Nothing is printed:
    whoever closed the pipe has all they asked for."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (e.g. captured in tests): nothing will be flushed to a pipe
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
