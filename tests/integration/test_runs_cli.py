"""`ecr-sweeper runs` over moto's CloudWatch Logs, holding what the real handler logged.

The handler runs against the local ECR; its stdout (Powertools JSON, one record a line) goes into
a log group exactly as Lambda ships it, between Lambda's own START/REPORT lines.
"""

from __future__ import annotations

import importlib
import json
import logging
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from helpers.lambda_context import LambdaContext
from helpers.sweep import push
from test_sweeper_cli import run_cli

from ecr_sweeper.aws.clients import AwsTarget
from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core import metrics_catalog
from ecr_sweeper.core.settings import ENVIRONMENT_VARIABLE, Settings
from ecr_sweeper_cli import run_logs
from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory

LOG_GROUP = "/aws/lambda/EcrSweeper-SweeperFunction"
STREAM = "2026/11/30/[$LATEST]0123456789abcdef"


@pytest.fixture
def handler(local_ecr: LocalEcr, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, Settings().to_json())
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_ecr.endpoint_url)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", metrics_catalog.SERVICE)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "EcrSweeper")
    yield importlib.reload(importlib.import_module("ecr_sweeper.handlers.sweeper"))
    _log_to(sys.__stdout__)


def _log_to(stream: Any) -> None:
    for stream_handler in logging.getLogger(metrics_catalog.SERVICE).handlers:
        if isinstance(stream_handler, logging.StreamHandler):
            stream_handler.stream = stream


def _lambda_output(
    handler: ModuleType, capsys: pytest.CaptureFixture[str], run_id: str, event: Any
) -> tuple[dict[str, Any], list[str]]:
    """The handler's result, and its stdout lines as Lambda would ship them."""
    capsys.readouterr()
    _log_to(sys.stdout)
    result = handler.lambda_handler(event, LambdaContext(aws_request_id=run_id))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    return result, [f"START RequestId: {run_id} Version: $LATEST", *lines, f"REPORT {run_id}"]


def _ship(local_ecr: LocalEcr, batches: list[tuple[datetime, list[str]]]) -> None:
    logs = local_ecr.client("logs")
    logs.create_log_group(logGroupName=LOG_GROUP)
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=STREAM)
    events = [
        {"timestamp": int(at.timestamp() * 1000) + offset, "message": line}
        for at, lines in batches
        for offset, line in enumerate(lines)
    ]
    logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=STREAM, logEvents=events)


@pytest.fixture
def two_runs(
    handler: ModuleType, local_ecr: LocalEcr, capsys: pytest.CaptureFixture[str]
) -> dict[str, dict[str, Any]]:
    """A dry run two hours ago and a live run one hour ago, as the function logged them."""
    make = ManifestFactory(random.Random(5))
    for number in range(13):
        push(local_ecr, "web", make.image(compact=True), f"v{number}", 40 - number)
    for days in (9, 5):
        push(local_ecr, "api", make.image(compact=True), None, days)
    push(local_ecr, "api", make.image(compact=True), "latest", 50)
    push(local_ecr, "idle", make.image(compact=True), "v1", 3)
    dry, dry_lines = _lambda_output(handler, capsys, "run-dry-0001", {"dryRun": True})
    live, live_lines = _lambda_output(handler, capsys, "run-live-0002", {})
    now = datetime.now(UTC)
    _ship(
        local_ecr, [(now - timedelta(hours=2), dry_lines), (now - timedelta(hours=1), live_lines)]
    )
    return {"dry": dry, "live": live}


def target(local_ecr: LocalEcr) -> list[str]:
    return ["--endpoint-url", local_ecr.endpoint_url, "--region", local_ecr.region]


def test_runs_lists_the_logged_summaries_newest_first(
    two_runs: dict[str, dict[str, Any]], local_ecr: LocalEcr
) -> None:
    as_json = run_cli("runs", "--log-group", LOG_GROUP, *target(local_ecr), "--output", "json")
    assert as_json.returncode == 0, as_json.stderr
    listed = json.loads(as_json.stdout)
    assert [r["runId"] for r in listed] == ["run-live-0002", "run-dry-0001"]
    assert all(r[ev.EVENT] == ev.RUN_SUMMARY for r in listed)
    live = listed[0]
    for key, value in two_runs["live"].items():
        # The logged summary is the handler's whole result (Powertools drops null fields).
        assert live.get(key) == value, key
    assert live["imagesDeleted"] == 5 and live["dryRun"] is False

    table = run_cli("runs", "--log-group", LOG_GROUP, *target(local_ecr))
    assert table.returncode == 0, table.stderr
    rows = [line for line in table.stdout.splitlines() if "run-" in line]
    assert [("run-live-0002" in row, "live" in row) for row in rows] == [
        (True, True),
        (False, False),
    ]
    assert "dry run" in rows[1] and "(5 would)" in rows[1]
    gb = two_runs["live"]["bytesReclaimed"] / 1e9
    assert f"{gb:.2f}" in rows[0] and "none" in rows[0]


