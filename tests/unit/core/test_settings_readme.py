"""README's settings table and the settings' JSON Schema list the same keys, defaults and bounds."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ecr_sweeper.core.settings import NATIVE_POLICY_FILE_KEY, POLICY_FILE_KEY, json_schema

ROOT = Path(__file__).resolve().parents[3]
ROW = re.compile(r"^\| `([A-Za-z]+)` \| `([^`]*)` \| (.*) \|$")
BOUNDS = re.compile(r"\((?:[^()]*\D)?(\d+)[\u2013-](\d+)\)")


def readme_rows() -> dict[str, tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return {m[1]: (m[2], m[3]) for line in text.splitlines() if (m := ROW.match(line))}


def test_the_readme_table_and_the_schema_list_the_same_keys_defaults_and_bounds() -> None:
    properties = json_schema()["properties"]
    rows = readme_rows()
    assert set(rows) == {*properties, POLICY_FILE_KEY, NATIVE_POLICY_FILE_KEY}
    for key, entry in properties.items():
        default, text = rows[key]
        assert json.loads(default) == entry["default"], f"README's default of {key}"
        bounds = BOUNDS.search(text)
        if bounds and "minimum" in entry:
            low, high = int(bounds[1]), int(bounds[2])
            assert (low, high) == (entry["minimum"], entry["maximum"]), f"README's bounds of {key}"
