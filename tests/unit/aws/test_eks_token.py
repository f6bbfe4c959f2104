"""The EKS token is `aws eks get-token`'s, signed offline; cluster descriptions and pod images
are read as EKS and Kubernetes write them."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.stub import Stubber

from ecr_sweeper.aws import sts
from ecr_sweeper.aws.eks import ClusterUnreadable, EksClusters, _item_images, access_commands

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def sts_client() -> Any:
    return boto3.client(
        "sts",
        region_name="eu-west-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )


def test_the_token_is_a_presigned_caller_identity_url_signing_the_cluster_header() -> None:
    client = sts_client()
    with Stubber(client) as stubber:  # any call to STS would fail the stubber
        token = sts.eks_token(client, "prod")
        stubber.assert_no_pending_responses()
    assert token.startswith("k8s-aws-v1.") and "=" not in token
    encoded = token.removeprefix("k8s-aws-v1.")
    url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    split = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(split.query).items()}
    assert split.scheme == "https" and split.hostname == "sts.eu-west-1.amazonaws.com"
    assert query["Action"] == "GetCallerIdentity" and query["Version"] == "2011-06-15"
    assert query["X-Amz-Expires"] == "60"
    assert query["X-Amz-SignedHeaders"].split(";") == ["host", "x-k8s-aws-id"]
    assert query["X-Amz-Credential"].startswith("AKIDEXAMPLE/")
    # The header is signed for this call only: the next token signs its own cluster's name.
    other = sts.eks_token(client, "dev")
    assert other != token


def test_an_assumed_role_is_named_as_its_role_for_the_access_entry() -> None:
    client = sts_client()
    with Stubber(client) as stubber:
        stubber.add_response(
            "get_caller_identity",
            {
                "Arn": "arn:aws:sts::123456789012:assumed-role/EcrSweeper-SweeperRole-X/fn-1",
                "Account": "123456789012",
                "UserId": "AROA:fn-1",
            },
        )
        stubber.add_client_error("get_caller_identity", "AccessDenied")
        assert (
            sts.caller_role_arn(client) == "arn:aws:iam::123456789012:role/EcrSweeper-SweeperRole-X"
        )
        assert sts.caller_role_arn(client) is None
    assert "--principal-arn ROLE_ARN" in access_commands("prod", "us-east-1", None)


def eks_client(cluster: dict[str, Any]) -> tuple[Any, Stubber]:
    client = boto3.client(
        "eks", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    stubber = Stubber(client)
    stubber.add_response("describe_cluster", {"cluster": cluster}, {"name": "prod"})
    return client, stubber


def test_a_cluster_still_creating_has_nothing_to_read_and_a_bad_ca_fails_closed() -> None:
    client, stubber = eks_client({"name": "prod", "status": "CREATING"})
    with stubber:
        assert EksClusters(client, ("*",)).describe("prod") is None
    client, stubber = eks_client(
        {
            "name": "prod",
            "status": "ACTIVE",
            "endpoint": "https://example.eks.amazonaws.com",
            "certificateAuthority": {"data": "not base64!"},
        }
    )
    with stubber, pytest.raises(ClusterUnreadable, match="not base64 PEM"):
        EksClusters(client, ("*",)).describe("prod")
    client, stubber = eks_client({"name": "prod", "status": "FAILED"})
    with stubber, pytest.raises(ClusterUnreadable, match=r"status FAILED\) has no API endpoint"):
        EksClusters(client, ("*",)).describe("prod")


def test_pod_images_come_from_every_container_kind_and_the_digest_each_one_runs() -> None:
    item = {
        "metadata": {"namespace": "shop", "name": "web-1"},
        "spec": {
            "containers": [{"name": "web", "image": f"{HOST}/web:v2"}],
            "initContainers": [{"name": "migrate", "image": f"{HOST}/web:v2"}],
            "ephemeralContainers": [{"name": "debug", "image": "busybox"}],
        },
        "status": {
            "containerStatuses": [
                {
                    "name": "web",
                    "image": f"{HOST}/web:v2",
                    "imageID": f"{HOST}/web@sha256:{'a' * 64}",
                }
            ],
            "initContainerStatuses": [
                {"name": "migrate", "imageID": f"docker-pullable://{HOST}/web@sha256:{'b' * 64}"}
            ],
            "ephemeralContainerStatuses": [{"name": "debug", "imageID": "sha256:" + "c" * 64}],
        },
    }
    found = set(_item_images("prod", "pod", item))
    assert found == {
        (f"{HOST}/web:v2", "EKS prod: pod shop/web-1"),
        (f"{HOST}/web@sha256:{'a' * 64}", "EKS prod: pod shop/web-1"),
        (f"{HOST}/web:v2", "EKS prod: pod shop/web-1 (init container migrate)"),
        (f"{HOST}/web@sha256:{'b' * 64}", "EKS prod: pod shop/web-1 (init container migrate)"),
        ("busybox", "EKS prod: pod shop/web-1 (ephemeral container debug)"),
    }, "a bare sha256 image id is a local id, not a reference"
