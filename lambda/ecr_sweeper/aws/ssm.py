"""The one module that talks to SSM Parameter Store: the stack's state parameter (the run
cursor and the deletion guard's approval) and parameter documents.

The state parameter is a small Standard-tier String parameter (at most 4,096 characters) the
stack creates, holding one JSON object. Each writer owns some top-level keys, and every write
reads the document first and keeps the keys it does not own. The cursor owns `resumeFrom`
(`{"resumeFrom": "<repository>"}` when the last live run's time budget ran out), or, for a run
over several registries (settings `regions`, `accounts`), `resumeAt` (core.cursor: the index of
the first unfinished target, the repository within it and a digest of the target list; at most
`CURSOR_MAX_CHARS` characters whatever the number of targets). `resumeTarget` and `targets`, the
older per-target form, are still read, and the next write replaces them. The cursor is read at
the start of a run and written only when it changes. Trouble with it never stops a sweep: the
run then starts at the first repository (and the first registry), and says why. A cursor that
can't be read or written (an SSM error) also makes the run a failure (`cursorFailure`, the
CursorFailures metric), since the next run would start again at the beginning; a stored value
that is not a cursor is only ignored, and replaced by the next write. The approval of a held run
(`ecr-sweeper approve`) owns `approval` (core.guard.Approval); trouble with it makes the run hold
(it is never used unread or unrecorded).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecr_sweeper.core import cursor
from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core.cursor import CURSOR_MAX_CHARS, TargetPosition, is_repository_name
from ecr_sweeper.core.guard import Approval

STATE_PARAMETER_VARIABLE = "SWEEPER_STATE_PARAMETER"
"""The Lambda environment variable naming the cursor's parameter."""

RESUME_FROM = "resumeFrom"
RESUME_AT = "resumeAt"
RESUME_TARGET = "resumeTarget"
TARGETS = "targets"
"""`resumeTarget` and `targets`: the per-target form written before `resumeAt` (read only)."""
APPROVAL = "approval"
CURSOR_KEYS = frozenset({RESUME_FROM, RESUME_AT, RESUME_TARGET, TARGETS})
"""The keys the cursor owns; a cursor write keeps every other key of the document."""


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def read_parameter(client: Any, name: str) -> str:
    """A parameter's value, decrypted if it is a SecureString."""
    response = client.get_parameter(Name=name, WithDecryption=True)
    return str(response["Parameter"]["Value"])


class ParameterCursor:
    """The sweep's cursor in one SSM String parameter (one registry: the repository to start
    with). `problem` says why it could not be read or written, if it could not."""

    def __init__(self, client: Any, name: str, logger: Any) -> None:
        self._client = client
        self._name = name
        self._log = logger
        self.problem: str | None = None

    def load(self) -> str | None:
        document, self.problem = _read_cursor(self._client, self._name, self._log)
        value = document.get(RESUME_FROM)
        if value is None:
            return None
        if not is_repository_name(value):
            _ignored(
                self._log, f"the cursor {self._name}: {RESUME_FROM}: not an ECR repository name"
            )
            return None
        return str(value)

    def save(self, resume_from: str | None) -> None:
        document = {RESUME_FROM: resume_from} if is_repository_name(resume_from) else {}
        self.problem = _write_cursor(self._client, self._name, self._log, document) or self.problem


def _read_cursor(client: Any, name: str, logger: Any) -> tuple[dict[str, Any], str | None]:
    """The state document (empty if there is none or it is not a JSON object, said in the log)
    and why it could not be read (None: it could, or the parameter does not exist yet; the
    first write creates it)."""
    try:
        document = json.loads(read_parameter(client, name))
    except (ClientError, BotoCoreError) as error:
        reason = f"can't read the cursor {name}: {error}"
        _unavailable(logger, reason)
        missing = isinstance(error, ClientError) and _code(error) == "ParameterNotFound"
        return {}, None if missing else reason
    except (KeyError, ValueError) as error:
        _ignored(logger, f"the cursor {name} is not JSON: {error}")
        return {}, None
    if not isinstance(document, dict):
        _ignored(logger, f"the cursor {name} is not a JSON object")
        return {}, None
    return document, None


def write_state(client: Any, name: str, owned: frozenset[str], values: dict[str, Any]) -> None:
    """Replace the keys `owned` of the state document with `values` (a subset of them), keeping
    every other key as it is now. A document that can't be read as an object is started afresh.
    Raises ClientError/BotoCoreError."""
    try:
        current = json.loads(read_parameter(client, name))
    except (KeyError, ValueError):
        current = {}
    except ClientError as error:
        if _code(error) != "ParameterNotFound":
            raise
        current = {}
    document = (
        {k: v for k, v in current.items() if k not in owned} if isinstance(current, dict) else {}
    )
    document.update(values)
    client.put_parameter(Name=name, Value=json.dumps(document), Type="String", Overwrite=True)


def _write_cursor(client: Any, name: str, logger: Any, document: dict[str, Any]) -> str | None:
    """Write the cursor's keys; why not, said in the log, if they can't be written."""
    try:
        write_state(client, name, CURSOR_KEYS, document)
    except (ClientError, BotoCoreError) as error:
        reason = f"can't write the cursor {name}: {error}"
        logger.error(
            f"{reason}; the next run starts at the first repository",
            extra={ev.EVENT: ev.CURSOR_UNAVAILABLE, ev.REASON: reason},
        )
        return reason
    return None


