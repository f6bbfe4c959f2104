"""Builds the boto3 clients every AWS-facing module uses, from one place.

`endpoint_url` points every client at an ECR-compatible endpoint such as the local emulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3

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
