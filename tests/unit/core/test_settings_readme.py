"""README's settings table and the settings' JSON Schema list the same keys, defaults and bounds."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ecr_sweeper.core.settings import NATIVE_POLICY_FILE_KEY, POLICY_FILE_KEY, json_schema

ROOT = Path(__file__).resolve().parents[3]
ROW = re.compile(r"^\| `([A-Za-z]+)` \| `([^`]*)` \| (.*) \|$")
RANGE = re.compile(r"(?<![\d.])(\d+)\u2013(\d+)(?![\d.])")
"""A range as the table writes it: two numbers around an en dash (U+2013)."""


def readme_rows() -> dict[str, tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return {m[1]: (m[2], m[3]) for line in text.splitlines() if (m := ROW.match(line))}


def _bounds(entry: dict[str, Any]) -> tuple[int, int] | None:
    """A setting's whole-number bounds in the schema (an optional one's are in its anyOf)."""
    for branch in (entry, *entry.get("anyOf", ())):
        if branch.get("type") == "integer" and "minimum" in branch:
            return branch["minimum"], branch["maximum"]
    return None


def test_the_readme_table_and_the_schema_list_the_same_keys_defaults_and_bounds() -> None:
    properties = json_schema()["properties"]
    rows = readme_rows()
    assert set(rows) == {*properties, POLICY_FILE_KEY, NATIVE_POLICY_FILE_KEY}
    for key, entry in properties.items():
        default, text = rows[key]
        assert json.loads(default) == entry["default"], f"README's default of {key}"
        bounds = _bounds(entry)
        if bounds is not None:
            stated = [(int(low), int(high)) for low, high in RANGE.findall(text)]
            assert stated == [bounds], f"README's range of {key}: {stated}, schema {bounds}"
