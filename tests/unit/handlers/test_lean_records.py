"""The handlers' lean block of info records (the sweep's audit records): each record has exactly
the fields, values and order Powertools' Logger.info writes for the same event, and each is
encoded by log_events.encode_record (bounded, trimmed with a marker)."""

from __future__ import annotations

import io
import itertools
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from ecr_sweeper.core import log_events as ev
from ecr_sweeper.handlers.records import SweepLogger
from ecr_sweeper.ports import BatchEventLogger

_SERVICES = itertools.count()
TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SweepLogger, io.StringIO]]:
    """A handler Logger writing to a string, with the keys the Lambda handler appends."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", TRACE)
    stream = io.StringIO()
    logger = SweepLogger(
        service=f"test-lean-records-{next(_SERVICES)}",  # a Logger per service name is reused
        json_deserializer=ev.json_message,
        json_serializer=ev.encode_record,
        logger_handler=logging.StreamHandler(stream),
    )
    logger.append_keys(
        cold_start=True,
        function_name="sweeper",
        function_memory_size=1024,
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:sweeper",
        function_request_id="run-7",
    )
    logger.set_correlation_id("run-7")
    logger.append_keys(**{ev.RUN_ID: "run-7", ev.DRY_RUN: False})
    yield logger, stream


def audit_fields(digest: str, tags: list[str], pulled: str | None) -> dict[str, Any]:
    return {
        ev.EVENT: ev.IMAGE_DELETED,
        ev.RUN_ID: "run-7",
        ev.DRY_RUN: False,
        ev.REPOSITORY: 'team/we"b',
        ev.IMAGE_DIGEST: digest,
        ev.IMAGE_TAGS: tags,
        ev.IMAGE_PUSHED_AT: "2026-01-02T03:04:05+00:00",
        ev.LAST_PULLED_AT: pulled,
        ev.IMAGE_SIZE: 1234,
        ev.REASON: "expire: not among the newest 10 images (rule 1)",
        ev.RULE_PRIORITY: 1,
    }


ENTRIES = [
    ('deleted team/we"b v1: expire', audit_fields("sha256:" + "a" * 64, ["v1", "é☃"], None)),
    ('deleted team/we"b <untagged>: x', audit_fields("sha256:" + "b" * 64, [], "2026-02-01")),
]


def write(logger: SweepLogger, lean: bool) -> None:
    """Both ways from the same function, so the records' location names the same caller."""
    if lean:
        logger.info_batch(ENTRIES)
    else:
        for message, fields in ENTRIES:
            logger.info(message, extra=fields)


def lines(stream: io.StringIO) -> list[str]:
    text = stream.getvalue()
    stream.seek(0)
    stream.truncate()
    return text.splitlines()


def test_a_lean_record_is_the_powertools_record_of_the_same_event(
    logged: tuple[SweepLogger, io.StringIO],
) -> None:
    logger, stream = logged
    logging.getLogger(logger.service).propagate = False  # no pytest handler: the lean path
    assert isinstance(logger, BatchEventLogger) and logger.lean_handler() is not None
    write(logger, lean=False)
    expected = [json.loads(line) for line in lines(stream)]
    write(logger, lean=True)
    written = lines(stream)
    got = [json.loads(line) for line in written]

    assert len(got) == len(ENTRIES) == len(expected)
    for record, powertools in zip(got, expected, strict=True):
        assert list(record) == list(powertools)  # same fields in the same order
        assert record["location"].split(":")[0] == powertools["location"].split(":")[0] == "write"
        for key in ("timestamp", "location"):
            record.pop(key), powertools.pop(key)
        assert record == powertools
    assert ev.LAST_PULLED_AT not in got[0] and got[1][ev.LAST_PULLED_AT] == "2026-02-01"
    assert got[0]["xray_trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert got[0]["cold_start"] is True and got[0]["correlation_id"] == "run-7"
    assert written == [ev.encode_record(json.loads(line)) for line in written]


def test_each_lean_record_is_bounded_by_encode_record(
    logged: tuple[SweepLogger, io.StringIO],
) -> None:
    logger, stream = logged
    logging.getLogger(logger.service).propagate = False
    tags = [f"tag-{number:06d}-{'x' * 20}" for number in range(20_000)]
    logger.info_batch([("deleted huge", audit_fields("sha256:" + "c" * 64, tags, None))])
    (line,) = lines(stream)
    record = json.loads(line)
    assert len(line.encode()) <= ev.RECORD_LIMIT_BYTES
    assert record[ev.RECORD_TRIMMED]["cut"][ev.IMAGE_TAGS] == 20_000
    assert record[ev.IMAGE_TAGS] == tags[: ev.LIST_LIMIT]
    assert record[ev.EVENT] == ev.IMAGE_DELETED and record["service"] == logger.service


def test_where_another_handler_takes_the_records_each_goes_through_logging(
    logged: tuple[SweepLogger, io.StringIO], caplog: pytest.LogCaptureFixture
) -> None:
    logger, stream = logged
    with caplog.at_level(logging.INFO, logger=logger.service):
        logger.info_batch(ENTRIES)
    assert [getattr(r, ev.IMAGE_DIGEST) for r in caplog.records] == [
        fields[ev.IMAGE_DIGEST] for _, fields in ENTRIES
    ]
    assert len(lines(stream)) == len(ENTRIES)


def test_nothing_is_written_below_the_loggers_level(
    logged: tuple[SweepLogger, io.StringIO],
) -> None:
    logger, stream = logged
    logging.getLogger(logger.service).propagate = False
    logger.setLevel("WARNING")
    logger.info_batch(ENTRIES)
    assert stream.getvalue() == ""
