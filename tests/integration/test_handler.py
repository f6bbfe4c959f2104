"""The Lambda handler over the local ECR: summary, one audit line per deletion, and EMF metrics."""

from __future__ import annotations

import importlib
import json
import logging
import random
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from helpers.lambda_context import LambdaContext
from helpers.sweep import push, remaining

from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core import metrics_catalog
from ecr_sweeper.core.settings import ENVIRONMENT_VARIABLE, Settings
from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory


@pytest.fixture
def handler(local_ecr: LocalEcr, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The handler module as Lambda loads it, with the stack's environment."""
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, Settings().to_json())
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_ecr.endpoint_url)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", metrics_catalog.SERVICE)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "EcrSweeper")
    for name in ("POWERTOOLS_DEV", "POWERTOOLS_METRICS_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    yield importlib.reload(importlib.import_module("ecr_sweeper.handlers.sweeper"))
    _log_to(sys.__stdout__)


def _log_to(stream: Any) -> None:
    for stream_handler in logging.getLogger(metrics_catalog.SERVICE).handlers:
        if isinstance(stream_handler, logging.StreamHandler):
            stream_handler.stream = stream  # no flush: the previous stream may be closed


def invoke(handler: ModuleType, event: Any, context: LambdaContext | None = None) -> Any:
    """Call the handler with its logger writing to this test's captured stdout."""
    _log_to(sys.stdout)
    return handler.lambda_handler(event, context or LambdaContext())


def seed(local_ecr: LocalEcr) -> None:
    make = ManifestFactory(random.Random(3))
    for number in range(13):
        push(local_ecr, "web", make.image(compact=True), f"v{number}", 40 - number)
    for days in (9, 5, 0.5):
        push(local_ecr, "web", make.image(compact=True), None, days)


def per_repository(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run's `repository.summary` records, as logged (the result holds only totals)."""
    return [record for record in logs if record.get(ev.EVENT) == ev.REPOSITORY_SUMMARY]


def records(output: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(log records, EMF documents) from the function's stdout."""
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    emf = [line for line in lines if "_aws" in line]
    logs = [line for line in lines if "_aws" not in line]
    return logs, emf


def test_a_scheduled_run_deletes_audits_every_image_and_emits_every_metric(
    handler: ModuleType, local_ecr: LocalEcr, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(local_ecr)
    summary = invoke(handler, {})
    logs, emf = records(capsys.readouterr().out)

    assert summary["dryRun"] is False
    assert summary["imagesScanned"] == 16 and summary["imagesDeleted"] == 5
    assert summary["repositories"] == 1 and summary["failures"] == 0
    assert summary["bytesReclaimed"] > 0
    assert "perRepository" not in summary, "totals only: each repository has its own record"
    assert [r["repository"] for r in per_repository(logs)] == ["web"]
    assert len(remaining(local_ecr, "web")) == 11

    audits = [r for r in logs if r.get(ev.EVENT) == ev.IMAGE_DELETED]
    assert len(audits) == 5
    for audit in audits:
        assert audit["repository"] == "web" and audit["dryRun"] is False
        assert audit["imageDigest"].startswith("sha256:") and audit["reason"]
        assert {"imageTags", "imagePushedAt", "imageSizeInBytes"} <= set(audit)
        assert "lastRecordedPullTime" not in audit, "never pulled: Powertools drops null fields"
        assert audit["rulePriority"] in (1, 2)
    assert all(r.get("correlation_id") == "run-0001" for r in logs)
    assert [r[ev.EVENT] for r in logs if r.get(ev.EVENT) == ev.RUN_SUMMARY] == [ev.RUN_SUMMARY]

    (document,) = emf
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "EcrSweeper"
    assert [sorted(d) for d in directive["Dimensions"]] == [
        sorted(["service", metrics_catalog.MODE_DIMENSION])
    ]
    assert document[metrics_catalog.MODE_DIMENSION] == metrics_catalog.MODE_LIVE
    emitted = {metric["Name"] for metric in directive["Metrics"]}
    assert emitted == set(metrics_catalog.ALL_METRICS)
    assert document[metrics_catalog.IMAGES_DELETED] == [5]
    assert document[metrics_catalog.RUN_COMPLETED] == [1]
    assert document[metrics_catalog.BYTES_RECLAIMED] == [summary["bytesReclaimed"]]


def test_a_dry_run_event_deletes_nothing_and_is_a_separate_metric_series(
    handler: ModuleType, local_ecr: LocalEcr, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(local_ecr)
    before = remaining(local_ecr, "web")
    summary = invoke(handler, {"dryRun": True})
    logs, emf = records(capsys.readouterr().out)
    assert remaining(local_ecr, "web") == before
    assert (summary["dryRun"], summary["imagesExpired"], summary["imagesDeleted"]) == (True, 5, 0)
    assert len([r for r in logs if r.get(ev.EVENT) == ev.IMAGE_EXPIRED_DRY_RUN]) == 5
    assert not [r for r in logs if r.get(ev.EVENT) == ev.IMAGE_DELETED]
    assert emf[0][metrics_catalog.MODE_DIMENSION] == metrics_catalog.MODE_DRY_RUN


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"dryrun": True}, "unknown key 'dryrun'"),
        ({"dryRun": "yes"}, "event.dryRun: expected true or false"),
        ([1], "expected a JSON object"),
    ],
)
def test_a_bad_event_is_refused_before_anything_is_touched(
    handler: ModuleType, local_ecr: LocalEcr, event: Any, message: str
) -> None:
    seed(local_ecr)
    before = remaining(local_ecr, "web")
    with pytest.raises(handler.EventError, match=message):
        invoke(handler, event)
    assert remaining(local_ecr, "web") == before


def test_a_bad_event_is_refused_even_when_the_settings_say_dry_run(
    handler: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, Settings(dry_run=True).to_json())
    with pytest.raises(handler.EventError, match="unknown key 'dryrun'"):
        invoke(handler, {"dryrun": False})


def test_settings_are_validated_again_at_start(
    handler: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, json.dumps({"keepTaggedImages": 0}))
    with pytest.raises(handler.SettingsError, match="keepTaggedImages: got 0"):
        invoke(handler, {})


def query_fields(query: list[str]) -> tuple[str, set[str]]:
    """(the event a dashboard query filters on, the log fields its `fields` stage reads)."""
    fields_stage = next(line for line in query if line.startswith("fields "))
    event = next(line for line in query if line.startswith("filter ")).split('"')[1]
    names = set()
    for part in fields_stage.removeprefix("fields ").split(","):
        name = part.strip().split(" ")[0].split(".")[0]
        if not name.startswith("@"):
            names.add(name)
    return event, names


def test_the_dashboard_reads_what_the_handler_writes(
    handler: ModuleType, local_ecr: LocalEcr, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra import synthesized_template
    from infra.monitoring import latest_deletions_query, top_repositories_query
    from infra.template_metrics import custom_metric_names

    seed(local_ecr)
    invoke(handler, {})
    logs, emf = records(capsys.readouterr().out)
    emitted = {m["Name"] for m in emf[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert emitted == custom_metric_names(synthesized_template(), "EcrSweeper")
    for query in (top_repositories_query(), latest_deletions_query()):
        event, fields = query_fields(query)
        written = [record for record in logs if record.get(ev.EVENT) == event]
        assert written, f"the handler wrote no {event} record"
        for record in written:
            assert fields <= set(record), (event, fields - set(record))


def test_a_run_short_of_time_reports_what_is_unfinished_and_the_next_one_starts_there(
    handler: ModuleType,
    local_ecr: LocalEcr,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed(local_ecr)
    local_ecr.client("ssm").put_parameter(Name="/ecr-sweeper/cursor", Value="{}", Type="String")
    monkeypatch.setenv("SWEEPER_STATE_PARAMETER", "/ecr-sweeper/cursor")

    # Less time left than the reserve: nothing may start.
    short = invoke(handler, {}, LambdaContext(remaining_millis=4_000))
    logs, emf = records(capsys.readouterr().out)
    assert short["repositoriesUnfinished"] == ["web"] and short["imagesDeleted"] == 0
    assert len(remaining(local_ecr, "web")) == 16
    assert emf[0][metrics_catalog.UNFINISHED_REPOSITORIES] == [1]
    assert [r["repository"] for r in logs if r.get(ev.EVENT) == ev.REPOSITORY_UNFINISHED] == ["web"]
    cursor = local_ecr.client("ssm").get_parameter(Name="/ecr-sweeper/cursor")
    assert json.loads(cursor["Parameter"]["Value"]) == {"resumeFrom": "web"}

    full = invoke(handler, {})
    emf = records(capsys.readouterr().out)[1]
    assert full["resumedFrom"] == "web" and full["repositoriesUnfinished"] == []
    assert full["imagesDeleted"] == 5 and emf[0][metrics_catalog.UNFINISHED_REPOSITORIES] == [0]
    cursor = local_ecr.client("ssm").get_parameter(Name="/ecr-sweeper/cursor")
    assert json.loads(cursor["Parameter"]["Value"]) == {}


def scheduled_event(source: str = "aws.events", **changes: Any) -> dict[str, Any]:
    """What a classic EventBridge rule (or a schedule sending the envelope) invokes with."""
    event: dict[str, Any] = {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": source,
        "account": "123456789012",
        "time": "2026-11-30T03:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/nightly-sweep"],
        "detail": {},
    }
    event.update(changes)
    return event


@pytest.mark.parametrize("source", ["aws.events", "aws.scheduler"])
def test_a_scheduled_event_envelope_runs_a_plain_sweep(
    handler: ModuleType, local_ecr: LocalEcr, source: str
) -> None:
    seed(local_ecr)
    summary = invoke(handler, scheduled_event(source))
    assert (summary["dryRun"], summary["imagesDeleted"], summary["failures"]) == (False, 5, 0)


def test_a_dry_run_request_beside_the_envelope_is_honoured(
    handler: ModuleType, local_ecr: LocalEcr
) -> None:
    seed(local_ecr)
    before = remaining(local_ecr, "web")
    summary = invoke(handler, scheduled_event(dryRun=True))
    assert summary["dryRun"] is True and remaining(local_ecr, "web") == before


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (scheduled_event(surprise=1), "unknown key 'surprise'"),
        (scheduled_event(time="yesterday"), "not a valid aws.events event: time: "),
        (
            {k: v for k, v in scheduled_event("aws.scheduler").items() if k != "account"},
            "not a valid aws.scheduler event: account: Field required",
        ),
        (scheduled_event(source="my.app"), "unknown key 'account'"),
    ],
)
def test_anything_beyond_the_envelope_is_still_refused(
    handler: ModuleType, local_ecr: LocalEcr, event: dict[str, Any], message: str
) -> None:
    seed(local_ecr)
    before = remaining(local_ecr, "web")
    with pytest.raises(handler.EventError, match=message):
        invoke(handler, event)
    assert remaining(local_ecr, "web") == before
