"""The resume cursor of a run over several registries, as stored in the state parameter.

Why so little: the state parameter is a Standard-tier SSM parameter (at most 4,096 characters,
shared with the deletion guard's approval). A cursor that grew with the number of targets (one
entry per unfinished target) passed that limit at about 80 targets, its write failed, and every
run then started again at the first target. The next run needs only where to start: the index of
the first unfinished target in the settings' order, the repository within it, and a digest of
the target list, so that a changed list starts cleanly at the first target. Its size does not
depend on the number of targets, and a repository name longer than ECR allows is not stored
(that target then starts at its first repository), so it stays below `CURSOR_MAX_CHARS`.

What is read back is untrusted: anything but a cursor of this shape, for this list of targets,
is ignored with the reason (the run starts at the first target, skipping nothing).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

TARGETS_DIGEST = "targets"
TARGET_INDEX = "target"
REPOSITORY = "repository"

REPOSITORY_NAME_MAX = 256
"""ECR's longest repository name (CreateRepository's `repositoryName`)."""
_REPOSITORY_NAME = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
"""ECR's repository name pattern."""
DIGEST_CHARS = 16
"""Hex digits of the target list's SHA-256 kept: a changed list is told apart, cheaply."""
MAX_TARGET_INDEX = 10**6 - 1
"""Far more targets than one Lambda could sweep; bounds the index's digits."""

CURSOR_MAX_CHARS = 400
"""The most characters the cursor's keys add to the state document, whatever the number of
targets and the names' lengths (the digest, a six-digit index, a 256-character name, and
the JSON around them come to about 330)."""


def is_repository_name(value: Any) -> bool:
    """Whether `value` could be an ECR repository name (what a cursor may hold)."""
    return (
        isinstance(value, str)
        and 2 <= len(value) <= REPOSITORY_NAME_MAX
        and _REPOSITORY_NAME.fullmatch(value) is not None
    )


def targets_digest(labels: Sequence[str]) -> str:
    """A short digest of the targets in the settings' order (`account/region` labels)."""
    return hashlib.sha256(json.dumps(list(labels)).encode()).hexdigest()[:DIGEST_CHARS]


@dataclass(frozen=True)
class TargetPosition:
    """Where the next run starts: the target at `index` (settings' order), and within it the
    first repository from `repository` on (None: its first)."""

    index: int
    repository: str | None = None


def encode(position: TargetPosition, labels: Sequence[str]) -> dict[str, Any]:
    """The cursor's stored form; raises ValueError for an index that names no target."""
    if not 0 <= position.index < len(labels) or position.index > MAX_TARGET_INDEX:
        raise ValueError(f"cursor: target index {position.index} is not one of the targets")
    value: dict[str, Any] = {
        TARGETS_DIGEST: targets_digest(labels),
        TARGET_INDEX: position.index,
    }
    if is_repository_name(position.repository):
        value[REPOSITORY] = position.repository
    return value


def decode(value: Any, labels: Sequence[str]) -> tuple[TargetPosition | None, str | None]:
    """Read a stored cursor back for this list of targets: (where to start, None), or (None,
    why it was ignored). Never raises: the value comes from a parameter anyone with
    ssm:PutParameter on it may have written."""
    if not isinstance(value, dict):
        return None, f"expected a JSON object, got {_kind(value)}"
    unknown = sorted(str(key) for key in value if key not in _KEYS)
    if unknown:
        return None, f"unknown key {unknown[0]!r}"
    if value.get(TARGETS_DIGEST) != targets_digest(labels):
        return None, "it was written for another list of targets (settings regions, accounts)"
    index = value.get(TARGET_INDEX)
    if isinstance(index, bool) or not isinstance(index, int):
        return None, f"{TARGET_INDEX}: expected a whole number, got {_kind(index)}"
    if not 0 <= index < len(labels):
        return None, f"{TARGET_INDEX}: {index} is not one of the {len(labels)} targets"
    repository = value.get(REPOSITORY)
    if repository is not None and not is_repository_name(repository):
        return None, f"{REPOSITORY}: not an ECR repository name"
    return TargetPosition(index, repository), None


_KEYS = (TARGETS_DIGEST, TARGET_INDEX, REPOSITORY)
_JSON_KINDS = {bool: "true or false", int: "a number", float: "a number", str: "a string"}


def _kind(value: Any) -> str:
    """What an unexpected value is, never the value itself (it may be long)."""
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return _JSON_KINDS.get(type(value), type(value).__name__)
