"""The one module that talks to STS: assuming the sweeper's role in another account
(settings: accounts, crossAccountRoleName)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ASSUME_ROLE_ACTIONS: tuple[str, ...] = ("sts:AssumeRole",)


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str


def role_arn(partition: str, account: str, role_name: str) -> str:
    return f"arn:{partition}:iam::{account}:role/{role_name}"


def assume_role(client: Any, arn: str, session_name: str) -> Credentials:
    """Temporary credentials of `arn` (one hour, enough for a run of at most 15 minutes)."""
    found = client.assume_role(RoleArn=arn, RoleSessionName=session_name[:64])["Credentials"]
    return Credentials(found["AccessKeyId"], found["SecretAccessKey"], found["SessionToken"])
