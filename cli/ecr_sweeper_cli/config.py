"""Reads the same settings the stack deploys: cdk.json context, plus `-c key=value` overrides."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ecr_sweeper.settings import SETTING_KEYS, Settings, SettingsError, unknown_key_message


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
    """Settings from cdk.json's context with overrides applied, validated by the one schema."""
    try:
        document = json.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{config}: not found; run from the project directory or pass --config PATH"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{config}: can't read it as JSON ({error})") from error
    raw = document.get("context", {}) if isinstance(document, dict) else None
    if not isinstance(raw, dict):
        raise ConfigError(f'{config}: expected a JSON object with a "context" object')
    context: dict[str, Any] = dict(raw)
    for override in overrides:
        key, separator, value = override.partition("=")
        if not separator or not key:
            raise ConfigError(f"-c {override!r}: expected KEY=VALUE, e.g. -c keepTaggedImages=5")
        if key.strip() not in SETTING_KEYS:
            raise ConfigError(f"-c {unknown_key_message(key.strip())}")
        context[key.strip()] = value
    try:
        return Settings.from_context(context, base_dir=config.parent)
    except SettingsError as error:
        raise ConfigError(f"{config}: {error}") from error