def test_runs_finds_the_log_group_through_the_stack_output(
    two_runs: dict[str, dict[str, Any]], local_ecr: LocalEcr
) -> None:
    local_ecr.client("cloudformation").create_stack(
        StackName="EcrSweeper",
        TemplateBody=json.dumps(
            {
                "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {run_logs.LOG_GROUP_OUTPUT: {"Value": LOG_GROUP}},
            }
        ),
    )
    result = run_cli("runs", *target(local_ecr), "--output", "json")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 2
    missing = run_cli("runs", "--stack-name", "NoSuchStack", *target(local_ecr))
    assert missing.returncode == 2 and "--stack-name NoSuchStack" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_since_leaves_older_runs_out_and_is_validated(
    two_runs: dict[str, dict[str, Any]], local_ecr: LocalEcr
) -> None:
    recent = run_cli(
        "runs", "--log-group", LOG_GROUP, *target(local_ecr), "--since", "90m", "--output", "json"
    )
    assert [r["runId"] for r in json.loads(recent.stdout)] == ["run-live-0002"]
    for bad in ("7x", "-3h"):  # the rest of the grammar: tests/unit/test_cli_output.py
        refused = run_cli("runs", "--log-group", LOG_GROUP, *target(local_ecr), f"--since={bad}")
        assert refused.returncode == 2, bad
        assert "expected a whole number and a unit m, h, d or w" in refused.stderr


def test_runs_show_gives_the_plan_summary_and_the_deletions(
    two_runs: dict[str, dict[str, Any]], local_ecr: LocalEcr
) -> None:
    shown = run_cli("runs", "show", "run-live-0002", "--log-group", LOG_GROUP, *target(local_ecr))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "Run run-live-0002 (live run" in shown.stdout
    (web,) = [line for line in lines if line.startswith("web ") and "│" in line]
    assert [cell.strip() for cell in web.split("│")[1:3]] == ["13", "3"], (
        web
    )  # 13 images, 3 deleted (keep 10 tagged)
    assert "1 repository with nothing to do (1 image, all kept): idle" in shown.stdout
    assert "Estimated saving: $" in shown.stdout
    assert "Images" not in shown.stdout

    details = run_cli(
        "runs", "show", "run-live-0002", "--details", "--log-group", LOG_GROUP, *target(local_ecr)
    )
    assert details.returncode == 0, details.stderr
    assert details.stdout.count("deleted ") >= 5 and "would delete" not in details.stdout

    as_json = run_cli(
        "runs", "show", "run-live-0002", "--details", "--output", "json",
        "--log-group", LOG_GROUP, *target(local_ecr),
    )  # fmt: skip
    document = json.loads(as_json.stdout)
    assert document["runId"] == "run-live-0002"
    assert len(document["images"]) == 5
    assert {r[ev.EVENT] for r in document["images"]} == {ev.IMAGE_DELETED}
    assert {r["repository"] for r in document["images"]} == {"web", "api"}

    unknown = run_cli("runs", "show", "run-nope", "--log-group", LOG_GROUP, *target(local_ecr))
    assert unknown.returncode == 2 and "run run-nope: no run.summary record" in unknown.stderr
    bad_id = run_cli("runs", "show", 'x" || 1', "--log-group", LOG_GROUP, *target(local_ecr))
    assert bad_id.returncode == 2 and "is not a run id" in bad_id.stderr


def test_every_page_of_filter_log_events_is_read(
    two_runs: dict[str, dict[str, Any]], local_ecr: LocalEcr
) -> None:
    start = datetime.now(UTC) - timedelta(days=1)
    target = AwsTarget(region=local_ecr.region, endpoint_url=local_ecr.endpoint_url)
    local_ecr.reset_counters()
    found = list(
        run_logs.records(
            target,
            LOG_GROUP,
            (ev.IMAGE_DELETED, ev.IMAGE_EXPIRED_DRY_RUN),
            start=start,
            page_size=2,
        )
    )
    assert len(found) == 10  # 5 would-delete records of the dry run, 5 deletions of the live one
    assert local_ecr.calls_for("logs")["FilterLogEvents"] > 4
    live = list(
        run_logs.records(
            target, LOG_GROUP, (ev.IMAGE_DELETED,), start=start, run_id="run-live-0002"
        )
    )
    assert len(live) == 5


@pytest.mark.parametrize("columns", [80, 100])
def test_runs_tables_fit_the_terminal(
    two_runs: dict[str, dict[str, Any]], local_ecr: LocalEcr, columns: int
) -> None:
    from test_cli_widths import on_terminal

    for command in (["runs"], ["runs", "show", "run-live-0002", "--details"]):
        code, lines = on_terminal(columns, *command, "--log-group", LOG_GROUP, *target(local_ecr))
        text = "\n".join(lines)
        assert code == 0, text
        assert max(len(line) for line in lines) <= columns, text
        assert "…" not in text and "run-live-0002" in text
