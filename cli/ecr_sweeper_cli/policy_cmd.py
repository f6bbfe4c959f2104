"""`ecr-sweeper policy plan|apply`: one ECR native lifecycle policy on every selected repository.

The safe version of "for every repository, PutLifecyclePolicy": it validates the policy as
PutLifecyclePolicy does, reads every page, selects repositories as the sweep does, shows per
repository what would change (with a diff, and how many images each policy would expire now, by
our own engine), warns where the policy would expire an image the sweep keeps (in use, a child
of a kept index, a referrer of a kept image) and skips those repositories unless --force, and
writes only where the canonical policy differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from ecr_sweeper.aws.clients import AwsTarget
from ecr_sweeper.aws.ecr import EcrRegistry
from ecr_sweeper.aws.limiter import AdaptiveLimiter
from ecr_sweeper.core import lifecycle
from ecr_sweeper.core.results import RepositoryResult, RunSummary
from ecr_sweeper.ports import RegistryError, RepositoryGone
from ecr_sweeper.sweep.in_use import images_in_use, learn_usage
from ecr_sweeper.sweep.native_policy import (
    CREATE,
    FAILED,
    SKIPPED,
    UPDATE,
    WRITES,
    PolicyReport,
    PolicyRollout,
    native_policy_notes,
)
from ecr_sweeper_cli.config import ConfigError, load_settings
from ecr_sweeper_cli.options import add_target_options

EXIT_OK, EXIT_FAILURES, EXIT_BAD_INPUT = 0, 1, 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    policy_help = "apply one ECR native lifecycle policy to every selected repository"
    policy = subparsers.add_parser(
        "policy",
        help=policy_help,
        description=policy_help + ". Repositories are selected as the sweep selects them "
        "(includeRepositories, excludeRepositories, the ecr-sweeper:skip tag).",
    )
    actions = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    plan_help = "show per repository what would change, with a diff; writes nothing"
    apply_help = (
        "write the policy where it differs (asks on a terminal unless --yes); "
        "a second apply writes nothing"
    )
    for name, text in (("plan", plan_help), ("apply", apply_help)):
        parser = actions.add_parser(name, help=text, description=text)
        parser.add_argument(
            "--policy",
            required=True,
            type=Path,
            metavar="FILE",
            help="the lifecycle policy JSON (or the object `aws ecr get-lifecycle-policy` prints)",
        )
        parser.add_argument(
            "--protect-in-use",
            action="store_true",
            help="skip repositories where the policy would expire an image ECS or Lambda uses "
            "(or where that can't be known)",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="write also where the policy would expire images the sweep keeps (in use, "
            "children of kept indexes, referrers of kept images); they are skipped otherwise",
        )
        add_target_options(
            parser, output_help="table (default) or json: one JSON document on stdout"
        )
        if name == "apply":
            parser.add_argument("--yes", action="store_true", help="don't ask for confirmation")
        parser.set_defaults(func=run)


def read_policy(path: Path) -> lifecycle.LifecyclePolicy:
    """The policy file, validated as ECR's PutLifecyclePolicy would; any problem is a
    ConfigError (exit 2), before anything is read from or written to a registry."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"--policy {path}: can't read it ({error.strerror})") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"--policy {path}: not UTF-8 text ({error})") from error
    try:
        return lifecycle.parse_native_policy(text)
    except lifecycle.PolicyError as error:
        raise ConfigError(f"--policy {path}: {error}") from error


def _rollout(args: argparse.Namespace) -> PolicyRollout:
    settings = load_settings(args.config, args.context)
    wanted = read_policy(args.policy)
    target = AwsTarget(region=args.region, profile=args.profile, endpoint_url=args.endpoint_url)
    if not target.has_credentials():
        raise ConfigError(
            "no AWS credentials found: configure a profile (--profile) or the AWS_* environment; "
            "the local emulator accepts any, e.g. AWS_ACCESS_KEY_ID=testing "
            "AWS_SECRET_ACCESS_KEY=testing"
        )
    workers = args.concurrency or settings.max_concurrency

    return PolicyRollout(
        EcrRegistry(target.registry_client(), limiter=AdaptiveLimiter(workers)),
        settings,
        wanted,
        images_in_use=lambda: learn_usage(lambda: images_in_use(settings, target.client)),
        workers=workers,
        protect_in_use=args.protect_in_use,
        force=args.force,
    )


