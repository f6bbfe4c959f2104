"""`ecr-sweeper settings`: the effective settings, where each came from, and its default.

Validated by the same schema and the same context reading as `cdk synth`, so what this prints is
what a deploy would use; bad settings exit 2 with the usual one line per key.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from ecr_sweeper.core.settings import (
    POLICY_FILE_KEY,
    StackSettings,
    describe_settings,
    json_schema,
)
from ecr_sweeper_cli.config import add_settings_options, load_settings, read_context

DEFAULT, CDK_JSON, OVERRIDE = "default", "cdk.json", "-c"


def register(commands: Any) -> None:
    summary = "print the effective settings (cdk.json plus -c), each with its source and default"
    parser = commands.add_parser("settings", help=summary, description=summary)
    add_settings_options(parser)
    parser.add_argument(
        "--output", choices=("table", "json"), default="table",
        help="table (default) or json: {key: {value, source, default}}",
    )  # fmt: skip
    parser.add_argument(
        "--schema", action="store_true",
        help="print the JSON Schema of every setting (keys, defaults, bounds) and exit",
    )  # fmt: skip
    parser.set_defaults(func=run)


def effective_settings(config: Path, overrides: list[str]) -> dict[str, dict[str, Any]]:
    """{key: {value, source, default, help}} for every setting, validated as synth does."""
    settings = load_settings(config, overrides)
    context = read_context(config)
    overridden = {o.partition("=")[0].strip() for o in overrides}
    values = json.loads(settings.to_json())
    defaults = json.loads(StackSettings().to_json())
    helps = dict(describe_settings())

    def source(key: str) -> str:
        if key in overridden:
            return OVERRIDE
        return CDK_JSON if key in context else DEFAULT

    result: dict[str, dict[str, Any]] = {}
    for key in (key for key in helps if key in values):  # the schema's order
        value = values[key]
        origin = source(key)
        if key == "lifecyclePolicy" and origin == DEFAULT and value is not None:
            origin = source(POLICY_FILE_KEY)
        result[key] = {
            "value": value,
            "source": origin,
            "default": defaults[key],
            "help": helps.get(key, ""),
        }
    policy_file = context.get(POLICY_FILE_KEY)
    if POLICY_FILE_KEY in overridden:
        policy_file = next(
            o.partition("=")[2] for o in reversed(overrides) if o.startswith(POLICY_FILE_KEY)
        )
    if policy_file not in (None, ""):
        result["lifecyclePolicy"]["file"] = policy_file
    return result


def _shown(value: Any) -> str:
    if isinstance(value, dict) and "rules" in value:
        count = len(value["rules"])
        return f"{count} rule{'s' if count != 1 else ''} (see --output json)"
    return json.dumps(value)


def run(args: argparse.Namespace) -> int:
    if args.schema:
        json.dump(json_schema(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    settings = effective_settings(args.config, args.context)
    if args.output == "json":
        json.dump(
            {
                key: {k: v for k, v in entry.items() if k != "help"}
                for key, entry in settings.items()
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
        return 0
    from ecr_sweeper_cli.render import console_for_output

    table = Table(title=f"Effective settings ({args.config} plus -c)", title_justify="left")
    for column in ("setting", "value", "source", "default", "what it does"):
        table.add_column(column, overflow="fold")
    for key, entry in settings.items():
        value = _shown(entry["value"])
        if "file" in entry:
            value += f" from {entry['file']}"
        style = "bold" if entry["source"] != DEFAULT else ""
        table.add_row(
            key,
            Text(value, style=style),
            entry["source"],
            Text(_shown(entry["default"])),
            Text(entry["help"]),
        )
    console_for_output().print(table)
    return 0
