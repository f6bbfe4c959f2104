"""The one module that talks to SSM Parameter Store: the stack's state parameter (the run
cursor and the deletion guard's approval) and parameter documents.

The state parameter is a small String parameter the stack creates, holding one JSON object. Each
writer owns some top-level keys, and every write reads the document first and keeps the keys it
does not own. The cursor owns `resumeFrom` (`{"resumeFrom": "<repository>"}` when the last live
run's time budget ran out), or, for a run over several registries (settings `regions`,
`accounts`), `resumeTarget` and `targets` (`{"<target>": "<repository>"}`). It is read at the
start of a run and written only when it changes. Trouble with it never stops a sweep: the run
then starts at the first repository (and the first registry), and says so. The approval of a
held run (`ecr-sweeper approve`) owns `approval` (core.guard.Approval); trouble with it makes
the run hold (it is never used unread or unrecorded).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core.guard import Approval

STATE_PARAMETER_VARIABLE = "SWEEPER_STATE_PARAMETER"
"""The Lambda environment variable naming the cursor's parameter."""

RESUME_FROM = "resumeFrom"
RESUME_TARGET = "resumeTarget"
TARGETS = "targets"
APPROVAL = "approval"
CURSOR_KEYS = frozenset({RESUME_FROM, RESUME_TARGET, TARGETS})
"""The keys the cursor owns; a cursor write keeps every other key of the document."""


def read_parameter(client: Any, name: str) -> str:
    """A parameter's value, decrypted if it is a SecureString."""
    response = client.get_parameter(Name=name, WithDecryption=True)
    return str(response["Parameter"]["Value"])


class ParameterCursor:
    """The sweep's cursor in one SSM String parameter."""

    def __init__(self, client: Any, name: str, logger: Any) -> None:
        self._client = client
        self._name = name
        self._log = logger

    def load(self) -> str | None:
        document = _read_cursor(self._client, self._name, self._log)
        value = document.get(RESUME_FROM) if isinstance(document, dict) else None
        return value if isinstance(value, str) and value else None

    def save(self, resume_from: str | None) -> None:
        document = {RESUME_FROM: resume_from} if resume_from else {}
        _write_cursor(self._client, self._name, self._log, document)


def _read_cursor(client: Any, name: str, logger: Any) -> Any:
    """The cursor parameter's JSON document; None, said in the log, if it can't be read."""
    try:
        return json.loads(read_parameter(client, name))
    except (ClientError, BotoCoreError, KeyError, ValueError) as error:
        _unavailable(logger, f"can't read the cursor {name}: {error}")
        return None


def write_state(client: Any, name: str, owned: frozenset[str], values: dict[str, Any]) -> None:
    """Replace the keys `owned` of the state document with `values` (a subset of them), keeping
    every other key as it is now. A document that can't be read as an object is started afresh.
    Raises ClientError/BotoCoreError."""
    try:
        current = json.loads(read_parameter(client, name))
    except (KeyError, ValueError):
        current = {}
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ParameterNotFound":
            raise
        current = {}
    document = (
        {k: v for k, v in current.items() if k not in owned} if isinstance(current, dict) else {}
    )
    document.update(values)
    client.put_parameter(Name=name, Value=json.dumps(document), Type="String", Overwrite=True)


def _write_cursor(client: Any, name: str, logger: Any, document: dict[str, Any]) -> bool:
    """Write the cursor's keys; False, said in the log, if they can't be written."""
    try:
        write_state(client, name, CURSOR_KEYS, document)
    except (ClientError, BotoCoreError) as error:
        _unavailable(logger, f"can't write the cursor {name}: {error}")
        return False
    return True


def _unavailable(logger: Any, reason: str) -> None:
    logger.warning(
        f"{reason}; this run starts at the first repository",
        extra={ev.EVENT: ev.CURSOR_UNAVAILABLE, ev.REASON: reason},
    )


class TargetCursors:
    """The cursors of a run over several registries, in the same parameter: where each
    registry's last run ran out of time, and which registry ran out first, to start with it.
    Read once when made; `save` writes the whole document once, at the end of the run."""

    def __init__(self, client: Any, name: str, logger: Any) -> None:
        self._client = client
        self._name = name
        self._log = logger
        self._resume_target: str | None = None
        self._targets: dict[str, str] = {}
        document = _read_cursor(client, name, logger)
        if isinstance(document, dict):
            target = document.get(RESUME_TARGET)
            self._resume_target = target if isinstance(target, str) and target else None
            targets = document.get(TARGETS)
            if isinstance(targets, dict):
                self._targets = {
                    label: repository
                    for label, repository in targets.items()
                    if isinstance(label, str) and isinstance(repository, str) and repository
                }
        self._saved = self._document()

    def order(self, labels: list[str]) -> list[str]:
        """The registries in the order to sweep them: the one that ran out first, then on."""
        if self._resume_target not in labels:
            return labels
        start = labels.index(self._resume_target)
        return labels[start:] + labels[:start]

    def cursor(self, label: str) -> TargetCursor:
        return TargetCursor(self, label)

    def load(self, label: str) -> str | None:
        return self._targets.get(label)

    def record(self, label: str, resume_from: str | None) -> None:
        if resume_from:
            self._targets[label] = resume_from
        else:
            self._targets.pop(label, None)

    def save(self, resume_target: str | None) -> None:
        """Write where each registry stands and the one to start with, if that changed."""
        self._resume_target = resume_target
        document = self._document()
        if document != self._saved and _write_cursor(self._client, self._name, self._log, document):
            self._saved = document

    def _document(self) -> dict[str, Any]:
        document: dict[str, Any] = {}
        if self._resume_target:
            document[RESUME_TARGET] = self._resume_target
        if self._targets:
            document[TARGETS] = dict(sorted(self._targets.items()))
        return document


class TargetCursor:
    """One registry's cursor within `TargetCursors` (the engine's Cursor)."""

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
