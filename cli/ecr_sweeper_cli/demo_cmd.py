"""`ecr-sweeper demo`: a sweep of a seeded local ECR, with no AWS account."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from ecr_sweeper.aws.clients import AwsTarget
from ecr_sweeper.sweep.budget import TimeBudget
from ecr_sweeper.sweep.engine import sweeper_for
from ecr_sweeper_cli.config import ConfigError, add_settings_options, load_settings
from ecr_sweeper_cli.describe import policy_in_words
from ecr_sweeper_cli.interrupt import EXIT_INTERRUPTED, interrupted_line, stop_on_interrupt
from ecr_sweeper_cli.local_extra import INSTALL_HINT, unavailable
from ecr_sweeper_cli.render import console_for_output, render_summary

DEMO_REGION = "us-east-1"
DEMO_LOGGER = "ecr_sweeper.demo"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": DEMO_REGION,
}


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "demo",
        help="seed a local ECR (no AWS account needed) and sweep it with your settings",
        description=(
            f"Seed a local ECR and sweep it with your settings. Needs moto: {INSTALL_HINT}."
        ),
    )
    try:
        from local_ecr.scenarios import accepted_scenarios
    except ImportError as error:
        unavailable(parser, "ecr-sweeper demo", error)
        return
    parser.add_argument(
        "--scenario",
        default="demo",
        help=f"registry to seed (default: demo); accepted: {accepted_scenarios()}",
    )
    add_settings_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from local_ecr import LocalEcr, parse_scenario

    settings = load_settings(args.config, args.context)
    try:
        parse_scenario(args.scenario)
    except ValueError as error:
        raise ConfigError(f"--scenario: {error}") from error
    # Everything stays on 127.0.0.1: fake credentials make sure no real account is ever used.
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.pop("AWS_PROFILE", None)
    console = console_for_output()
    with LocalEcr(port=0, region=DEMO_REGION) as local_ecr:
        local_ecr.seed(args.scenario)
        console.print(
            f"[bold]Local ECR[/bold] at {local_ecr.endpoint_url}, seeded with the "
            f"{args.scenario!r} registry. Settings from {args.config}."
        )
        for line in policy_in_words(settings):
            console.print(line, markup=False, highlight=False)
        target = AwsTarget(region=DEMO_REGION, endpoint_url=local_ecr.endpoint_url)
        logger = logging.getLogger(DEMO_LOGGER)
        budget = TimeBudget(None)
        with stop_on_interrupt(budget, DEMO_LOGGER) as interruption:
            summary = sweeper_for(
                target, settings, logger, dry_run=settings.dry_run, budget=budget
            ).run()
        render_summary(
            console,
            summary,
            price_per_gb_month=settings.storage_price_per_gb_month,
            details=True,
        )
    if interruption.interrupted:
        print(f"ecr-sweeper: {interrupted_line(summary)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 1 if summary.failures else 0
