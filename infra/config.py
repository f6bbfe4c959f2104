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

from ecr_sweeper.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The repository root: where cdk.json, app.py and the `lambda/` asset folder live."""

CDK_JSON = PROJECT_ROOT / "cdk.json"


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The `context` block of cdk.json (settings and feature flags), as `cdk synth` would see it.

    `cdk.App()` and `Template.from_stack` don't read cdk.json themselves, so tests pass this in.
    """
    document = json.loads(path.read_text(encoding="utf-8"))
    context = document.get("context", {})
    if not isinstance(context, dict):
        raise ValueError(f"{path}: 'context' must be a JSON object")
    return context


def settings_from_context(context: Mapping[str, Any]) -> Settings:
    """Validate the ecr-sweeper keys among CDK context keys; raises SettingsError naming each key.

    A `lifecyclePolicyFile` path is read relative to the project root, not the current directory,
    so the result doesn't depend on where synth was started.
    """
    return Settings.from_context(context, base_dir=PROJECT_ROOT)


def settings_from_app(app: cdk.App) -> Settings:
    """Settings from all the context the app received (cdk.json, cdk.context.json, `-c`)."""
    return settings_from_context(app.node.get_all_context())
