"""The one module that talks to STS: assuming the sweeper's role in another account
(settings: accounts, crossAccountRoleName), and signing the token EKS clusters accept."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

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


EKS_TOKEN_PREFIX = "k8s-aws-v1."
EKS_TOKEN_SECONDS = 60
CLUSTER_HEADER = "x-k8s-aws-id"


def eks_token(client: Any, cluster: str) -> str:
    """The bearer token `aws eks get-token` makes: a presigned GetCallerIdentity URL that signs
    the `x-k8s-aws-id` header, base64url without padding. Signed here, offline: STS itself is
    called by the cluster's authenticator, never by us."""

    def add_cluster_header(request: Any, **_: Any) -> None:
        request.headers[CLUSTER_HEADER] = cluster

    events = client.meta.events
    events.register("before-sign.sts.GetCallerIdentity", add_cluster_header)
    try:
        url = client.generate_presigned_url(
            "get_caller_identity", Params={}, ExpiresIn=EKS_TOKEN_SECONDS, HttpMethod="GET"
        )
    finally:
        events.unregister("before-sign.sts.GetCallerIdentity", add_cluster_header)
    encoded = base64.urlsafe_b64encode(str(url).encode()).decode().rstrip("=")
    return EKS_TOKEN_PREFIX + encoded


def caller_role_arn(client: Any) -> str | None:
    """The IAM role these credentials act as (an assumed role's session taken off), for the
    access-entry commands a refused cluster read prints; None if STS can't say."""
    try:
        arn = str(client.get_caller_identity()["Arn"])
    except (ClientError, BotoCoreError):
        return None
    partition, account, resource = arn.split(":")[1], arn.split(":")[4], arn.split(":", 5)[5]
    if resource.startswith("assumed-role/"):
        return f"arn:{partition}:iam::{account}:role/{resource.split('/')[1]}"
    return arn
