"""`LocalEcr`: moto plus the ECR fidelity layer, served over HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import threading
from collections import Counter
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import boto3
from botocore.config import Config
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from local_ecr import ssm_limits
from local_ecr.app import EmulatorApp, run_buffered
from local_ecr.clock import Clock, as_utc
from local_ecr.ecr_api import DEFAULT_ACTIVATION_DELAY
from local_ecr.faults import CallCounter, Faults
from local_ecr.scenarios import SeedResult, seed_scenario
from local_ecr.store import EcrError, ensure_repository, open_repository, set_pushed_at

DEFAULT_ACCOUNT_ID = "123456789012"
HOST = "127.0.0.1"
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class _KeepAliveHandler(MotoRequestHandler):
    """moto's request handler, quiet, with HTTP/1.1 keep-alive as ECR's endpoints have it.

    werkzeug's development server closes every connection, so each call a client made here
    paid for a new TCP connection (and the server for a new thread), which no client of the
    real ECR pays: about a tenth of the sweeper's CPU in `make bench`. `run_wsgi` here buffers
    the response and sends it with its length, and the connection stays open unless the request
    asked to close, its body length was unknown, the call was dropped (a fault) or the server is
    stopping.
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    """The status line, headers and body go out in separate writes; with Nagle's algorithm
    each keep-alive call would wait on the client's delayed ACK (about 40 ms)."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def run_wsgi(self) -> None:
        if getattr(self.server, "stopping", False):
            self.close_connection = True
            return
        if self.headers.get("Expect", "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        environ = self.make_environ()
        length = self.headers.get("Content-Length")
        if length is not None and length.isdigit():
            # Read the whole body here, so the next request on the connection starts cleanly
            # whatever the application reads of it.
            environ["wsgi.input"] = io.BytesIO(self.rfile.read(int(length)))
        elif self.command not in ("GET", "HEAD", "DELETE"):
            self.close_connection = True  # a chunked or unframed body: nothing to reuse after
        try:
            status, headers, chunks = run_buffered(self.server.app, environ)
            body = b"".join(chunks)
        except ConnectionError:  # the emulator dropped the call (a fault), or the client left
            self.close_connection = True
            return
        except Exception as error:  # as werkzeug does: a 500 with the error, and the log
            self.server.log("error", f"Error on request: {error!r}")
            self.close_connection = True
            status, headers = "500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")]
            body = f"local_ecr: {type(error).__name__}: {error}".encode()
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class LocalEcr:
    """A local ECR that behaves like the real one, plus every other service moto serves.

    Binds 127.0.0.1 only. `port=0` picks a free port. Use as a context manager, or call
    `start()`/`stop()`. State is process-global (moto's backends), so run one per process.
    """

    def __init__(
        self,
        port: int = 0,
        region: str = "us-east-1",
        *,
        fault_seed: int = 0,
        account_id: str = DEFAULT_ACCOUNT_ID,
        activation_delay: timedelta = DEFAULT_ACTIVATION_DELAY,
    ) -> None:
        self.region = region
        self.account_id = account_id
        self.activation_delay = activation_delay
        """How long a restored image stays ACTIVATING (emulator clock time); ECR: ~20 minutes."""
        self.clock = Clock()
        self.faults = Faults(seed=fault_seed)
        self.counter = CallCounter()
        self.state_lock = threading.RLock()
        self.digest_and_tag_deletes_image = False
        """BatchDeleteImage `{imageDigest, imageTag}`: False removes only that tag (the image
        goes with its last tag); True removes the whole image, as moto does. Real ECR's
        reference doesn't say which, so the sweeper is tested against both."""
        self._requested_port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._session: boto3.Session | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> LocalEcr:
        if self._server is not None:
            return self
        ssm_limits.enforce()
        app = EmulatorApp(self, DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            HOST, self._requested_port, app, threaded=True, request_handler=_KeepAliveHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="local-ecr", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stopping = True  # type: ignore[attr-defined]
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    def __enter__(self) -> LocalEcr:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("LocalEcr is not running; call start() or use it in a with block")
        return int(self._server.server_port)

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    # -- clients --------------------------------------------------------------------------------

    def session(self) -> boto3.Session:
        """A boto3 Session with fake credentials in this emulator's region."""
        return boto3.Session(region_name=self.region, **FAKE_CREDENTIALS)

    def client(self, service: str = "ecr", *, config: Config | None = None) -> Any:
        """A boto3 client for `service` on this endpoint; no retries unless `config` says so."""
        if self._session is None:
            self._session = self.session()
        return self._session.client(
            service,
            endpoint_url=self.endpoint_url,
            config=config or Config(retries={"mode": "standard", "total_max_attempts": 1}),
        )

    # -- state ----------------------------------------------------------------------------------

    @property
    def calls(self) -> Counter[str]:
        """Calls per operation name (all services); a snapshot."""
        return self.counter.by_operation()

    def calls_for(self, service: str) -> Counter[str]:
        """Calls per operation for one service, by its signing name ("ecr", "ecs", "sts")."""
        return self.counter.by_operation(service)

    def reset_counters(self) -> None:
        self.counter.reset()

    def reset(self) -> None:
        """Wipe every moto backend (all services, accounts, regions)."""
        from moto.moto_api._internal.models import moto_api_backend

        with self.state_lock:
            moto_api_backend.reset()

    def seed(
        self,
        scenario: str = "demo",
        *,
        now: datetime | None = None,
        seed: int = 0,
        region: str | None = None,
    ) -> SeedResult:
        """Seed a named scenario ("demo", "ci:3x40", "large:50x200", ...) straight into the
        backend; `now` defaults to the emulator clock. ValueError for an unknown name/size."""
        with self.state_lock:
            return seed_scenario(
                scenario,
                account_id=self.account_id,
                region=region or self.region,
                now=as_utc(now) if now else self.clock.now(),
                seed=seed,
            )

    def push_image(
        self,
        repository: str,
        manifest: dict[str, Any] | bytes | str,
        tag: str | None = None,
        *,
        pushed_at: datetime | None = None,
        media_type: str | None = None,
        region: str | None = None,
    ) -> str:
        """Push like PutImage (same rules: the tag moves, digest = sha256 of the bytes) and
        return the digest. Creates the repository if it is missing. A dict manifest is
        serialized compactly; pass bytes to control the exact bytes."""
        if isinstance(manifest, dict):
            import json

            body = json.dumps(manifest, separators=(",", ":"))
        elif isinstance(manifest, bytes):
            body = manifest.decode()
        else:
            body = manifest
        with self.state_lock:
            view = ensure_repository(self.account_id, region or self.region, repository)
            image = view.put(
                body, tag, media_type, None, as_utc(pushed_at) if pushed_at else self.clock.now()
            )
            return str(image.get_image_digest())

    def point_eks_cluster(
        self, name: str, endpoint: str, ca_pem: str, *, region: str | None = None
    ) -> None:
        """An EKS cluster (created if missing) whose DescribeCluster names this Kubernetes API
        endpoint and CA, PEM text: moto makes up both otherwise."""
        from moto.eks.models import eks_backends

        with self.state_lock:
            backend = eks_backends[self.account_id][region or self.region]
            if name not in backend.clusters:
                backend.create_cluster(
                    name=name,
                    role_arn=f"arn:aws:iam::{self.account_id}:role/eks-cluster",
                    resources_vpc_config={},
                )
            cluster = backend.clusters[name]
            cluster.endpoint = endpoint
            cluster.certificate_authority = {"data": base64.b64encode(ca_pem.encode()).decode()}

    def set_pushed_at(
        self, repository: str, digest: str, when: datetime, *, region: str | None = None
    ) -> None:
        """Change an image's imagePushedAt. KeyError if the repository or image is missing."""
        with self.state_lock:
            try:
                view = open_repository(self.account_id, region or self.region, repository, None)
            except EcrError as error:
                raise KeyError(error.message) from None
            image = view.by_digest.get(digest)
            if image is None:
                raise KeyError(f"no image {digest} in repository {repository!r}")
            set_pushed_at(image, as_utc(when))
