"""Builds the boto3 clients every AWS-facing module uses, from one place.

`endpoint_url` points every client at an ECR-compatible endpoint such as the local emulator.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError
from botocore.parsers import JSONParser, ResponseParserFactory
from botocore.serialize import JSONSerializer

from ecr_sweeper.aws import sts
from ecr_sweeper.aws.ecr import RETRY_CONFIG


@dataclass(frozen=True)
class AwsTarget:
    """Where the sweeper's clients go: a region, an optional profile and endpoint."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    credentials: sts.Credentials | None = None
    """Temporary credentials of a role assumed in another account (settings: accounts)."""
    bucket_owner: str | None = None
    """The account that must own every bucket these clients touch: S3 calls send it as
    ExpectedBucketOwner, so a bucket of the same name in another account is refused."""
    _shared: _SharedSession = field(
        default_factory=lambda: _SharedSession(), init=False, repr=False, compare=False
    )
    """One session for this target's clients: a fresh session per client reloads botocore's
    endpoint and model data each time (about 60 ms of CPU a client)."""

    def _session(self, core: Any = None) -> boto3.Session:
        if self.credentials is None:
            return boto3.Session(
                profile_name=self.profile, region_name=self.region, botocore_session=core
            )
        return boto3.Session(
            aws_access_key_id=self.credentials.access_key_id,
            aws_secret_access_key=self.credentials.secret_access_key,
            aws_session_token=self.credentials.session_token,
            region_name=self.region,
            botocore_session=core,
        )

    def has_credentials(self) -> bool:
        """Whether boto3 finds credentials (environment, profile, instance role, ...)."""
        return self._session().get_credentials() is not None

    def client(self, service: str) -> Any:
        with self._shared.lock:
            if self._shared.session is None:
                self._shared.session = self._session()
            client = fail_fast_when_unreachable(
                self._shared.session.client(
                    service, endpoint_url=self.endpoint_url, config=RETRY_CONFIG
                )
            )
        if service == "s3" and self.bucket_owner:
            client.meta.events.register(
                "provide-client-params.s3", _expect_bucket_owner(self.bucket_owner)
            )
        return client

    def effective_region(self) -> str | None:
        """The region the clients use: this target's, or boto3's default (AWS_REGION, ...)."""
        return self.region or self._session().region_name

    def in_region(self, region: str | None) -> AwsTarget:
        """The same credentials and endpoint, another region (None: this one)."""
        return replace(self, region=region or self.region)

    def assuming(self, role_arn: str, session_name: str) -> AwsTarget:
        """A target whose clients act as `role_arn`, assumed with this target's credentials."""
        credentials = sts.assume_role(self.client("sts"), role_arn, session_name)
        return replace(self, profile=None, credentials=credentials)

    def registry_client(self) -> Any:
        """The ECR client the sweep runs on, tuned for listing 100,000 images.

        Responses are taken as the JSON ECR sends (`_PlainJsonParsers`), and parameters are
        built by `aws.ecr.EcrRegistry` itself, so botocore's client-side validation is skipped and
        lists of image ids are written as they are (`PlainJsonSerializer`); ECR still validates
        every request.
        """
        core = botocore.session.get_session()
        core.register_component("response_parser_factory", _PlainJsonParsers())
        session = self._session(core)
        config = RETRY_CONFIG.merge(Config(parameter_validation=False))
        client = session.client("ecr", endpoint_url=self.endpoint_url, config=config)
        if type(getattr(client, "_serializer", None)) is JSONSerializer:
            client._serializer = PlainJsonSerializer()
        return fail_fast_when_unreachable(client)


CONNECT_TIMEOUT_ATTEMPTS = 2
"""Tries of a call whose connection timed out: one retry, in case a packet was lost."""


def _unreachable(caught_exception: Exception | None = None, attempts: int = 1, **_: Any) -> None:
    """A `needs-retry` hook that ends the call when retrying can't help: a connection refused
    or a name that doesn't resolve fails the same way ten more times (43 s of backoff for
    nothing). Throttling, 5xx and dropped connections keep every retry. Raising here is how a
    hook vetoes a retry; the caller gets the original error."""
    if isinstance(caught_exception, EndpointConnectionError) or (
        isinstance(caught_exception, ConnectTimeoutError) and attempts >= CONNECT_TIMEOUT_ATTEMPTS
    ):
        raise caught_exception


def fail_fast_when_unreachable(client: Any) -> Any:
    """The client, its unreachable-endpoint errors no longer retried (see `_unreachable`)."""
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register_first(
        f"needs-retry.{service}", _unreachable, unique_id=f"fail-fast-{service}"
    )
    return client


def _expect_bucket_owner(account: str) -> Any:
    """A botocore hook adding ExpectedBucketOwner to every S3 call that takes it."""

    def add(params: dict[str, Any], model: Any, **_: Any) -> None:
        if "ExpectedBucketOwner" in model.input_shape.members:
            params.setdefault("ExpectedBucketOwner", account)

    return add


@dataclass
class _SharedSession:
    """A session built on first use; boto3 sessions aren't thread-safe, so clients are made
    under the lock (the clients themselves are)."""

    session: boto3.Session | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class _PlainJsonParser(JSONParser):  # type: ignore[misc]
    """An ECR response as ECR sends it. ECR's JSON names are the SDK's names, so the result is
    the same but for timestamps, which stay epoch seconds (`core.model.parse_timestamp` reads them).
    botocore's walk of every member of every ImageDetail was the largest CPU cost of a sweep."""

    def _handle_json_body(self, raw_body: Any, shape: Any) -> Any:
        return self._parse_body_as_json(raw_body)


class _PlainJsonParsers(ResponseParserFactory):  # type: ignore[misc]
    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "json":
            return _PlainJsonParser(**self._defaults)
        return super().create_parser(protocol_name)


class PlainJsonSerializer(JSONSerializer):  # type: ignore[misc]
    """botocore's JSON serializer, but a list of structures whose members are all strings (an
    ECR call's image ids) is copied as it is: walking each id's members through the model cost
    about 270 µs of a 100-id BatchDeleteImage, and a sweep of 100,000 images makes 1,000 of
    them. The body is the same; anything else goes through botocore's own walk."""

    def __init__(self) -> None:
        super().__init__()
        self._string_members: dict[str, frozenset[str] | None] = {}

    def _serialize_type_list(self, serialized: Any, value: Any, shape: Any, key: Any) -> None:
        member = shape.member
        if member.name not in self._string_members:
            self._string_members[member.name] = _string_members(member)
        names = self._string_members[member.name]
        if names is not None and all(type(item) is dict and item.keys() <= names for item in value):
            serialized[key] = [dict(item) for item in value]
            return
        super()._serialize_type_list(serialized, value, shape, key)


def _string_members(shape: Any) -> frozenset[str] | None:
    """The member names of a structure whose members are all strings under their own names."""
    if shape.type_name != "structure" or shape.is_document_type:
        return None
    members = shape.members
    if all(m.type_name == "string" and "name" not in m.serialization for m in members.values()):
        return frozenset(members)
    return None
