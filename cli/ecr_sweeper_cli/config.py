"""Reads the same settings the stack deploys: cdk.json context, plus `-c key=value` overrides."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from ecr_sweeper.aws.regions import region_problems
from ecr_sweeper.core.settings import (
    SETTING_KEYS,
    Settings,
    SettingsError,
    StackSettings,
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


def read_context(config: Path) -> dict[str, Any]:
    """cdk.json's context object, or a ConfigError saying what is wrong with the file."""
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
    return dict(raw)


def load_settings(config: Path, overrides: Sequence[str]) -> StackSettings:
    """Settings from cdk.json's context with overrides applied, validated by the one schema.

    Errors name where each bad value came from: `-c` or the config file.
    """
    context = read_context(config)
    origins = dict.fromkeys(context, str(config))
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
        settings = StackSettings.from_context(context, base_dir=config.parent, origins=origins)
    except SettingsError as error:
        raise ConfigError(str(error)) from error
    regions = region_problems(settings, origins)
    if regions:
        raise ConfigError(str(SettingsError(regions)))
    problem = environment_problem(settings)
    if problem:
        print(f"ecr-sweeper: warning: `cdk deploy` would refuse this: {problem}", file=sys.stderr)
    return settings


_WILDCARDS = ("*", "?")


def _literal_prefix(pattern: str) -> str:
    cut = min((pattern.index(w) for w in _WILDCARDS if w in pattern), default=len(pattern))
    return pattern[:cut]


def _within(inner: str, outer: str) -> bool:
    """Whether every name `inner` matches is matched by `outer` (decided for the clear cases)."""
    if not any(w in inner for w in _WILDCARDS):
        return fnmatchcase(inner, outer)
    if set(outer) == {"*"}:
        return True
    head = outer[:-1]
    if outer.endswith("*") and not any(w in head for w in _WILDCARDS):
        return _literal_prefix(inner).startswith(head)
    return False


def _disjoint(first: str, second: str) -> bool:
    """Whether no name can match both: their literal prefixes already differ."""
    a, b = _literal_prefix(first), _literal_prefix(second)
    if not any(w in first for w in _WILDCARDS) or not any(w in second for w in _WILDCARDS):
        return not (_within(first, second) or _within(second, first))
    return not (a.startswith(b) or b.startswith(a))


def narrow_repositories(settings: Settings, patterns: Sequence[str]) -> Settings:
    """Settings that select only repositories matching one of `patterns` among those the
    settings already select: includeRepositories is narrowed, excludeRepositories stays.

    Raises ConfigError for a bad pattern, or one whose overlap with includeRepositories can't be
    written as patterns (give a name, or a pattern inside one of the include patterns).
    """
    if not patterns:
        return settings
    for pattern in patterns:
        try:  # the settings' own check, so the flag accepts what includeRepositories does
            Settings.from_mapping({"includeRepositories": [pattern]})
        except SettingsError as error:
            raise ConfigError(
                f"--repository {pattern!r}: expected a repository name or pattern: lowercase "
                "letters, digits, '.', '_', '/', '-', and the wildcards '*' and '?'"
            ) from error
    narrowed: list[str] = []
    for pattern in patterns:
        for include in settings.include_repositories:
            if _within(pattern, include):
                narrowed.append(pattern)
            elif _within(include, pattern):
                narrowed.append(include)
            elif not _disjoint(pattern, include):
                raise ConfigError(
                    f"--repository {pattern!r}: can't be combined with includeRepositories "
                    f"pattern {include!r}; give a repository name, or a pattern within {include!r}"
                )
    return replace(settings, include_repositories=tuple(dict.fromkeys(narrowed)))
