"""The options every command that calls AWS shares: where to go, what to print, which settings."""

from __future__ import annotations

import argparse
import re

from ecr_sweeper.core.setting_models import MAX_CONCURRENCY_LIMIT
from ecr_sweeper_cli.config import add_settings_options


def region_name(value: str) -> str:
    if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]+", value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an AWS region such as us-east-1")
    return value


def endpoint_url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a URL such as http://127.0.0.1:5000 or https://ecr.example.com"
        )
    return value


def concurrency(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_CONCURRENCY_LIMIT:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a whole number from 1 to {MAX_CONCURRENCY_LIMIT}"
        )
    return int(value)


def add_target_options(parser: argparse.ArgumentParser, *, output_help: str) -> None:
    """--region, --profile, --endpoint-url, --output, --config, -c and --concurrency."""
    parser.add_argument(
        "--region", type=region_name, help="AWS region (default: from the profile or environment)"
    )
    parser.add_argument("--profile", help="AWS named profile")
    parser.add_argument(
        "--endpoint-url",
        type=endpoint_url,
        help="send every AWS call to this endpoint, e.g. the local emulator http://127.0.0.1:5000",
    )
    parser.add_argument("--output", choices=("table", "json"), default="table", help=output_help)
    add_settings_options(parser)
    parser.add_argument(
        "--concurrency",
        type=concurrency,
        metavar="N",
        help=f"ECR calls in flight at once, 1-{MAX_CONCURRENCY_LIMIT} "
        "(default: the maxConcurrency setting)",
    )


def typed_yes(question: str) -> bool:
    """Ask at the terminal; only a typed 'yes' agrees (end of input is a no)."""
    try:
        answer = input(f"{question} Type 'yes' to continue: ")
    except EOFError:
        answer = ""
    return answer.strip().lower() == "yes"
