"""Lists of a Kubernetes API server, read over HTTPS with urllib3 (which botocore ships).

Only GET list calls are needed, so a Kubernetes client library (tens of MB of generated models,
and a slower cold start) would buy nothing. TLS is always verified, against the cluster's own CA.
Not an AWS service: it is here, with the other adapters, because `aws.eks` hands it the
endpoint, CA and token of each EKS cluster.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import urllib3

PAGE_SIZE = 500
"""Items asked for per list call (kubectl's default chunk size); a server may send fewer."""
CONNECT_SECONDS = 5.0
READ_SECONDS = 30.0
RESTARTS_ON_GONE = 2
"""A `continue` token the server no longer honours (410 Gone: the list's snapshot was
compacted away) restarts that list from the first page, at most this many times."""

RESOURCES: tuple[tuple[str, str], ...] = (
    ("pods", "/api/v1/pods"),
    ("replicationcontrollers", "/api/v1/replicationcontrollers"),
    ("deployments", "/apis/apps/v1/deployments"),
    ("replicasets", "/apis/apps/v1/replicasets"),
    ("statefulsets", "/apis/apps/v1/statefulsets"),
    ("daemonsets", "/apis/apps/v1/daemonsets"),
    ("controllerrevisions", "/apis/apps/v1/controllerrevisions"),
    ("jobs", "/apis/batch/v1/jobs"),
    ("cronjobs", "/apis/batch/v1/cronjobs"),
)
"""(resource, cluster-wide list path) of everything that runs or can run a pod."""


class KubernetesError(Exception):
    """A list that could not be read whole; `status` is the HTTP status (None: no answer)."""

    def __init__(self, resource: str, message: str, status: int | None = None) -> None:
        super().__init__(f"listing {resource}: {message}")
        self.resource, self.status = resource, status


class KubernetesLists:
    """Cluster-wide lists of one API server, every page of each.

    `token` is called for every request, so a long listing never outlives its token.
    """

    def __init__(
        self,
        endpoint: str,
        ca_pem: str,
        token: Callable[[], str],
        *,
        page_size: int = PAGE_SIZE,
        timeout: urllib3.Timeout | None = None,
    ) -> None:
        self._endpoint = endpoint.rstrip("/")
        self._token = token
        self._page_size = page_size
        context = ssl.create_default_context(cadata=ca_pem)  # verifies host and chain
        self._pool = urllib3.PoolManager(
            ssl_context=context,
            timeout=timeout or urllib3.Timeout(connect=CONNECT_SECONDS, read=READ_SECONDS),
            retries=urllib3.Retry(
                total=3,
                read=1,
                backoff_factor=0.2,
                status_forcelist=(429, 500, 502, 503, 504),
                allowed_methods=("GET",),
                raise_on_status=False,
                # A server's Retry-After could outlast the run: back off our own way instead.
                respect_retry_after_header=False,
            ),
        )

    def items(self, resource: str, path: str) -> Iterator[dict[str, Any]]:
        """Every item of a list, page by page (`limit`, `continue`)."""
        for _ in range(RESTARTS_ON_GONE + 1):
            pages = self._pages(resource, path)
            try:
                for page in pages:
                    yield from page
                return
            except _Gone:
                continue
        raise KubernetesError(
            resource, f"410 Gone {RESTARTS_ON_GONE + 1} times: the list kept changing too fast"
        )

    def _pages(self, resource: str, path: str) -> Iterator[list[dict[str, Any]]]:
        token: str | None = None
        while True:
            query = {"limit": str(self._page_size)}
            if token:
                query["continue"] = token
            body = self._get(resource, f"{self._endpoint}{path}?{urlencode(query)}", bool(token))
            items = body.get("items")
            if not isinstance(items, list):
                raise KubernetesError(resource, "the answer has no list of items")
            yield [item for item in items if isinstance(item, dict)]
            token = (body.get("metadata") or {}).get("continue") or None
            if token is None:
                return

    def _get(self, resource: str, url: str, continued: bool) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._token()}", "Accept": "application/json"}
        try:
            response = self._pool.request("GET", url, headers=headers, preload_content=True)
        except urllib3.exceptions.HTTPError as error:
            raise KubernetesError(resource, _why(error)) from error
        if response.status == 410 and continued:
            raise _Gone()
        if response.status != 200:
            raise KubernetesError(
                resource, f"{response.status} {_status_message(response.data)}", response.status
            )
        try:
            body = json.loads(response.data)
        except (ValueError, RecursionError) as error:
            raise KubernetesError(resource, f"the answer is not JSON ({error})") from error
        if not isinstance(body, dict):
            raise KubernetesError(resource, "the answer is not a JSON object")
        return body


class _Gone(Exception):
    """The server dropped the snapshot a `continue` token pointed into."""


def _status_message(data: bytes) -> str:
    """The `message` of a Kubernetes Status answer, or the start of whatever was sent."""
    try:
        status = json.loads(data)
    except (ValueError, RecursionError):
        status = None
    if isinstance(status, dict) and status.get("message"):
        return f"{status.get('reason') or ''}: {status['message']}".strip(": ")
    return data[:200].decode("utf-8", "replace") or "(no body)"


def _why(error: urllib3.exceptions.HTTPError) -> str:
    """What went wrong under urllib3's retry wrapper: TLS, a timeout, no connection."""
    reason = getattr(error, "reason", None) or error
    if isinstance(reason, urllib3.exceptions.SSLError):
        return f"TLS failed (the server's certificate is not the cluster CA's?): {reason}"
    if isinstance(reason, urllib3.exceptions.TimeoutError):
        return f"timed out: {reason}"
    return f"no answer: {reason}"
