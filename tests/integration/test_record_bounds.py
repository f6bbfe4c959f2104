"""Every record the function writes stays inside CloudWatch Logs' event limit, and so does what it
returns, at registry sizes that used to pass them: 1,000 repositories, 2,000 delete failures.

The handler runs against the local ECR; its stdout is shipped into moto's CloudWatch Logs, and
`ecr-sweeper runs` reads it back, as from a deployed function.
"""

from __future__ import annotations

import io
import json
import logging
import random
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from helpers.sweep import push, sweeper
from test_runs_cli import LOG_GROUP, _lambda_output, _ship, handler  # noqa: F401 (fixture)
from test_sweeper_cli import run_cli

from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core.results import FAILED
from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory

REPOSITORIES = 1_000
ONE_REPOSITORY_BEFORE = 287_156 / 1_000
"""Bytes per repository the run.summary record took when it listed every repository."""
ACCESS_DENIED = (
    "User: arn:aws:sts::123456789012:assumed-role/EcrSweeper-SweeperFunctionServiceRole-1A2B3C4D"
    "5E6F/EcrSweeper-SweeperFunction-7G8H9I0J1K2L is not authorized to perform: "
    "ecr:BatchDeleteImage on resource: arn:aws:ecr:us-east-1:123456789012:repository/denied "
    "with an explicit deny in a service control policy"
)
"""As long as AWS's real AccessDenied text for a denied BatchDeleteImage."""


def _size(line: str) -> int:
    return len(line.encode())


def _records(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.startswith("{")]


@pytest.fixture
def thousand_repositories(
    handler: ModuleType,  # noqa: F811
    local_ecr: LocalEcr,
    capsys: pytest.CaptureFixture[str],
) -> tuple[dict[str, Any], list[str]]:
    """A dry run over 1,000 repositories with 40-character names, shipped to the log group."""
    make = ManifestFactory(random.Random(11))
    for number in range(REPOSITORIES):
        name = f"team-{number:04d}/" + "service-name-padding-to-forty"[: 40 - 10]
        push(local_ecr, name, make.image(compact=True), None, 30)
        push(local_ecr, name, make.image(compact=True), "v1", 30)
    result, lines = _lambda_output(handler, capsys, "run-thousand-01", {"dryRun": True})
    _ship(local_ecr, [(datetime.now(UTC) - timedelta(minutes=30), lines)])
    return result, lines


def _cli(local_ecr: LocalEcr, *args: str) -> Any:
    where = ("--log-group", LOG_GROUP, "--endpoint-url", local_ecr.endpoint_url)
    return run_cli(*args, *where, "--region", local_ecr.region)


def test_a_thousand_repositories_keep_every_record_and_the_result_small(
    thousand_repositories: tuple[dict[str, Any], list[str]],
) -> None:
    result, lines = thousand_repositories
    largest = max(_size(line) for line in lines)
    assert largest <= ev.RECORD_LIMIT_BYTES
    (summary_line,) = [line for line in lines if f'"{ev.EVENT}":"{ev.RUN_SUMMARY}"' in line]
    # Bounded: it no longer grows by ~287 B a repository (287,156 B at this size before).
    assert _size(summary_line) < 4_000 < ONE_REPOSITORY_BEFORE * REPOSITORIES
    summary = json.loads(summary_line)
    assert summary["repositoriesByStatus"] == {"swept": REPOSITORIES}
    assert summary["imagesScanned"] == 2 * REPOSITORIES
    assert summary["imagesExpired"] == REPOSITORIES
    assert "perRepository" not in summary and "perRepository" not in result
    assert len(json.dumps(result)) < 4_000
    assert result["runId"] == "run-thousand-01" and result["imagesExpired"] == REPOSITORIES
    repository_records = [r for r in _records(lines) if r.get(ev.EVENT) == ev.REPOSITORY_SUMMARY]
    assert len(repository_records) == REPOSITORIES


