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
    POLICY_FILES,
    StackSettings,
    describe_settings,
    json_schema,
    unused_settings,
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
    """{key: {value, source, default, help}} for every setting, validated as synth does.

    `source` is where the value really came from: a policy read from its file names the file
    key (`-c lifecyclePolicyFile`), and a setting another one overrides has `unused` saying
    which one wins.
    """
    settings = load_settings(config, overrides)
    context = read_context(config)
    given = dict(context)
    for override in overrides:
        key, _, value = override.partition("=")
        given[key] = value
    overridden = {o.partition("=")[0] for o in overrides}
    values = json.loads(settings.to_json())
    defaults = json.loads(StackSettings().to_json())
    helps = dict(describe_settings())
    files = {key for key in POLICY_FILES if given.get(key) not in (None, "")}
    unused = unused_settings(settings, files)

    def source(key: str) -> str:
        if key in overridden:
            return OVERRIDE
        return CDK_JSON if key in context else DEFAULT

    result: dict[str, dict[str, Any]] = {}
    for key in (key for key in helps if key in values):  # the schema's order
        entry: dict[str, Any] = {
            "value": values[key],
            "source": source(key),
            "default": defaults[key],
            "help": helps.get(key, ""),
        }
        file_key = next((f for f, setting in POLICY_FILES.items() if setting == key), None)
        if file_key in files:
            entry["source"] = f"{source(file_key)} {file_key}"
            entry["file"] = given[file_key]
        if key in unused:
            entry["unused"] = unused[key]
        result[key] = entry
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
        origin = entry["source"]
        if "unused" in entry:
            style, origin = "dim", f"{origin}; unused: {entry['unused']}"
        table.add_row(
            key,
            Text(value, style=style),
            origin,
            Text(_shown(entry["default"])),
            Text(entry["help"]),
        )
    console_for_output().print(table)
    return 0
