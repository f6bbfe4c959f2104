"""Reads the same settings the stack deploys: cdk.json context, plus `-c key=value` overrides."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ecr_sweeper.settings import (
    SETTING_KEYS,
    Settings,
    SettingsError,
    environment_problem,
    foreign_key_message,
    unknown_key_message,
)


class ConfigError(Exception):
    """The CLI's configuration can't be read; the message says what to fix."""


def add_settings_options(parser: argparse.ArgumentParser) -> None:
    """`--config` and `-c KEY=VALUE`, for every command that reads the settings."""
    parser.add_argument(
        "--config", type=Path, default=Path("cdk.json"),
        help="the cdk.json whose context holds the settings (default: ./cdk.json)",
    )  # fmt: skip
    parser.add_argument(
        "-c", "--context", action="append", default=[], metavar="KEY=VALUE",
        help="override a setting, as `cdk deploy -c` does (repeatable)",
    )  # fmt: skip


def load_settings(config: Path, overrides: Sequence[str]) -> Settings:
    """Settings from cdk.json's context with overrides applied, validated by the one schema.

    Errors name where each bad value came from: `-c` or the config file.
    """
    try:
        document = json.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{config}: not found; run from the project directory or pass --config PATH"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{config}: can't read it as JSON ({error})") from error
    except RecursionError:
        raise ConfigError(f"{config}: can't read it as JSON (nested too deeply)") from None
    raw = document.get("context") if isinstance(document, dict) else None
    if not isinstance(raw, dict):
        found = "no" if raw is None else "a non-object"
        raise ConfigError(
            f'{config}: {found} "context" object; --config takes the cdk.json whose "context" '
            "holds ecr-sweeper's settings"
        )
    if not any(key in SETTING_KEYS for key in raw):
        raise ConfigError(
            f'{config}: its "context" holds no ecr-sweeper setting; --config takes the cdk.json '
            "whose context holds them (e.g. keepTaggedImages)"
        )
    context: dict[str, Any] = dict(raw)
    origins = dict.fromkeys(raw, str(config))
    for override in overrides:
        key, separator, value = override.partition("=")
        if not separator or not key:
            raise ConfigError(f"-c {override!r}: expected KEY=VALUE, e.g. -c keepTaggedImages=5")
        if key not in SETTING_KEYS:
            damaged = key.strip() != key or " " in key
            message = foreign_key_message(key) if damaged else unknown_key_message(key)
            raise ConfigError(f"-c {message}")
        context[key] = value
        origins[key] = "-c"
    try:
        settings = Settings.from_context(context, base_dir=config.parent, origins=origins)
    except SettingsError as error:
        raise ConfigError(str(error)) from error
    problem = environment_problem(settings)
    if problem:
        print(f"ecr-sweeper: warning: `cdk deploy` would refuse this: {problem}", file=sys.stderr)
    return settings