def run(args: argparse.Namespace) -> int:
    rollout = _rollout(args)
    if args.policy_command == "plan":
        return _report(rollout.run(write=False), args.output)
    if args.yes:
        return _report(rollout.run(write=True), args.output)
    if not sys.stdin.isatty():
        print(
            "ecr-sweeper: refusing to write lifecycle policies without --yes: "
            "stdin is not a terminal",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    preview = rollout.run(write=False)
    _render(preview)
    chosen = frozenset(c.repository for c in preview.changes if c.change in WRITES)
    if not chosen:
        print("Nothing to change.", file=sys.stderr)
        return EXIT_FAILURES if preview.failures else EXIT_OK
    try:
        answer = input(
            f"Write the lifecycle policy to {len(chosen)} repositories? Type 'yes' to continue: "
        )
    except EOFError:
        answer = ""
    if answer.strip().lower() != "yes":
        print("Nothing written.", file=sys.stderr)
        return EXIT_OK
    return _report(rollout.run(write=True, only=chosen), args.output)


def _report(report: PolicyReport, output: str) -> int:
    if output == "json":
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _render(report)
    return EXIT_FAILURES if report.failures else EXIT_OK


def _render(report: PolicyReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ecr_sweeper_cli.render import console_for_output

    console = console_for_output()
    title = "Lifecycle policy: applied" if report.applied else "Lifecycle policy: plan (DRY RUN)"
    table = Table(title=title)
    for column in ("repository", "change", "wouldExpire", "currentWouldExpire", "notes"):
        table.add_column(column)
    for change in report.changes:
        notes = [change.reason] if change.reason else []
        if change.error and change.change == FAILED:
            notes.insert(0, change.error)
        notes.extend(f"warning: {warning}" for warning in change.warnings)
        table.add_row(
            escape(change.repository),
            change.change,
            _number(change.would_expire),
            _number(change.current_would_expire),
            escape("\n".join(notes)),
        )
    console.print(table)
    for change in report.changes:
        if change.diff and change.change in (CREATE, UPDATE):
            console.print(f"[bold]{escape(change.repository)}[/bold] ({change.change}):")
            console.print(escape("\n".join(change.diff)), highlight=False)
    totals: dict[str, Any] = report.to_dict()
    verb = "" if report.applied else "would be "
    console.print(
        f"{totals['created']} {verb}created, {totals['updated']} {verb}updated, "
        f"{totals['unchanged']} unchanged, {totals[SKIPPED]} skipped, {totals[FAILED]} failed"
    )


def _number(value: int | None) -> str:
    return "-" if value is None else str(value)


def add_native_policy_notes(args: argparse.Namespace, summary: RunSummary) -> RunSummary:
    """For `ecr-sweeper plan`: note where each repository's own native lifecycle policy would
    expire an image the sweep keeps for a protection ECR doesn't have.

    CLI only (with the user's credentials): the deployed role has no ecr:GetLifecyclePolicy
    unless nativeLifecyclePolicy is set.
    """
    settings = load_settings(args.config, args.context)
    workers = args.concurrency or settings.max_concurrency
    target = AwsTarget(region=args.region, profile=args.profile, endpoint_url=args.endpoint_url)
    registry = EcrRegistry(target.registry_client(), limiter=AdaptiveLimiter(workers))

    def one(result: RepositoryResult) -> None:
        if result.plan is None:
            return
        try:
            text = registry.lifecycle_policy(result.repository)
        except RegistryError as error:
            notes = [f"native lifecycle policy: could not be read ({error.code})"]
        except RepositoryGone:
            return
        else:
            notes = native_policy_notes(text, result.plan, summary.started_at)
        if notes:
            result.plan = replace(result.plan, notes=(*result.plan.notes, *notes))

    with ThreadPoolExecutor(workers, thread_name_prefix="native-policy") as pool:
        list(pool.map(one, summary.results))
    return summary
