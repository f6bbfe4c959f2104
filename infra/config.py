"""From CDK context to validated Settings: the glue app.py and the tests share.

The CDK CLI hands the app its context (cdk.json merged with `-c key=value`) through the
environment, and `cdk.App` loads it; `node.get_all_context()` is the one call that returns all of
it, whichever way the CLI chose to pass it (an environment variable or, when large, a file).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from ecr_sweeper.aws.regions import region_problems
from ecr_sweeper.core.settings import SettingsError, StackSettings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The repository root: where cdk.json, app.py and the `lambda/` asset folder live."""

CDK_JSON = PROJECT_ROOT / "cdk.json"
CDK_CONTEXT_JSON = PROJECT_ROOT / "cdk.context.json"
"""Where the CDK CLI keeps context lookups (and `cdk context --set` values)."""


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The `context` block of cdk.json (settings and feature flags), as `cdk synth` would see it.

    `cdk.App()` and `Template.from_stack` don't read cdk.json themselves, so tests pass this in.
    A cdk.json without a `context` object is an error: the stack would deploy the defaults.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SettingsError([f"{path.name}: can't read it as JSON ({error})"]) from None
    except RecursionError:
        raise SettingsError([f"{path.name}: can't read it as JSON (nested too deeply)"]) from None
    context = document.get("context") if isinstance(document, dict) else None
    if not isinstance(context, dict):
        found = "no" if context is None else "a non-object"
        raise SettingsError(
            [f'{path.name}: {found} "context" object; ecr-sweeper\'s settings live in it']
        )
    return context


def context_origins(context: Mapping[str, Any]) -> dict[str, str]:
    """Where each context value came from: cdk.json, cdk.context.json, or else `-c`."""
    files: list[tuple[str, dict[str, Any]]] = []
    for path in (CDK_JSON, CDK_CONTEXT_JSON):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            continue
        inner = document.get("context", {}) if path == CDK_JSON else document
        if isinstance(inner, dict):
            files.append((path.name, inner))
    origins: dict[str, str] = {}
    for key, value in context.items():
        origins[key] = next(
            (name for name, values in files if key in values and values[key] == value), "-c"
        )
    return origins


def settings_from_context(
    context: Mapping[str, Any], origins: Mapping[str, str] | None = None
) -> StackSettings:
    """Validate the ecr-sweeper keys among CDK context keys, and the regions against the SDK's
    partition data; raises SettingsError naming each key.

    A `lifecyclePolicyFile` path is read relative to the project root, not the current directory,
    so the result doesn't depend on where synth was started.
    """
    settings = StackSettings.from_context(context, base_dir=PROJECT_ROOT, origins=origins)
    problems = region_problems(settings, origins)
    if problems:
        raise SettingsError(problems)
    return settings


def settings_from_app(app: cdk.App) -> StackSettings:
    """Settings from all the context the app received (cdk.json, cdk.context.json, `-c`)."""
    context = app.node.get_all_context()
    return settings_from_context(context, context_origins(context))
