"""The local ECR (`emulator`, `demo`) needs moto, an optional extra: say how to install it.

moto is not a dependency of the installed CLI (`pip install ecr-sweeper`); `plan`, `sweep` and
`evaluate` work without it. `pip install 'ecr-sweeper[local]'` adds it.
"""

from __future__ import annotations

import argparse

from ecr_sweeper_cli.config import ConfigError

INSTALL_HINT = "pip install 'ecr-sweeper[local]'"

ACCEPTS_ANY_ARGUMENTS = "accepts_any_arguments"
"""Set on a command that only explains what is missing, so its arguments are not rejected."""


def unavailable(parser: argparse.ArgumentParser, command: str, error: ImportError) -> None:
    """Make `command` exit 2 with one line naming the missing module and the install command."""
    missing = error.name or "moto"

    def run(args: argparse.Namespace) -> int:
        raise ConfigError(
            f"{command} needs the local ECR, which needs {missing!r} (not installed): "
            f"{INSTALL_HINT}"
        )

    parser.set_defaults(func=run, **{ACCEPTS_ANY_ARGUMENTS: True})
