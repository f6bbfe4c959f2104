"""The real `cdk synth` (npm CLI + app.py) works offline, with no credentials, and applies `-c`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.synth

CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "CDK_CONTEXT_JSON",
)


def _cdk_synth(project_root: Path, outdir: Path, *context: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
    environment.update(
        CDK_DISABLE_CLI_TELEMETRY="true",
        CDK_DISABLE_VERSION_CHECK="1",
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1",
    )
    command = [str(project_root / "node_modules/.bin/cdk"), "synth", "--quiet", "-o", str(outdir)]
    for pair in context:
        command += ["-c", pair]
    return subprocess.run(
        command,
        cwd=project_root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_cdk_json_keeps_the_cli_offline(project_root: Path) -> None:
    document = json.loads((project_root / "cdk.json").read_text(encoding="utf-8"))
    assert document["notices"] is False
    assert document["app"] == ".venv/bin/python app.py"


def test_cli_synth_writes_the_template_and_applies_context_overrides(
    project_root: Path, tmp_path: Path
) -> None:
    result = _cdk_synth(project_root, tmp_path, "keepTaggedImages=5")
    assert result.returncode == 0, result.stderr
    template = json.loads((tmp_path / "EcrSweeper.template.json").read_text(encoding="utf-8"))
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in template["Resources"].values():
        by_type.setdefault(resource["Type"], []).append(resource["Properties"])

    [function] = by_type["AWS::Lambda::Function"]
    settings = json.loads(function["Environment"]["Variables"]["SWEEPER_SETTINGS"])
    assert settings["keepTaggedImages"] == 5
    [schedule] = by_type["AWS::Scheduler::Schedule"]
    assert schedule["ScheduleExpression"] == "cron(0 3 * * ? *)"
    [log_group] = by_type["AWS::Logs::LogGroup"]
    assert log_group["RetentionInDays"] == 90
    granted = {
        action
        for policy in by_type["AWS::IAM::Policy"]
        for statement in policy["PolicyDocument"]["Statement"]
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    assert "ecr:BatchDeleteImage" in granted
    assert "Traceback" not in result.stderr


def test_cli_synth_with_a_bad_value_fails_naming_the_key(
    project_root: Path, tmp_path: Path
) -> None:
    result = _cdk_synth(project_root, tmp_path, "keepTaggedImages=abc", "dryRun =true")
    assert result.returncode != 0
    assert 'keepTaggedImages (-c): got "abc"; expected a whole number' in result.stderr
    assert "\"dryRun \" (-c): settings are camelCase; did you mean 'dryRun'?" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "EcrSweeper.template.json").exists()
