"""`ecr-sweeper approve` over moto's CloudWatch Logs, CloudFormation and SSM: the held run's
summary is read from the log group, the approval goes into the stack's state parameter (the
cursor's keys kept), the next live run uses it once, and the run after that is guarded again."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from helpers.sweep import push
from test_guard import WOULD_DELETE, left, seed_eighty_percent
from test_runs_cli import LOG_GROUP, _lambda_output, _ship, handler  # noqa: F401 (fixture)
from test_sweeper_cli import run_cli, target

from ecr_sweeper.aws.ssm import STATE_PARAMETER_VARIABLE
from ecr_sweeper.core import log_events as ev
from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory

PARAMETER = "/ecr-sweeper/state"
STACK = "EcrSweeper"


@pytest.fixture
def stack(local_ecr: LocalEcr, monkeypatch: pytest.MonkeyPatch) -> None:
    """The deployed stack as approve reads it: its outputs, and the state parameter holding a
    cursor."""
    monkeypatch.setenv(STATE_PARAMETER_VARIABLE, PARAMETER)
    local_ecr.client("ssm").put_parameter(
        Name=PARAMETER, Value=json.dumps({"resumeFrom": "api"}), Type="String"
    )
    outputs = {
        "LogGroupName": LOG_GROUP,
        "StateParameterName": PARAMETER,
        "FunctionName": "EcrSweeper-no-such-function",
    }
    local_ecr.client("cloudformation").create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(
            {
                "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {key: {"Value": value} for key, value in outputs.items()},
            }
        ),
    )


def state(local_ecr: LocalEcr) -> dict[str, Any]:
    value = local_ecr.client("ssm").get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    document: dict[str, Any] = json.loads(value)
    return document


def test_approve_lets_the_next_run_delete_once_then_the_guard_is_back(
    handler: ModuleType,  # noqa: F811
    stack: None,
    local_ecr: LocalEcr,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = seed_eighty_percent(local_ecr)
    held, lines = _lambda_output(handler, capsys, "run-held-0001", {})
    assert held["outcome"] == "held" and left(local_ecr) == before
    _ship(local_ecr, [(datetime.now(UTC) - timedelta(minutes=30), lines)])

    listed = run_cli("runs", "--log-group", LOG_GROUP, *target(local_ecr))
    (row,) = [line for line in listed.stdout.splitlines() if "run-held-0001" in line]
    assert "held" in row and "(8 would)" in row, row
    shown = run_cli("runs", "show", "run-held-0001", "--log-group", LOG_GROUP, *target(local_ecr))
    text = " ".join(shown.stdout.split())
    assert "(held by the deletion guard," in text and "HELD 2 repositories" in text
    assert "held by the deletion guard: the plan deletes 8 of 10" in text

    refused = run_cli("approve", "run-held-0001", *target(local_ecr))
    assert refused.returncode == 2 and "refusing to approve without --yes" in refused.stderr
    assert "approval" not in state(local_ecr)

    approved = run_cli(
        "approve", "run-held-0001", "--yes", "--expires-in", "2d", *target(local_ecr)
    )
    assert approved.returncode == 0, approved.stderr
    text = " ".join(approved.stdout.split())
    assert "was held: the plan deletes 8 of 10 images scanned (80%)" in text
    assert "up to 9 images (8 planned, plus 10% for images pushed since)" in text
    rows = [line for line in approved.stdout.splitlines() if line.startswith(("│ api", "│ web"))]
    assert len(rows) == 2 and all(line.rstrip("│ ").endswith("4") for line in rows), rows
    document = state(local_ecr)
    assert document["resumeFrom"] == "api", "the cursor's key is kept"
    approval = document["approval"]
    assert (approval["runId"], approval["maxDeletions"], approval["usedBy"]) == (
        "run-held-0001",
        WOULD_DELETE + 1,
        None,
    )
    expires = datetime.fromisoformat(approval["expiresAt"])
    assert timedelta(days=2) - (expires - datetime.now(UTC)) < timedelta(minutes=5)

    used, used_lines = _lambda_output(handler, capsys, "run-next-0002", {})
    assert used["outcome"] == "succeeded" and used["imagesDeleted"] == WOULD_DELETE
    assert used["guard"]["approvalUsed"] == "run-held-0001"
    assert [len(images) for images in left(local_ecr).values()] == [1, 1]
    records = [json.loads(line) for line in used_lines if line.startswith("{")]
    assert [r for r in records if r.get(ev.EVENT) == ev.GUARD_APPROVAL_USED]
    after = state(local_ecr)
    assert after["approval"]["usedBy"] == "run-next-0002"
    assert "resumeFrom" not in after, "the run finished: its cursor write kept the approval"

    make = ManifestFactory(random.Random(23))
    for days in (5, 6, 7, 8, 9, 10, 11, 12):
        push(local_ecr, "web", make.image(compact=True), None, days)
    again, _ = _lambda_output(handler, capsys, "run-third-0003", {})
    assert again["outcome"] == "held" and again["imagesDeleted"] == 0
    assert again["guard"]["wouldDelete"] == 8 and again["guard"]["approvalUsed"] is None


def test_approve_refuses_a_run_that_was_not_held_and_says_when_it_cannot_start(
    handler: ModuleType,  # noqa: F811
    stack: None,
    local_ecr: LocalEcr,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make = ManifestFactory(random.Random(24))
    push(local_ecr, "web", make.image(compact=True), "v1", 3)
    fine, fine_lines = _lambda_output(handler, capsys, "run-fine-0001", {})
    seed_eighty_percent(local_ecr)
    _, held_lines = _lambda_output(handler, capsys, "run-held-0002", {})
    now = datetime.now(UTC)
    _ship(
        local_ecr, [(now - timedelta(hours=2), fine_lines), (now - timedelta(hours=1), held_lines)]
    )
    assert fine["outcome"] == "succeeded"
    not_held = run_cli("approve", "run-fine-0001", "--yes", *target(local_ecr))
    assert not_held.returncode == 2
    assert "the deletion guard did not hold it (outcome: succeeded)" in not_held.stderr
    unknown = run_cli("approve", "run-nope-0003", "--yes", *target(local_ecr))
    assert unknown.returncode == 2 and "no run.summary record" in unknown.stderr
    started = run_cli("approve", "run-held-0002", "--yes", "--now", *target(local_ecr))
    assert (
        started.returncode == 2 and "approved, but the run could not be started" in started.stderr
    )
    assert "Traceback" not in started.stderr
    assert state(local_ecr)["approval"]["runId"] == "run-held-0002"
