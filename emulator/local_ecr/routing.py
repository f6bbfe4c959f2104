"""Which AWS service, operation, region and access key a request is for.

Read from the SigV4 `Authorization` header (credential scope), `X-Amz-Target` (JSON protocols),
`Action` (query protocols) or, for REST protocols, the botocore service model's HTTP bindings.
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import botocore.session

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_CBOR_PATH = re.compile(r"^/service/[^/]+/operation/([^/?]+)")
# Signing names that are not also botocore service names.
_SERVICE_ALIASES = {"monitoring": "cloudwatch", "states": "stepfunctions", "email": "ses"}
_model_lock = threading.Lock()


@dataclass(frozen=True)
class CallInfo:
    service: str
    operation: str
    region: str
    access_key: str
    protocol: str


@functools.cache
def _session() -> Any:
    return botocore.session.get_session()


@functools.cache
def _service_model(signing_name: str) -> Any:
    name = _SERVICE_ALIASES.get(signing_name, signing_name)
    with _model_lock:
        try:
            return _session().get_service_model(name)
        except Exception:  # unknown to botocore: fall back to method + path
            return None


@functools.cache
def _rest_routes(signing_name: str) -> list[tuple[str, re.Pattern[str], dict[str, str], str]]:
    model = _service_model(signing_name)
    routes: list[tuple[str, re.Pattern[str], dict[str, str], str]] = []
    if model is None:
        return routes
    for operation in model.operation_names:
        http = model.operation_model(operation).http
        path, _, query = str(http.get("requestUri", "/")).partition("?")
        pattern = re.escape(path)
        pattern = re.sub(r"\\\{[^}]+\\\+\\\}", ".+", pattern)
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", pattern)
        required = {
            key: values[0] if values else ""
            for key, values in parse_qs(query, keep_blank_values=True).items()
        }
        routes.append(
            (str(http.get("method", "POST")), re.compile(f"^{pattern}/?$"), required, operation)
        )
    # Most specific first: literal-heavy templates before catch-alls.
    routes.sort(key=lambda route: (-len(route[2]), -len(route[1].pattern)))
    return routes


def protocol_of(service: str) -> str:
    model = _service_model(service)
    return str(model.metadata.get("protocol", "json")) if model is not None else "json"


def identify(environ: dict[str, Any], body: bytes) -> CallInfo:
    """Name the call in `environ`; unknown parts become "unknown"."""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    access_key, region, service = match.groups() if match else ("", "us-east-1", "unknown")
    path = environ.get("PATH_INFO", "/")
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return CallInfo(service, target.rsplit(".", 1)[-1], region, access_key, "json")
    if cbor := _CBOR_PATH.match(path):
        return CallInfo(service, cbor.group(1), region, access_key, "smithy-rpc-v2-cbor")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    form: dict[str, list[str]] = {}
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    action = (form.get("Action") or query.get("Action") or [""])[0]
    protocol = protocol_of(service)
    if action:
        return CallInfo(service, action, region, access_key, protocol)
    method = environ.get("REQUEST_METHOD", "GET")
    for route_method, pattern, required, operation in _rest_routes(service):
        if (
            route_method == method
            and pattern.match(path)
            and all(
                key in query and (not value or query[key][0] == value)
                for key, value in required.items()
            )
        ):
            return CallInfo(service, operation, region, access_key, protocol)
    return CallInfo(service, f"{method} {path}", region, access_key, protocol)
