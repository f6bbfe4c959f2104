"""The README's sample policy.json is valid and does what the README says it does, through the
`evaluate` command its example runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ecr_sweeper_cli.main import main

README = Path(__file__).resolve().parents[3] / "README.md"
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _sample_policy() -> dict[str, object]:
    after = README.read_text().split("A `policy.json` to start from", 1)[1]
    block = after.split("```json\n", 1)[1].split("```", 1)[0]
    document: dict[str, object] = json.loads(block)
    return document


def test_the_readme_sample_policy_evaluates_as_described(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def detail(number: int, tag: str | None, days: float) -> dict[str, object]:
        image: dict[str, object] = {
            "imageDigest": f"sha256:{number:064x}",
            "imagePushedAt": (NOW - timedelta(days=days)).isoformat(),
        }
        if tag:
            image["imageTags"] = [tag]
        return image

    releases = [detail(n, f"v1.{n}", 30 - n) for n in range(12)]  # v1.0 is the oldest
    untagged = [detail(100, None, 2), detail(101, None, 0.5)]
    other = [detail(200, "main", 90)]
    (tmp_path / "policy.json").write_text(json.dumps(_sample_policy()))
    (tmp_path / "images.json").write_text(json.dumps({"imageDetails": releases + untagged + other}))
    code = main(
        [
            "evaluate", "--policy", str(tmp_path / "policy.json"),
            "--images", str(tmp_path / "images.json"), "--now", NOW.isoformat(),
        ]
    )  # fmt: skip
    assert code == 0
    expired = set(json.loads(capsys.readouterr().out)["expired"])
    assert expired == {f"sha256:{n:064x}" for n in (0, 1, 100)}
