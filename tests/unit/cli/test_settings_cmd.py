"""`ecr-sweeper settings` and the CLI's settings: each value's real source, settings another one
overrides, and regions the SDK doesn't know, refused as synth refuses them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ecr_sweeper_cli import main as cli

ROOT = Path(__file__).resolve().parents[3]
POLICY = {
    "rules": [
        {
            "rulePriority": 1,
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5},
            "action": {"type": "expire"},
        }
    ]
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's cdk.json (every setting at its default) and a policy file."""
    (tmp_path / "cdk.json").write_text((ROOT / "cdk.json").read_text())
    (tmp_path / "policy.json").write_text(json.dumps(POLICY))
    return tmp_path / "cdk.json"


def settings_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert cli.main(["settings", *argv, "--output", "json"]) == 0
    shown: dict[str, Any] = json.loads(capsys.readouterr().out)
    return shown


def test_an_overridden_setting_given_with_c_is_an_error_naming_the_winner(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--config", str(project), "-c", "lifecyclePolicyFile=policy.json"]
    code = cli.main(["settings", *argv, "-c", "keepTaggedImages=3"])
    error = capsys.readouterr().err
    assert code == 2
    assert error.startswith(
        "ecr-sweeper: invalid settings: keepTaggedImages (-c): 3 would not be used "
        "(lifecyclePolicyFile wins: a lifecycle policy replaces keepTaggedImages and "
        "untaggedGraceDays)"
    )
    assert "Traceback" not in error
    assert cli.main(["plan", *argv, "-c", "keepTaggedImages=3"]) == 2, "every command refuses it"
    assert "keepTaggedImages (-c): 3 would not be used" in capsys.readouterr().err


def test_settings_names_the_policy_files_source_and_marks_what_it_overrides(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """cdk.json has "lifecyclePolicy": null and "keepTaggedImages": 10; the policy comes from
    `-c lifecyclePolicyFile`, and keepTaggedImages is not used."""
    shown = settings_json(capsys, "--config", str(project), "-c", "lifecyclePolicyFile=policy.json")
    policy = shown["lifecyclePolicy"]
    assert policy["source"] == "-c lifecyclePolicyFile" and policy["file"] == "policy.json"
    assert policy["value"]["rules"][0]["selection"]["countNumber"] == 5
    kept = shown["keepTaggedImages"]
    assert kept["source"] == "cdk.json" and kept["unused"].startswith("lifecyclePolicyFile wins")
    assert "unused" in shown["untaggedGraceDays"]
    assert "unused" not in shown["protectedTags"]

    assert (
        cli.main(["settings", "--config", str(project), "-c", "lifecyclePolicyFile=policy.json"])
        == 0
    )
    table = capsys.readouterr().out
    assert "unused:" in table and "wins:" in table, "the table says so too (folded in cells)"

    plain = settings_json(capsys, "--config", str(project))
    assert "unused" not in plain["keepTaggedImages"]
    assert (
        plain["lifecyclePolicy"]["source"] == "cdk.json" and "file" not in plain["lifecyclePolicy"]
    )


def test_a_region_the_sdk_does_not_know_is_refused_before_any_call(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(
        ["plan", "--config", str(project), "--endpoint-url", "http://127.0.0.1:9", "-c",
         'regions=["eu-wset-1"]']
    )  # fmt: skip
    error = capsys.readouterr().err
    assert code == 2
    assert "regions (-c): 'eu-wset-1' is not a region botocore" in error
    assert "(did you mean 'eu-west-1'?)" in error and "allowUnknownRegions" in error
    escaped = settings_json(
        capsys,
        "--config",
        str(project),
        "-c",
        "regions=eu-wset-1",
        "-c",
        "allowUnknownRegions=true",
    )
    assert escaped["regions"]["value"] == ["eu-wset-1"]
