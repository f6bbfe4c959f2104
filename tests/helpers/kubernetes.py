"""A Kubernetes API double: HTTPS on 127.0.0.1 with a CA made here, bearer-token checking, list
paging with `limit`/`continue`, and 401, 403 and 410 answers on demand.

`point_cluster` makes moto's EKS cluster describe this server as its endpoint and CA.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import ssl
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ecr_sweeper.aws.kubernetes import RESOURCES
from local_ecr import LocalEcr

PATHS = {path: resource for resource, path in RESOURCES}


@dataclass(frozen=True)
class Authority:
    """A CA and a server certificate it signed for 127.0.0.1, as PEM."""

    ca_pem: str
    cert_pem: str
    key_pem: str


def make_authority(name: str = "kubernetes-test-ca") -> Authority:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return Authority(
        ca.public_bytes(serialization.Encoding.PEM).decode(),
        cert.public_bytes(serialization.Encoding.PEM).decode(),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


@dataclass
class ApiState:
    """What the double serves and how it misbehaves; the tests change it between runs."""

    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    max_page: int | None = None
    """Items per page at most, whatever `limit` asks (servers may send fewer)."""
    refuse: int | None = None
    """Answer every request with this status (401 or 403)."""
    refuse_resource: str | None = None
    """With `refuse`: refuse only this resource's list."""
    expire_continue: int = 0
    """Answer this many requests that carry a `continue` token with 410 Gone."""
    delay_seconds: float = 0.0
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)


class KubernetesApi:
    """The double; a context manager. `url` and `authority.ca_pem` are what EKS describes."""

    def __init__(self, authority: Authority | None = None) -> None:
        self.authority = authority or make_authority()
        self.state = ApiState()
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> KubernetesApi:
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                split = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(split.query).items()}
                state.requests.append((split.path, query))
                state.tokens.append(self.headers.get("Authorization", ""))
                if state.delay_seconds:  # not time.sleep, which the integration tests patch
                    threading.Event().wait(state.delay_seconds)
                resource = PATHS.get(split.path)
                if not valid_token(self.headers.get("Authorization", "")):
                    return self._status(401, "Unauthorized", "the token is not an EKS token")
                if state.refuse and state.refuse_resource in (None, resource):
                    reason = "Forbidden" if state.refuse == 403 else "Unauthorized"
                    return self._status(
                        state.refuse, reason, f'{resource} is forbidden: User "sweeper" cannot list'
                    )
                if resource is None:
                    return self._status(404, "NotFound", f"no such list {split.path}")
                if "continue" in query and state.expire_continue:
                    state.expire_continue -= 1
                    return self._status(
                        410, "Expired", "The provided continue parameter is too old"
                    )
                items = state.items.get(resource, [])
                start = int(query.get("continue", "0"))
                size = int(query.get("limit", "0")) or len(items)
                if state.max_page:
                    size = min(size, state.max_page)
                page = items[start : start + size]
                rest = start + size < len(items)
                body = {
                    "kind": "List",
                    "apiVersion": "v1",
                    "metadata": {"continue": str(start + size)} if rest else {},
                    "items": page,
                }
                self._send(200, body)

            def _status(self, code: int, reason: str, message: str) -> None:
                status = {"kind": "Status", "status": "Failure", "reason": reason}
                self._send(code, {**status, "message": message, "code": code})

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as folder:
            cert, key = Path(folder, "cert.pem"), Path(folder, "key.pem")
            cert.write_text(self.authority.cert_pem)
            key.write_text(self.authority.key_pem)
            context.load_cert_chain(cert, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"https://127.0.0.1:{self._server.server_address[1]}"


def valid_token(header: str) -> bool:
    """An `aws eks get-token` token: a presigned STS GetCallerIdentity URL that signs
    `x-k8s-aws-id`. (The double can't ask STS who signed it; EKS's authenticator does.)"""
    prefix = "Bearer k8s-aws-v1."
    if not header.startswith(prefix):
        return False
    encoded = header[len(prefix) :]
    try:
        url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except ValueError:
        return False
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    return (
        query.get("Action") == "GetCallerIdentity"
        and "x-k8s-aws-id" in query.get("X-Amz-SignedHeaders", "").split(";")
        and query.get("X-Amz-Expires") == "60"
        and bool(query.get("X-Amz-Signature"))
    )


def point_cluster(
    local_ecr: LocalEcr, name: str, api: KubernetesApi, *, region: str | None = None
) -> None:
    """Create an EKS cluster in the local ECR's moto whose describe names this double."""
    local_ecr.point_eks_cluster(name, api.url, api.authority.ca_pem, region=region)


def pod(
    namespace: str,
    name: str,
    *containers: dict[str, Any],
    init: tuple[dict[str, Any], ...] = (),
    statuses: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"containers": list(containers), "initContainers": list(init)},
        "status": {"containerStatuses": list(statuses)},
    }


