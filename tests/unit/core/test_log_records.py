"""One encoder bounds every record: compact JSON, never over RECORD_LIMIT_BYTES."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core.results import (
    FAILED,
    HELD,
    UNFINISHED,
    DeleteFailure,
    RepositoryResult,
    RunSummary,
)


def test_a_small_record_is_compact_json_unchanged() -> None:
    record = {
        "event": ev.RUN_SUMMARY,
        "runId": "r1",
        "tags": ["a", "ü"],
        "at": datetime(2026, 1, 1),
    }
    text = ev.encode_record(record)
    assert (
        text == '{"event":"run.summary","runId":"r1","tags":["a","ü"],"at":"2026-01-01 00:00:00"}'
    )


def test_a_record_too_large_is_trimmed_with_a_marker_not_cut() -> None:
    record = {
        "level": "INFO",
        "event": ev.IMAGE_DELETED,
        "runId": "r1",
        "imageTags": [f"tag-{n:06d}-" + "x" * 100 for n in range(5_000)],
        "reason": "é" * 200_000,
    }
    text = ev.encode_record(record)
    assert len(text.encode()) <= ev.RECORD_LIMIT_BYTES
    trimmed = json.loads(text)
    marker = trimmed[ev.RECORD_TRIMMED]
    assert marker["originalBytes"] > ev.RECORD_LIMIT_BYTES
    assert marker["cut"]["imageTags"] == 5_000 and marker["cut"]["reason"] == 200_000
    assert trimmed["imageTags"] == record["imageTags"][: ev.LIST_LIMIT]
    assert trimmed["event"] == ev.IMAGE_DELETED and trimmed["runId"] == "r1"


def test_a_record_of_many_keys_falls_back_to_its_identity() -> None:
    record = {"event": ev.RUN_SUMMARY, "runId": "r1", **{f"k{n}": "v" * 99 for n in range(5_000)}}
    text = ev.encode_record(record)
    assert len(text.encode()) <= ev.RECORD_LIMIT_BYTES
    assert json.loads(text) == {
        "event": ev.RUN_SUMMARY,
        "runId": "r1",
        ev.RECORD_TRIMMED: {"originalBytes": len(json.dumps(record, separators=(",", ":")))},
    }


def _summary(results: list[RepositoryResult]) -> RunSummary:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    return RunSummary(run_id="r1", dry_run=False, started_at=at, finished_at=at, results=results)


def test_the_run_record_names_at_most_twenty_of_each_and_counts_the_rest() -> None:
    results = [RepositoryResult(f"swept-{n:04d}", images_scanned=3) for n in range(3_000)]
    results += [RepositoryResult(f"failed-{n:03d}", status=FAILED) for n in range(25)]
    results += [RepositoryResult(f"left-{n:03d}", status=UNFINISHED) for n in range(30)]
    results += [RepositoryResult("held-0", status=HELD)]
    summary = _summary(results)
    record = summary.to_record()
    assert record["repositoriesByStatus"] == {
        "failed": 25, "held": 1, "swept": 3_000, "unfinished": 30,
    }  # fmt: skip
    assert record["repositoriesFailedNames"] == [f"failed-{n:03d}" for n in range(20)]
    assert record["repositoriesFailedCount"] == 25
    assert (
        len(record["repositoriesUnfinished"]) == 20 and record["repositoriesUnfinishedCount"] == 30
    )
    assert record["repositoriesHeld"] == ["held-0"] and record["repositoriesHeldCount"] == 1
    assert record["imagesScanned"] == 9_000 and record["outcome"] == "held"
    assert len(ev.encode_record(record)) < 3_000
    assert len(summary.to_dict()["perRepository"]) == 3_056  # the CLI's JSON keeps every entry


def test_a_repository_record_keeps_twenty_failures_and_notes_and_counts_them() -> None:
    failures = [DeleteFailure({"imageDigest": f"sha256:{n:064x}"}, "X", "why") for n in range(50)]
    result = RepositoryResult("denied", delete_failures=failures, target="111111111111/eu-west-1")
    record = result.to_record()
    assert record["deleteFailures"] == [f.to_dict() for f in failures[: ev.LIST_LIMIT]]
    assert record["deleteFailureCount"] == 50
    assert result.to_dict()["deleteFailures"] == [f.to_dict() for f in failures]
    assert result.label == "111111111111/eu-west-1 denied"
