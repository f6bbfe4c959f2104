"""Connections stay open between calls, as ECR's endpoints keep them, and close when they must."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from local_ecr import LocalEcr

HEADERS = {
    "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories",
    "Content-Type": "application/x-amz-json-1.1",
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261130/us-east-1/ecr/aws4_request, "
    "SignedHeaders=host, Signature=0",
}


def _connection(local_ecr: LocalEcr) -> http.client.HTTPConnection:
    endpoint = urlsplit(local_ecr.endpoint_url)
    return http.client.HTTPConnection(endpoint.hostname or "", endpoint.port, timeout=10)


def test_calls_share_one_connection(local_ecr: LocalEcr) -> None:
    connection = _connection(local_ecr)
    try:
        sockets = []
        for _ in range(3):
            connection.request("POST", "/", body=b"{}", headers=HEADERS)
            response = connection.getresponse()
            assert response.status == 200
            assert response.getheader("Connection") is None
            assert json.loads(response.read()) == {"repositories": []}
            sockets.append(connection.sock)
        assert sockets[0] is not None and sockets == [sockets[0]] * 3
    finally:
        connection.close()


def test_a_request_that_asks_to_close_is_answered_then_closed(local_ecr: LocalEcr) -> None:
    connection = _connection(local_ecr)
    try:
        connection.request("POST", "/", body=b"{}", headers={**HEADERS, "Connection": "close"})
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Connection") == "close"
        assert json.loads(response.read()) == {"repositories": []}
        assert response.will_close
    finally:
        connection.close()


def test_a_dropped_call_closes_its_connection_and_the_next_call_opens_one(
    local_ecr: LocalEcr, ecr: Any
) -> None:
    ecr.describe_repositories()
    local_ecr.faults.drop_connection("DescribeRepositories", times=1)
    connection = _connection(local_ecr)
    try:
        connection.request("POST", "/", body=b"{}", headers=HEADERS)
        with pytest.raises(ConnectionError):  # RemoteDisconnected: no response, then closed
            connection.getresponse()
    finally:
        connection.close()
    assert ecr.describe_repositories()["repositories"] == []
