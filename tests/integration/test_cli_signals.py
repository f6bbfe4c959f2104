"""How every command ends when its reader goes away (`| head -1`) or the user presses Ctrl-C:
the Unix rules, the same in every command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers.sweep import remaining
from test_sweeper_cli import CLI, ROOT, run_cli, target

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


REAL_SLEEP = time.sleep
"""Taken before tests/integration/conftest.py patches sleeping away (for botocore's backoff),
which would also take the local ECR's latency away."""


@pytest.fixture(autouse=True)
def _a_slow_local_ecr_really_waits(no_retry_sleep: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", REAL_SLEEP)


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


def _image_count(local_ecr: LocalEcr) -> dict[str, int]:
    client = local_ecr.client("ecr")
    names = [r["repositoryName"] for r in client.describe_repositories()["repositories"]]
    return {name: len(remaining(local_ecr, name)) for name in names}


def _start(local_ecr: LocalEcr, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(CLI), *args, *target(local_ecr)],
        cwd=ROOT,
        env=_environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_calls(local_ecr: LocalEcr, operation: str, count: int) -> None:
    """Until `count` calls of `operation` were served (a call counts after its latency)."""
    deadline = time.monotonic() + 60
    while local_ecr.calls_for("ecr")[operation] < count:
        assert time.monotonic() < deadline, f"no {operation} calls: {local_ecr.calls}"
        time.sleep(0.05)


def test_ctrl_c_stops_starting_batches_finishes_those_in_flight_and_exits_130(
    local_ecr: LocalEcr,
) -> None:
    """SIGINT against a slow local ECR, mid-sweep: no traceback, one line saying what was
    deleted, the summary so far, exit 130; what was deleted is exactly what it says."""
    local_ecr.seed("ci:12x30")
    before = _image_count(local_ecr)
    local_ecr.faults.latency(0.3, operation="BatchDeleteImage")
    local_ecr.faults.latency(0.2, operation="DescribeImages")
    unguarded = ("-c", "guardMaxDeletionFraction=1")  # the seeded registry is two-thirds old
    sweep = _start(local_ecr, "sweep", "--yes", "--concurrency", "2", *unguarded)
    _wait_for_calls(local_ecr, "BatchDeleteImage", 1)
    sweep.send_signal(signal.SIGINT)
    stdout, stderr = sweep.communicate(timeout=60)
    after = _image_count(local_ecr)

    assert sweep.returncode == 130, stderr
    assert "Traceback" not in stderr and "RuntimeError" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("ecr-sweeper: interrupted:")]
    assert len(lines) == 1, stderr
    deleted = sum(before.values()) - sum(after.values())
    touched = sum(1 for name in before if after[name] < before[name])
    assert 0 < touched < len(before), "stopped part way: some repositories never started"
    assert lines[0] == (
        f"ecr-sweeper: interrupted: {deleted} images deleted in {touched} "
        f"{'repository' if touched == 1 else 'repositories'}; run again to finish"
    )
    assert "unfinished (interrupted)" in stdout, stdout
    assert f"deleted {deleted} images" in stdout, "the summary so far, with its totals"
    assert len(stderr.splitlines()) <= 3, stderr

    again = run_cli("sweep", "--yes", *target(local_ecr), "--output", "json", *unguarded)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["imagesDeleted"] > 0, "running again finishes the job"


def test_a_second_ctrl_c_exits_at_once(local_ecr: LocalEcr) -> None:
    local_ecr.seed("ci:4x10")
    local_ecr.faults.latency(30.0, operation="DescribeImages")
    plan = _start(local_ecr, "plan")
    _wait_for_calls(local_ecr, "ListTagsForResource", 4)  # counted once served
    time.sleep(1)  # every repository's listing is in flight, for 30 s
    plan.send_signal(signal.SIGINT)
    time.sleep(0.5)
    started = time.monotonic()
    plan.send_signal(signal.SIGINT)
    _, stderr = plan.communicate(timeout=20)
    assert plan.returncode == 130, stderr
    assert time.monotonic() - started < 5, "not after the 30 s call in flight"
    assert "Traceback" not in stderr and "exiting now" in stderr, stderr
