"""`ecr-sweeper emulator`: serve the local ECR on 127.0.0.1 until stopped (docs/local-ecr.md)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ecr_sweeper_cli.local_extra import INSTALL_HINT, unavailable


def register(subparsers: Any) -> None:
    """Add the `emulator` subcommand (it explains how to install moto when that is missing)."""
    parser = subparsers.add_parser(
        "emulator",
        help="serve a local ECR (moto + real-ECR behaviour) on 127.0.0.1",
        description=(
            "Serve a local ECR on 127.0.0.1 that behaves like the real one, plus every other "
            "service moto serves, until SIGINT/SIGTERM. Prints the endpoint URL when ready. "
            f"Needs moto: {INSTALL_HINT}."
        ),
    )
    try:
        from local_ecr.cli import add_arguments
    except ImportError as error:
        unavailable(parser, "ecr-sweeper emulator", error)
        return
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from local_ecr.cli import serve

    return serve(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ecr-sweeper")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["emulator", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