def _unavailable(logger: Any, reason: str) -> None:
    logger.warning(
        f"{reason}; this run starts at the first repository",
        extra={ev.EVENT: ev.CURSOR_UNAVAILABLE, ev.REASON: reason},
    )


def _ignored(logger: Any, reason: str) -> None:
    logger.warning(
        f"{reason}; ignored: this run starts at the first repository",
        extra={ev.EVENT: ev.CURSOR_IGNORED, ev.REASON: reason},
    )


class TargetCursors:
    """The cursor of a run over several registries, in the same parameter: the first target
    the last run left unfinished, and the repository within it, to start there. Read once when
    made; `save` writes it once, at the end of the run. `problem` says why it could not be read
    or written, if it could not."""

    def __init__(self, client: Any, name: str, logger: Any, labels: Sequence[str]) -> None:
        self._client = client
        self._name = name
        self._log = logger
        self._labels = list(labels)
        self._recorded: dict[str, str | None] = {}
        document, self.problem = _read_cursor(client, name, logger)
        self._saved: dict[str, Any] | None = (
            None if self.problem else {k: v for k, v in document.items() if k in CURSOR_KEYS}
        )
        self._start = self._position(document)

    def _position(self, document: dict[str, Any]) -> TargetPosition | None:
        if RESUME_AT in document:
            position, why = cursor.decode(document[RESUME_AT], self._labels)
        elif RESUME_TARGET in document:
            position, why = self._older_form(document)
        else:
            return None
        if why is not None:
            _ignored(self._log, f"the cursor in {self._name}: {why}")
        return position

    def _older_form(self, document: dict[str, Any]) -> tuple[TargetPosition | None, str | None]:
        """`resumeTarget` (a label) and `targets` (label: repository), as written before."""
        label = document.get(RESUME_TARGET)
        if not isinstance(label, str) or label not in self._labels:
            return None, f"{RESUME_TARGET}: not one of the targets"
        targets = document.get(TARGETS)
        repository = targets.get(label) if isinstance(targets, dict) else None
        return TargetPosition(
            self._labels.index(label), repository if is_repository_name(repository) else None
        ), None

    def order(self) -> list[str]:
        """The targets in the order to sweep them: the first one left unfinished, then on,
        wrapping around, so that every target is swept each run the time allows."""
        start = self._start.index if self._start else 0
        return self._labels[start:] + self._labels[:start]

    def cursor(self, label: str) -> TargetCursor:
        return TargetCursor(self, label)

    def load(self, label: str) -> str | None:
        """The repository to start `label` at: only the target the last run stopped in has one."""
        if self._start is None or self._labels[self._start.index] != label:
            return None
        return self._start.repository

    def record(self, label: str, resume_from: str | None) -> None:
        self._recorded[label] = resume_from

    def save(self, resume_target: str | None) -> None:
        """Write where the next run starts (the first target left unfinished, in this run's
        order), if that changed."""
        document: dict[str, Any] = {}
        if resume_target is not None:
            repository = (
                self._recorded[resume_target]
                if resume_target in self._recorded
                else self.load(resume_target)
            )
            position = TargetPosition(self._labels.index(resume_target), repository)
            document[RESUME_AT] = cursor.encode(position, self._labels)
            assert len(json.dumps(document)) <= CURSOR_MAX_CHARS, "the cursor outgrew its bound"
        if document == self._saved:
            return
        problem = _write_cursor(self._client, self._name, self._log, document)
        if problem is None:
            self._saved = document
        self.problem = problem or self.problem


class TargetCursor:
    """One registry's cursor within `TargetCursors` (the engine's Cursor). Its `problem` is
    always None: `TargetCursors` reports the run's once."""

    problem: str | None = None

    def __init__(self, cursors: TargetCursors, label: str) -> None:
        self._cursors = cursors
        self._label = label

    def load(self) -> str | None:
        return self._cursors.load(self._label)

    def save(self, resume_from: str | None) -> None:
        self._cursors.record(self._label, resume_from)


class ParameterApprovals:
    """The approval of a held run, under "approval" in the state parameter (ports.ApprovalStore)."""

    def __init__(self, client: Any, name: str, logger: Any | None = None) -> None:
        self._client = client
        self._name = name
        self._log = logger
        self.problem: str | None = None
        """Why the last load or save failed, if it did."""

    def load(self) -> Approval | None:
        try:
            document = json.loads(read_parameter(self._client, self._name))
        except (ClientError, BotoCoreError, KeyError, ValueError) as error:
            self._unavailable(f"can't read the approval in {self._name}: {error}")
            return None
        found = document.get(APPROVAL) if isinstance(document, dict) else None
        if found is None:
            return None
        try:
            return Approval.from_dict(found)
        except ValueError as error:
            self._unavailable(f"the approval in {self._name} is not usable: {error}")
            return None

    def save(self, approval: Approval) -> bool:
        try:
            write_state(
                self._client, self._name, frozenset({APPROVAL}), {APPROVAL: approval.to_dict()}
            )
        except (ClientError, BotoCoreError) as error:
            self._unavailable(f"can't write the approval to {self._name}: {error}")
            return False
        return True

    def _unavailable(self, reason: str) -> None:
        self.problem = reason
        if self._log is not None:
            self._log.warning(
                f"{reason}; a run the guard holds stays held",
                extra={ev.EVENT: ev.APPROVAL_UNAVAILABLE, ev.REASON: reason},
            )
