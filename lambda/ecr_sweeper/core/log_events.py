"""Names of the structured log records and their fields.

The handler writes them; the dashboard's Logs Insights queries (infra/) filter on them. One place,
so the queries can't drift from what the logger writes.
"""

from __future__ import annotations

import json
import logging
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
