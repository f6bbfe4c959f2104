"""The WSGI layer around moto: counts calls, injects faults and latency, answers the ECR
operations moto gets wrong (see ecr_api) and serves a small control API under /_local_ecr/."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from local_ecr.clock import parse_timestamp
from local_ecr.ecr_api import HANDLERS, Context
from local_ecr.faults import FaultRule
from local_ecr.routing import CallInfo, identify
from local_ecr.store import EcrError

if TYPE_CHECKING:
    from local_ecr.server import LocalEcr

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
CONTROL_PREFIX = "/_local_ecr/"
_STATUS_TEXT = {
    400: "Bad Request",
    404: "Not Found",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def run_buffered(
    app: WsgiApp, environ: dict[str, Any]
) -> tuple[str, list[tuple[str, str]], list[bytes]]:
    """Run a WSGI application to its end: its status, headers and every chunk of its body."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started[:] = [status, headers]
        return lambda data: None

    result = app(environ, start_response)
    try:
        chunks = list(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return started[0], started[1], chunks


def _discard(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    """A start_response for a call whose response is then lost."""
    return lambda data: None


def _status(code: int) -> str:
    return f"{code} {_STATUS_TEXT.get(code, 'Error')}"


def _account_id(info: CallInfo, environ: dict[str, Any]) -> str:
    """The account moto uses for this request (same precedence as moto)."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if "HTTP_X_MOTO_ACCOUNT_ID" in environ:
        return str(environ["HTTP_X_MOTO_ACCOUNT_ID"])
    from moto.iam.models import get_account_id_from

    return str(get_account_id_from(info.access_key or "AKIAEXAMPLE"))


def _json_response(
    start_response: StartResponse, status: int, payload: Any, headers: list[tuple[str, str]]
) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(
        _status(status),
        [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("Content-Length", str(len(body))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
            *headers,
        ],
    )
    return [body]


def error_response(
    start_response: StartResponse, protocol: str, status: int, code: str, message: str
) -> list[bytes]:
    """An AWS error in the wire format botocore expects for this protocol."""
    request_id = str(uuid.uuid4())
    if protocol in ("query", "ec2", "rest-xml"):
        error = f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
        error += "</Error>"
        if protocol == "ec2":
            text = f"<Response><Errors>{error}</Errors><RequestID>{request_id}</RequestID>"
            text += "</Response>"
        elif protocol == "query":
            text = f"<ErrorResponse>{error}<RequestId>{request_id}</RequestId></ErrorResponse>"
        else:
            text = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        body = text.encode()
        start_response(
            _status(status),
            [
                ("Content-Type", "text/xml"),
                ("Content-Length", str(len(body))),
                ("x-amzn-RequestId", request_id),
            ],
        )
        return [body]
    return _json_response(
        start_response,
        status,
        {"__type": code, "message": message},
        [("x-amzn-ErrorType", code)],
    )


class EmulatorApp:
    """WSGI application: `LocalEcr` state in front of moto's dispatcher."""

    def __init__(self, emulator: LocalEcr, moto_app: WsgiApp) -> None:
        self.emulator = emulator
        self.moto_app = moto_app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", "/"))
        if path.startswith(CONTROL_PREFIX):
            return self._control(environ, start_response, path[len(CONTROL_PREFIX) :])
        body = self._read_body(environ)
        if path.startswith("/moto-api"):
            return self._moto(environ, start_response)
        info = identify(environ, body)
        ordinal = self.emulator.counter.record(info.service, info.operation)
        decision = self.emulator.faults.decide(info.service, info.operation, ordinal)
        if decision.delay > 0:
            time.sleep(decision.delay)
        if decision.rule is not None and decision.rule.kind != "lost":
            return self._fail(environ, start_response, info, decision.rule)
        if info.service == "ecr" and info.protocol == "json" and info.operation in HANDLERS:
            served = self._ecr(
                start_response if decision.rule is None else _discard, info, environ, body
            )
        else:
            served = self._moto(environ, start_response if decision.rule is None else _discard)
        if decision.rule is not None:
            return self._fail(environ, start_response, info, decision.rule)
        return served

    @staticmethod
    def _read_body(environ: dict[str, Any]) -> bytes:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(body)
        return bytes(body)

    def _moto(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        with self.emulator.state_lock:
            status, headers, chunks = run_buffered(self.moto_app, environ)
        start_response(status, headers)
        return chunks

    def _ecr(
        self, start_response: StartResponse, info: CallInfo, environ: dict[str, Any], body: bytes
    ) -> list[bytes]:
        try:
            params = json.loads(body or b"{}")
            if not isinstance(params, dict):
                raise EcrError("SerializationException", "Request body must be a JSON object")
            context = Context(
                _account_id(info, environ),
                info.region,
                self.emulator.clock.now,
                self.emulator.digest_and_tag_deletes_image,
                self.emulator.activation_delay,
            )
            with self.emulator.state_lock:
                result = HANDLERS[info.operation](params, context)
        except json.JSONDecodeError:
            return error_response(
                start_response,
                "json",
                400,
                "SerializationException",
                "Request body is not valid JSON",
            )
        except EcrError as error:
            return error_response(start_response, "json", error.status, error.code, error.message)
        return _json_response(start_response, 200, result, [])

    @staticmethod
    def _fail(
        environ: dict[str, Any], start_response: StartResponse, info: CallInfo, rule: FaultRule
    ) -> list[bytes]:
        if rule.kind == "drop":
            connection = environ.get("werkzeug.socket")
            if connection is not None:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            raise ConnectionAbortedError(f"local_ecr dropped {info.service}:{info.operation}")
        return error_response(start_response, info.protocol, rule.status, rule.code, rule.message)

    # -- control API ----------------------------------------------------------------------------

    def _control(
        self, environ: dict[str, Any], start_response: StartResponse, route: str
    ) -> list[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET"))
        try:
            raw = self._read_body(environ)
            payload = json.loads(raw) if raw.strip() else {}
            if not isinstance(payload, dict):
                raise ValueError("the request body must be a JSON object")
            result = self._dispatch_control(method, route.strip("/"), payload)
        except KeyError as error:
            return self._control_reply(start_response, 400, {"error": f"missing key {error}"})
        except LookupError as error:
            return self._control_reply(start_response, 404, {"error": str(error)})
        except (ValueError, TypeError, EcrError) as error:
            message = error.message if isinstance(error, EcrError) else str(error)
            return self._control_reply(start_response, 400, {"error": message})
        return self._control_reply(start_response, 200, result)

    @staticmethod
    def _control_reply(start_response: StartResponse, status: int, payload: Any) -> list[bytes]:
        body = json.dumps(payload).encode()
        start_response(
            _status(status),
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]

    def _dispatch_control(self, method: str, route: str, payload: dict[str, Any]) -> Any:
        ecr = self.emulator
        if route == "calls" and method == "GET":
            return {"calls": ecr.counter.by_service()}
        if route == "calls" and method == "DELETE":
            ecr.reset_counters()
            return {}
        if route == "faults" and method == "POST":
            kind = payload.pop("kind", None)
            options = {
                "operation": payload.pop("operation", None),
                "service": payload.pop("service", None),
                "rate": float(payload.pop("rate", 1.0)),
                "times": payload.pop("times", None),
                "on_calls": payload.pop("onCalls", None),
            }
            if kind == "throttle":
                ecr.faults.throttle(**options)
            elif kind == "error":
                ecr.faults.error(int(payload.pop("status", 500)), **options)
            elif kind == "drop":
                ecr.faults.drop_connection(**options)
            elif kind == "lost":
                ecr.faults.lose_response(**options)
            else:
                raise ValueError(f"kind must be throttle, error, drop or lost, got {kind!r}")
            _no_leftovers(payload)
            return {}
        if route == "faults" and method == "DELETE":
            ecr.faults.clear()
            return {}
        if route == "latency" and method == "POST":
            ecr.faults.latency(
                float(payload.pop("seconds", 0.0)),
                jitter=float(payload.pop("jitter", 0.0)),
                operation=payload.pop("operation", None),
                service=payload.pop("service", None),
            )
            _no_leftovers(payload)
            return {}
        if route == "clock":
            if method == "POST" and "now" in payload:
                ecr.clock.set(parse_timestamp(payload["now"]))
            elif method == "POST" and "advanceSeconds" in payload:
                ecr.clock.advance(timedelta(seconds=float(payload["advanceSeconds"])))
            elif method == "DELETE":
                ecr.clock.resume()
            elif method != "GET":
                raise ValueError("POST /_local_ecr/clock needs 'now' or 'advanceSeconds'")
            return {"now": ecr.clock.now().isoformat(), "frozen": ecr.clock.frozen}
        if route == "eks-cluster" and method == "POST":
            ecr.point_eks_cluster(
                str(payload.pop("name")),
                str(payload.pop("endpoint")),
                str(payload.pop("caPem")),
                region=payload.pop("region", None),
            )
            _no_leftovers(payload)
            return {}
        if route == "pushed-at" and method == "POST":
            ecr.set_pushed_at(
                str(payload["repositoryName"]),
                str(payload["imageDigest"]),
                parse_timestamp(payload["pushedAt"]),
                region=payload.get("region"),
            )
            return {}
        if route == "seed" and method == "POST":
            result = ecr.seed(
                str(payload.get("scenario", "demo")),
                now=parse_timestamp(payload["now"]) if "now" in payload else None,
                seed=int(payload.get("seed", 0)),
                region=payload.get("region"),
            )
            return result.to_dict()
        if route == "reset" and method == "POST":
            ecr.reset()
            return {}
        raise LookupError(f"no control route {method} {CONTROL_PREFIX}{route}")


def _no_leftovers(payload: dict[str, Any]) -> None:
    if payload:
        raise ValueError(f"unknown keys: {sorted(payload)}")
