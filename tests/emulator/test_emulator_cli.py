"""`ecr-sweeper emulator` as a server process: plain boto3 sees every behaviour; control API."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_ecr import LocalEcr
from local_ecr.cli import add_arguments, configure

ENV = {
    **os.environ,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ecr_sweeper_cli.emulator_cmd", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = start("--port", "0", "--scenario", "demo", "--scenario", "large:2x150")
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    try:
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def control(url: str, method: str, route: str, payload: dict[str, Any] | None = None) -> Any:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(f"{url}/_local_ecr/{route}", data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def plain_client(url: str, service: str = "ecr") -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def test_serves_seeded_registry_with_real_ecr_behaviour(
    server: tuple[subprocess.Popen[str], str],
) -> None:
    _, url = server
    assert url.startswith("http://127.0.0.1:")
    ecr = plain_client(url)
    names = {r["repositoryName"] for r in ecr.describe_repositories()["repositories"]}
    assert {"web", "api", "worker", "batch", "large-0001", "large-0002"} <= names
    page = ecr.describe_images(repositoryName="large-0001")
    assert len(page["imageDetails"]) == 100 and "nextToken" in page
    with pytest.raises(ClientError) as error:
        ecr.describe_images(repositoryName="large-0001", maxResults=1001)
    assert error.value.response["Error"]["Code"] == "InvalidParameterException"
    ids = [{"imageDigest": d["imageDigest"]} for d in page["imageDetails"]]
    extra = ecr.describe_images(repositoryName="large-0001", nextToken=page["nextToken"])
    with pytest.raises(ClientError) as error:
        ecr.batch_delete_image(
            repositoryName="large-0001",
            imageIds=[*ids, {"imageDigest": extra["imageDetails"][0]["imageDigest"]}],
        )
    assert error.value.response["Error"]["Code"] == "InvalidParameterException"
    assert plain_client(url, "sts").get_caller_identity()["Account"] == "123456789012"


def test_control_api_faults_clock_and_counters(server: tuple[subprocess.Popen[str], str]) -> None:
    _, url = server
    ecr = plain_client(url)
    control(url, "DELETE", "calls")
    control(url, "POST", "faults", {"kind": "throttle", "operation": "ListImages", "times": 1})
    with pytest.raises(ClientError) as error:
        ecr.list_images(repositoryName="web")
    assert error.value.response["Error"]["Code"] == "ThrottlingException"
    assert ecr.list_images(repositoryName="web")["imageIds"]
    assert control(url, "GET", "calls")["calls"]["ecr"]["ListImages"] == 2
    clock = control(url, "POST", "clock", {"now": "2025-01-02T03:04:05Z"})
    assert clock == {"now": "2025-01-02T03:04:05+00:00", "frozen": True}
    ecr.create_repository(repositoryName="clocked")
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + "1" * 64,
                "size": 1,
            },
            "layers": [],
        }
    )
    digest = ecr.put_image(repositoryName="clocked", imageManifest=body)["image"]["imageId"][
        "imageDigest"
    ]
    pushed = ecr.describe_images(repositoryName="clocked")["imageDetails"][0]["imagePushedAt"]
    assert pushed.isoformat().startswith("2025-01-02T03:04:05")
    control(
        url,
        "POST",
        "pushed-at",
        {"repositoryName": "clocked", "imageDigest": digest, "pushedAt": 0},
    )
    pushed = ecr.describe_images(repositoryName="clocked")["imageDetails"][0]["imagePushedAt"]
    assert pushed.timestamp() == 0
    with pytest.raises(urllib.error.HTTPError) as http_error:
        control(url, "POST", "faults", {"kind": "explode"})
    assert http_error.value.code == 400


def test_binds_loopback_only(local_ecr: LocalEcr) -> None:
    assert local_ecr.endpoint_url.startswith("http://127.0.0.1:")
    assert local_ecr._server is not None
    assert local_ecr._server.server_address[0] == "127.0.0.1"


def test_sigterm_stops_with_exit_0(server: tuple[subprocess.Popen[str], str]) -> None:
    process, _ = server
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "nope"], "accepted: demo"),
        (["--scenario", "large:abc"], "expected RxI"),
        (["--throttle-rate", "2"], "from 0 to 1"),
        (["--port", "http"], "port"),
    ],
)
def test_bad_input_exits_2_naming_what_is_accepted(args: list[str], message: str) -> None:
    process = start("--port", "0", *args)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert message in stderr
    assert "Traceback" not in stderr


def test_python_m_local_ecr_serves_too() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "local_ecr", "--port", "0", "--latency-ms", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert plain_client(url).describe_repositories()["repositories"] == []
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_restore_delay_is_a_command_line_option() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    ecr = LocalEcr()  # not started: configure only sets state
    configure(ecr, parser.parse_args([]))
    assert ecr.activation_delay == timedelta(minutes=20)
    configure(ecr, parser.parse_args(["--activation-delay-seconds", "0"]))
    assert ecr.activation_delay == timedelta(0)
    with pytest.raises(SystemExit):
        parser.parse_args(["--activation-delay-seconds", "-1"])
