"""What the README and docs/dashboard.md count (alarms, panels) is what the stack synthesizes.

The numbers come from the template, so a change that adds an alarm or a panel fails here until
the docs say so; only the docs' text needs the update."""

from __future__ import annotations

import re
from pathlib import Path

from helpers.infra import Synthesized, dashboard_body

NUMBER_WORDS = {
    word: number
    for number, word in enumerate(
        ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen", "twenty")
    )
}  # fmt: skip


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() else NUMBER_WORDS.get(text.lower())


def _counted(document: str, noun: str) -> list[int]:
    """Every 'seven alarms' / '7 alarms' in the text, as numbers."""
    found = (_number(word) for word in re.findall(rf"\b(\w+) {noun}\b", document))
    return [number for number in found if number is not None]


def _docs(project_root: Path) -> dict[str, str]:
    return {
        name: (project_root / name).read_text()
        for name in ("README.md", "docs/dashboard.md", "docs/architecture.md")
    }


def test_the_docs_count_the_alarms_the_template_has(
    default_app: Synthesized, project_root: Path
) -> None:
    alarms = len(default_app.resources("AWS::CloudWatch::Alarm"))
    on_the_dashboard = [
        widget["properties"]["alarms"]
        for widget in dashboard_body(default_app)["widgets"]
        if widget["type"] == "alarm"
    ]
    assert [len(listed) for listed in on_the_dashboard] == [alarms], "one panel lists them all"
    docs = _docs(project_root)
    counts = {name: _counted(text, "alarms") for name, text in docs.items()}
    assert all(number == alarms for found in counts.values() for number in found), counts
    assert len(counts["README.md"]) >= 3 and counts["docs/dashboard.md"], "the test reads them"
    sketch = docs["README.md"].split("### The dashboard", 1)[1].split("```", 2)[1]
    assert re.findall(r"\|\((\d+)\)\s*\|", sketch) == [str(alarms)], "the sketch's Alarms panel"


def test_the_readme_counts_the_dashboard_s_panels(
    default_app: Synthesized, project_root: Path
) -> None:
    panels = len(dashboard_body(default_app)["widgets"])
    readme = (project_root / "README.md").read_text()
    assert _counted(readme, "panels") == [panels]
