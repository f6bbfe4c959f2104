"""How every command ends when its reader goes away (`| head -1`) or the user presses Ctrl-C:
the Unix rules, the same in every command."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from test_sweeper_cli import CLI, ROOT, target

from local_ecr import LocalEcr

POLICY = {
    "rules": [
        {
            "rulePriority": 1,
            "selection": {
                "tagStatus": "untagged",
                "countType": "imageCountMoreThan",
                "countNumber": 1,
            },
            "action": {"type": "expire"},
        }
    ]
}


def _environment() -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "POWERTOOLS_"))
    }
    environment.update(
        AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        AWS_EC2_METADATA_DISABLED="true",
    )  # fmt: skip
    return environment


def _into_closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with stdout a pipe whose reader has already gone, as `| head -1` leaves it
    once head has its line."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run(
            [str(CLI), *args],
            cwd=ROOT,
            env=_environment(),
            stdin=subprocess.DEVNULL,
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(writer)


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(POLICY))
    return path


def test_every_command_exits_141_quietly_when_its_output_is_closed(
    local_ecr: LocalEcr, policy_file: Path, tmp_path: Path
) -> None:
    local_ecr.seed("demo")
    images = tmp_path / "images.json"
    images.write_text(
        json.dumps(
            {"imageDetails": [{"imageDigest": "sha256:" + "a" * 64, "imagePushedAt": 1780000000}]}
        )
    )
    commands = [
        ["plan", *target(local_ecr)],
        ["plan", *target(local_ecr), "--details"],
        ["plan", *target(local_ecr), "--output", "json"],
        ["policy", "plan", "--policy", str(policy_file), *target(local_ecr)],
        ["policy", "plan", "--policy", str(policy_file), *target(local_ecr), "--output", "json"],
        ["evaluate", "--policy", str(policy_file), "--images", str(images)],
        ["settings"],
        ["settings", "--output", "json"],
        ["settings", "--schema"],
        ["sweep", *target(local_ecr), "--yes"],
        ["sweep", *target(local_ecr), "--yes", "--output", "json"],
        ["demo"],
    ]
    for command in commands:
        result = _into_closed_pipe(*command)
        assert (result.returncode, result.stderr) == (141, ""), command