def test_runs_lists_and_shows_a_thousand_repository_run(
    thousand_repositories: tuple[dict[str, Any], list[str]], local_ecr: LocalEcr
) -> None:
    listed = _cli(local_ecr, "runs", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    (run,) = json.loads(listed.stdout)
    assert run["runId"] == "run-thousand-01" and run["imagesExpired"] == REPOSITORIES

    local_ecr.reset_counters()
    shown = _cli(local_ecr, "runs", "show", "run-thousand-01", "--output", "json")
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    rows = document["perRepository"]
    assert len(rows) == REPOSITORIES
    assert len({row["repository"] for row in rows}) == REPOSITORIES
    assert all(row["imagesExpired"] == 1 and row["status"] == "swept" for row in rows)
    assert "message" not in rows[0] and ev.RUN_ID not in rows[0]

    table = _cli(local_ecr, "runs", "show", "run-thousand-01")
    assert table.returncode == 0, table.stderr
    assert f"{REPOSITORIES} repositories planned" in table.stdout
    assert "unreadable" not in table.stdout


def test_a_truncated_summary_is_listed_as_unreadable_never_dropped(
    thousand_repositories: tuple[dict[str, Any], list[str]], local_ecr: LocalEcr
) -> None:
    """CloudWatch cuts an event at 256 KB: such a line must still name its run, and `runs show`
    rebuilds the run from its repository records without blaming a timeout."""
    _, lines = thousand_repositories
    (summary_line,) = [line for line in lines if f'"{ev.EVENT}":"{ev.RUN_SUMMARY}"' in line]
    cut = summary_line.replace("run-thousand-01", "run-truncated-02")[: len(summary_line) // 2]
    kept = [
        line.replace("run-thousand-01", "run-truncated-02")
        for line in lines
        if f'"{ev.EVENT}":"{ev.REPOSITORY_SUMMARY}"' in line
    ]
    _ship_more(local_ecr, [*kept, cut])

    listed = _cli(local_ecr, "runs")
    assert listed.returncode == 0, listed.stderr
    assert "run-truncated" in listed.stdout and "unreadable" in listed.stdout
    as_json = json.loads(_cli(local_ecr, "runs", "--output", "json").stdout)
    assert {r["runId"]: r.get(ev.UNREADABLE, False) for r in as_json} == {
        "run-thousand-01": False,
        "run-truncated-02": True,
    }

    shown = _cli(local_ecr, "runs", "show", "run-truncated-02")
    assert shown.returncode == 0, shown.stderr
    assert "summary unreadable (truncated?)" in shown.stdout
    assert f"added up from the {REPOSITORIES} repository.summary records" in shown.stdout
    assert "timed out" not in shown.stdout + shown.stderr
    rebuilt = json.loads(
        _cli(local_ecr, "runs", "show", "run-truncated-02", "--output", "json").stdout
    )
    assert rebuilt["imagesExpired"] == REPOSITORIES and rebuilt["dryRun"] is True
    assert len(rebuilt["perRepository"]) == REPOSITORIES


def _ship_more(local_ecr: LocalEcr, lines: list[str]) -> None:
    logs = local_ecr.client("logs")
    stream = "2026/11/30/[$LATEST]fedcba9876543210"
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    at = int((datetime.now(UTC) - timedelta(minutes=10)).timestamp() * 1000)
    events = [{"timestamp": at + offset, "message": line} for offset, line in enumerate(lines)]
    logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream, logEvents=events)


def test_two_thousand_denied_deletes_keep_every_record_bounded(local_ecr: LocalEcr) -> None:
    make = ManifestFactory(random.Random(12))
    for _ in range(2_000):
        push(local_ecr, "denied", make.image(compact=True), None, 30)
    client = local_ecr.client("ecr")

    def deny(**_: Any) -> None:
        error = {"Error": {"Code": "AccessDeniedException", "Message": ACCESS_DENIED}}
        raise ClientError(error, "BatchDeleteImage")

    client.meta.events.register("provide-client-params.ecr.BatchDeleteImage", deny)
    written = io.StringIO()
    logger = Logger(
        service="record-probe",
        logger_handler=logging.StreamHandler(written),
        json_serializer=ev.encode_record,
        json_deserializer=ev.json_message,
    )
    summary = sweeper(local_ecr, client=client, logger=logger).run()

    (result,) = summary.results
    assert result.status != FAILED and len(result.delete_failures) == 2_000
    lines = written.getvalue().splitlines()
    assert max(_size(line) for line in lines) <= ev.RECORD_LIMIT_BYTES
    (record,) = [r for r in _records(lines) if r.get(ev.EVENT) == ev.REPOSITORY_SUMMARY]
    assert record["deleteFailureCount"] == 2_000
    assert len(record["deleteFailures"]) == ev.LIST_LIMIT
    assert record["deleteFailures"][0]["failureReason"].endswith(ACCESS_DENIED)
    assert _size(json.dumps(record)) < 20_000  # 518,757 B when every failure was listed
    run_record = ev.encode_record(summary.to_record())
    assert summary.to_record()["deleteFailures"] == 2_000
    assert _size(run_record) < 4_000  # 519,242 B before
