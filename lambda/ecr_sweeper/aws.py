"""Builds the boto3 clients every AWS-facing module uses, from one place.

`endpoint_url` points every client at an ECR-compatible endpoint such as the local emulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.parsers import JSONParser, ResponseParserFactory

from ecr_sweeper.ecr import RETRY_CONFIG


@dataclass(frozen=True)
class AwsTarget:
    """Where the sweeper's clients go: a region, an optional profile and endpoint."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None

    def has_credentials(self) -> bool:
        """Whether boto3 finds credentials (environment, profile, instance role, ...)."""
        session = boto3.Session(profile_name=self.profile, region_name=self.region)
        return session.get_credentials() is not None

    def client(self, service: str) -> Any:
        session = boto3.Session(profile_name=self.profile, region_name=self.region)
        return session.client(service, endpoint_url=self.endpoint_url, config=RETRY_CONFIG)

    def registry_client(self) -> Any:
        """The ECR client the sweep runs on, tuned for listing 100,000 images.

        Responses are taken as the JSON ECR sends (`_PlainJsonParsers`), and parameters are
        built by `ecr.EcrRegistry` itself, so botocore's client-side validation is skipped; ECR
        still validates every request.
        """
        core = botocore.session.get_session()
        core.register_component("response_parser_factory", _PlainJsonParsers())
        session = boto3.Session(
            profile_name=self.profile, region_name=self.region, botocore_session=core
        )
        config = RETRY_CONFIG.merge(Config(parameter_validation=False))
        return session.client("ecr", endpoint_url=self.endpoint_url, config=config)


class _PlainJsonParser(JSONParser):  # type: ignore[misc]
    """An ECR response as ECR sends it. ECR's JSON names are the SDK's names, so the result is
    the same but for timestamps, which stay epoch seconds (`model.parse_timestamp` reads them).
    botocore's walk of every member of every ImageDetail was the largest CPU cost of a sweep."""

    def _handle_json_body(self, raw_body: Any, shape: Any) -> Any:
        return self._parse_body_as_json(raw_body)


class _PlainJsonParsers(ResponseParserFactory):  # type: ignore[misc]
    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "json":
            return _PlainJsonParser(**self._defaults)
        return super().create_parser(protocol_name)
