"""The one module that talks to SSM Parameter Store: the run cursor and parameter documents.

The cursor is a small String parameter the stack creates: `{"resumeFrom": "<repository>"}` when
the last live run's time budget ran out, `{}` otherwise. It is read at the start of a run and
written only when it changes. Trouble with it never stops a sweep: the run then starts at the
first repository, and says so.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecr_sweeper import log_events as ev

STATE_PARAMETER_VARIABLE = "SWEEPER_STATE_PARAMETER"
"""The Lambda environment variable naming the cursor's parameter."""

RESUME_FROM = "resumeFrom"


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
        try:
            document = json.loads(read_parameter(self._client, self._name))
        except (ClientError, BotoCoreError, KeyError, ValueError) as error:
            self._unavailable(f"can't read the cursor {self._name}: {error}")
            return None
        value = document.get(RESUME_FROM) if isinstance(document, dict) else None
        return value if isinstance(value, str) and value else None

    def save(self, resume_from: str | None) -> None:
        value = json.dumps({RESUME_FROM: resume_from} if resume_from else {})
        try:
            self._client.put_parameter(Name=self._name, Value=value, Type="String", Overwrite=True)
        except (ClientError, BotoCoreError) as error:
            self._unavailable(f"can't write the cursor {self._name}: {error}")

    def _unavailable(self, reason: str) -> None:
        self._log.warning(
            f"{reason}; this run starts at the first repository",
            extra={ev.EVENT: ev.CURSOR_UNAVAILABLE, ev.REASON: reason},
        )
