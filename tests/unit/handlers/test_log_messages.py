"""The handlers' Powertools Logger writes messages as Powertools does by default, cheaper."""

from __future__ import annotations

import io
import itertools
import json
import logging
from typing import Any

import pytest
from aws_lambda_powertools import Logger

from ecr_sweeper.core import log_events as ev

_SERVICES = itertools.count()


def written(message: str) -> Any:
    """The `message` field of the record a handler's Logger writes for `message`."""
    stream = io.StringIO()
    logger = Logger(
        service=f"test-log-messages-{next(_SERVICES)}",  # a Logger per service name is reused
        json_deserializer=ev.json_message,
        logger_handler=logging.StreamHandler(stream),
    )
    logger.info(message, extra={ev.EVENT: ev.IMAGE_DELETED})
    record = json.loads(stream.getvalue())
    assert record[ev.EVENT] == ev.IMAGE_DELETED
    return record["message"]


@pytest.mark.parametrize(
    "message",
    [
        "deleted app v1.2.3: expire: not among the newest 10 images",
        "[1, 2",  # looks like JSON, isn't: kept as written
        "{not json}",
        "42",  # a sentence that happens to be a number stays text
        "",
    ],
)
def test_a_plain_message_is_written_as_it_was_logged(message: str) -> None:
    assert written(message) == message


def test_a_json_object_message_is_written_structured_as_by_default() -> None:
    assert written('{"repository": "app", "deleted": 3}') == {"repository": "app", "deleted": 3}
    assert written("[1, 2]") == [1, 2]
