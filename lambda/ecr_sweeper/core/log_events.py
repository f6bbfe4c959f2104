"""Names of the structured log records and their fields.

The handler writes them; the dashboard's Logs Insights queries (infra/) filter on them. One place,
so the queries can't drift from what the logger writes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

EVENT = "event"
"""Every record ecr-sweeper writes carries this key; its value is one of the names below."""

IMAGE_DELETED = "image.deleted"
IMAGE_EXPIRED_DRY_RUN = "image.wouldDelete"
IMAGE_ARCHIVED = "image.archived"
IMAGE_ARCHIVED_DRY_RUN = "image.wouldArchive"
IMAGE_DELETE_FAILED = "image.deleteFailed"
IMAGE_DELETE_SKIPPED = "image.deleteSkipped"
IMAGE_PROTECTED = "image.protected"
USAGE_UNAVAILABLE = "usage.unavailable"
SDK_UNSUPPORTED = "sdk.unsupported"
REPOSITORY_SUMMARY = "repository.summary"
REPOSITORY_SKIPPED = "repository.skipped"
REPOSITORY_FAILED = "repository.failed"
REPOSITORY_UNFINISHED = "repository.unfinished"
REPOSITORY_HELD = "repository.held"
RUN_STARTED = "run.started"
RUN_SUMMARY = "run.summary"
CURSOR_UNAVAILABLE = "cursor.unavailable"
CURSOR_IGNORED = "cursor.ignored"
"""A stored cursor that is not one (malformed, foreign, or for another list of targets)."""
POLICY_APPLIED = "policy.applied"
POLICY_WOULD_APPLY = "policy.wouldApply"
POLICY_FAILED = "policy.failed"
OVERRIDE_IGNORED = "override.ignored"
"""A repository tag that would have loosened the settings, ignored (see core.overrides)."""
POLICY_SKIPPED = "policy.skipped"
"""nativeLifecyclePolicy not written: it would expire images the sweep keeps (`warnings`)."""
POLICY_FORCED = "policy.forced"
"""nativeLifecyclePolicy written although it expires images the sweep keeps (forced)."""
TARGET_FAILED = "target.failed"
"""A region or account that could not be swept at all (its role could not be assumed, ...)."""
GUARD_HELD = "guard.held"
"""The deletion guard held a live run: it deleted nothing and waits for an approval."""
GUARD_APPROVAL_USED = "guard.approvalUsed"
APPROVAL_UNAVAILABLE = "approval.unavailable"
"""The approval on record could not be read or recorded as used (the run then holds)."""

# Fields of the audit and summary records (camelCase, as in the run summary JSON).
RUN_ID = "runId"
DRY_RUN = "dryRun"
REPOSITORY = "repository"
IMAGE_DIGEST = "imageDigest"
IMAGE_TAGS = "imageTags"
IMAGE_PUSHED_AT = "imagePushedAt"
LAST_PULLED_AT = "lastRecordedPullTime"
IMAGE_SIZE = "imageSizeInBytes"
REASON = "reason"
PROTECTION = "protection"
RULE_PRIORITY = "rulePriority"
ERROR_CODE = "errorCode"
BYTES_RECLAIMED = "bytesReclaimed"
IMAGES_DELETED = "imagesDeleted"
REPOSITORIES_SELECTED = "repositoriesSelected"
POLICY_CHANGE = "change"
PREVIOUS_POLICY_SHA256 = "previousPolicySha256"
WARNINGS = "warnings"
WARNING_COUNT = "warningCount"
TARGET = "target"
WOULD_DELETE = "wouldDelete"
IMAGES_SCANNED = "imagesScanned"
UNREADABLE = "unreadable"
"""Set by the CLI on a `run.summary` record rebuilt from a line that doesn't parse (truncated)."""


def json_message(message: Any) -> Any:
    """Powertools Logger's `json_deserializer`: a message that is a JSON object or array becomes
    structured, as by default; any other message stays as written, without the failed decode the
    default spends on every plain sentence (a sixth of an audit record's cost; a sweep can write
    100,000 of them)."""
    if isinstance(message, str) and message.startswith(("{", "[")):
        return json.loads(message)
    return message


def skip_unused_record_fields() -> None:
    """Don't collect the thread and process of each log record: Powertools writes neither, and
    collecting them is part of every record's cost (the logging HOWTO's "Optimization")."""
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


RECORD_LIMIT_BYTES = 256_000
"""The most a record may take encoded: a CloudWatch Logs event holds 262,144 bytes including
26 of overhead and silently truncates a longer one; the rest is margin."""
LIST_LIMIT = 20
"""Lists inside a record (delete failures, notes, repository names) keep this many entries."""
RECORD_TRIMMED = "recordTrimmed"
"""On a record that was still too large: what was cut, so a reader knows it is incomplete."""
_TRIM_STEPS = ((LIST_LIMIT, 2_000), (5, 500), (0, 100))
"""(entries kept per list, characters kept per string) for each try at trimming a record."""
_ALWAYS_KEPT = ("level", "message", "timestamp", "service", EVENT, RUN_ID, "correlation_id")


def encode_record(record: Mapping[str, Any]) -> str:
    """Every record goes through here: compact JSON by the C encoder, and never longer than
    RECORD_LIMIT_BYTES, so CloudWatch never truncates one (a truncated record can't be parsed).

    The Powertools Logger's `json_serializer`. A record too large has its lists and strings cut,
    with a `recordTrimmed` marker, rather than be cut mid-JSON by CloudWatch.
    """
    text = json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str)
    if len(text) * 4 <= RECORD_LIMIT_BYTES:  # UTF-8 takes at most 4 bytes a character
        return text
    size = len(text.encode())
    return text if size <= RECORD_LIMIT_BYTES else _trimmed(record, size)


def record_size(record: Mapping[str, Any]) -> int:
    """A record's size in bytes as CloudWatch Logs counts it (without its 26 bytes of overhead)."""
    return len(encode_record(record).encode())


def _trimmed(record: Mapping[str, Any], size: int) -> str:
    for entries, characters in _TRIM_STEPS:
        cut: dict[str, int] = {}
        trimmed = _trim(record, entries, characters, "", cut)
        marker = {"originalBytes": size, "cut": dict(list(cut.items())[:LIST_LIMIT])}
        text = json.dumps(
            {**trimmed, RECORD_TRIMMED: marker},
            separators=(",", ":"),
            ensure_ascii=False,
            default=str,
        )
        if len(text.encode()) <= RECORD_LIMIT_BYTES:
            return text
    kept = {key: str(record[key])[:200] for key in _ALWAYS_KEPT if key in record}
    return json.dumps({**kept, RECORD_TRIMMED: {"originalBytes": size}}, ensure_ascii=False)


def _trim(value: Any, entries: int, characters: int, path: str, cut: dict[str, int]) -> Any:
    """`value` with each list cut to `entries` and each string to `characters`; `cut` gets the
    original length of each list or string cut, by its path in the record."""
    if isinstance(value, Mapping):
        return {
            key: _trim(item, entries, characters, f"{path}.{key}" if path else str(key), cut)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        if len(value) > entries:
            cut[path] = len(value)
        return [
            _trim(item, entries, characters, f"{path}[{index}]", cut)
            for index, item in enumerate(value[:entries])
        ]
    if isinstance(value, str) and len(value) > characters:
        cut[path] = len(value)
        return value[:characters]
    return value
