"""The handlers' Powertools Logger, with a lean way to write a block of info records.

A sweep writes one audit record per image (100,000 in a large run). Through `Logger.info` each
costs a caller lookup, a LogRecord, and the Powertools formatter's copies of the record's
attributes: more CPU than the sweep spends on the image itself. `info_batch` builds what a
block's records share once (the Powertools envelope: level, location, service, cold_start,
function_*, correlation_id, appended keys such as runId and dryRun, xray_trace_id), then per
record only its timestamp, message and fields, each encoded by `log_events.encode_record` like
every other record. Where the record would go anywhere but the Logger's own stream (a filter,
another handler, a buffer, a record propagated to a handler that takes it), it falls back to
`Logger.info` per record, so what is written is always what Powertools would write.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from ecr_sweeper.core import log_events as ev

LINES_PER_WRITE = 500
"""Records joined into one write of the stream (one flush), so a block of 100,000 records
never becomes one string of tens of megabytes."""


class _Stamp:
    """What `Formatter.formatTime` reads of a record."""

    __slots__ = ("created", "msecs")

    def __init__(self, created: float) -> None:
        self.created = created
        self.msecs = int((created - int(created)) * 1000) + 0.0


class SweepLogger(Logger):
    """Powertools' Logger plus `info_batch` (the `ports.BatchEventLogger` the engine uses for
    its audit records)."""

    def info_batch(self, entries: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """One info record per (message, fields), as `info(message, extra=fields)` writes it."""
        if not entries or not self._logger.isEnabledFor(logging.INFO):
            return
        handler = self.lean_handler()
        if handler is None:
            self._one_by_one(entries)
            return
        formatter = handler.formatter
        assert isinstance(formatter, LambdaPowertoolsFormatter)
        first_message, first_fields = entries[0]
        filename, line, function, _ = self._logger.findCaller(False, 2)
        template = self._logger.makeRecord(
            self._logger.name,
            logging.INFO,
            filename,
            line,
            first_message,
            (),
            None,
            function,
            {key: 0 for key in first_fields},  # every field placed, in the order logged
        )
        if not self._reaches_only(handler, template):
            self._one_by_one(entries)
            return
        envelope = json.loads(formatter.format(template))
        terminator = handler.terminator
        encode = ev.encode_record
        format_time = formatter.formatTime
        lines: list[str] = []
        last_millisecond, stamp = -1, ""
        for message, fields in entries:
            now = time.time()
            if int(now * 1000) != last_millisecond:  # the timestamp shows milliseconds
                last_millisecond = int(now * 1000)
                stamp = format_time(_Stamp(now))  # type: ignore[arg-type]
            record = {**envelope, "message": message, "timestamp": stamp, **fields}
            if None in fields.values():  # Powertools drops fields that are None
                for key, value in fields.items():
                    if value is None:
                        del record[key]
            lines.append(encode(record))
            if len(lines) == LINES_PER_WRITE:
                _write(handler, lines, terminator)
                lines = []
        if lines:
            _write(handler, lines, terminator)

    def _one_by_one(self, entries: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """Each record through `Logger.info`, located at `info_batch`'s caller as the lean path
        locates them."""
        for message, fields in entries:
            self.info(message, extra=dict(fields), stacklevel=4)

    def lean_handler(self) -> logging.StreamHandler[Any] | None:
        """The one stream handler the lean path writes to, or None where it can't be used."""
        handlers = self._logger.handlers
        if len(handlers) != 1 or self._buffer_config or self._logger.filters:
            return None
        handler = handlers[0]
        if (
            type(handler) is not logging.StreamHandler
            or handler.filters
            or handler.level > logging.INFO
            or type(handler.formatter) is not LambdaPowertoolsFormatter
            or handler.formatter.json_serializer is not ev.encode_record
            or handler.formatter.json_deserializer is not ev.json_message
        ):
            return None
        return handler

    def _reaches_only(self, handler: logging.Handler, record: logging.LogRecord) -> bool:
        """Whether `record` would be written by `handler` alone: no other handler up the
        logger hierarchy would take it (in Lambda, Powertools filters the runtime's own)."""
        current: logging.Logger | None = self._logger
        while current is not None and current.propagate:
            current = current.parent
            for other in current.handlers if current is not None else []:
                if other is not handler and record.levelno >= other.level and other.filter(record):
                    return False
        return True


def _write(handler: logging.StreamHandler[Any], lines: list[str], terminator: str) -> None:
    with handler.lock or contextlib.nullcontext():
        handler.stream.write(terminator.join(lines) + terminator)
        handler.flush()