def template(*images: str) -> dict[str, Any]:
    """A pod template running these images."""
    return {"spec": {"containers": [{"name": f"c{n}", "image": i} for n, i in enumerate(images)]}}


def workload(namespace: str, name: str, *images: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"template": template(*images), **spec},
    }


def busy_cluster(pods: int, host: str) -> dict[str, list[dict[str, Any]]]:
    """A cluster of `pods` pods shaped like a real one: Deployments of 10 pods with two
    ReplicaSets each (one scaled to 0), StatefulSets with their ControllerRevisions, DaemonSets,
    Jobs and CronJobs; each pod about 4 KB of JSON, as kubectl's annotation and managedFields
    make them."""
    applied = json.dumps({"spec": {"template": template(f"{host}/app:v1")}}) * 4
    deployments = max(1, pods // 10)
    items: dict[str, list[dict[str, Any]]] = {key: [] for key, _ in RESOURCES}
    for number in range(pods):
        image = f"{host}/service-{number % deployments}:v{number % 7}"
        found = pod(
            f"team-{number % 20}",
            f"service-{number % deployments}-7c9-{number:05d}",
            {"name": "app", "image": image, "resources": {"limits": {"memory": "512Mi"}}},
            {"name": "proxy", "image": "public.ecr.aws/envoy/envoy:v1.30"},
            init=({"name": "migrate", "image": image},),
            statuses=(
                {
                    "name": "app",
                    "image": image,
                    "imageID": f"{image.split(':')[0]}@sha256:{number:064x}",
                    "ready": True,
                },
            ),
        )
        found["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied": applied}
        found["metadata"]["managedFields"] = [{"manager": "kube-controller", "fieldsV1": applied}]
        items["pods"].append(found)
    for number in range(deployments):
        image = f"{host}/service-{number}:v{number % 7}"
        items["deployments"].append(workload(f"team-{number % 20}", f"service-{number}", image))
        for revision in range(2):
            replicaset = workload(f"team-{number % 20}", f"service-{number}-{revision}", image)
            replicaset["spec"]["replicas"] = revision * 10
            items["replicasets"].append(replicaset)
    for number in range(max(1, pods // 200)):
        image = f"{host}/db-{number}:v1"
        items["statefulsets"].append(workload("data", f"db-{number}", image))
        items["controllerrevisions"] += [
            {
                "metadata": {"namespace": "data", "name": f"db-{number}-{revision}"},
                "data": {"spec": {"template": template(image)}},
            }
            for revision in range(2)
        ]
        items["daemonsets"].append(workload("kube-system", f"agent-{number}", image))
        items["jobs"].append(workload("ops", f"backfill-{number}", image))
        items["cronjobs"].append(
            {
                "metadata": {"namespace": "ops", "name": f"nightly-{number}"},
                "spec": {"jobTemplate": {"spec": {"template": template(image)}}},
            }
        )
    return items


def serve(pods: int, host: str) -> None:
    """`python -m tests.helpers.kubernetes PODS HOST`: serve a busy cluster until stdin closes,
    after printing {"url": ..., "caPem": ...} (the bench runs the double in a process of its
    own, so its CPU isn't counted as the sweep's)."""
    import sys

    with KubernetesApi() as api:
        api.state.items = busy_cluster(pods, host)
        print(json.dumps({"url": api.url, "caPem": api.authority.ca_pem}), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    import sys

    serve(int(sys.argv[1]), sys.argv[2])
