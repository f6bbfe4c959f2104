"""The synthesized function, run as Lambda runs it, on a runtime whose own SDK is too old.

A python3.12 venv holds only what the Lambda runtime and the Powertools layer provide: an older
runtime boto3 (1.40.0, whose botocore drops ECR's `subjectManifestDigest`) and Powertools with
its layer's extras. The synthesized code asset and SDK layer go on sys.path in Lambda's order
(/var/task, then /opt/python, then the runtime's site-packages), and the handler sweeps the local
ECR seeded with signed images. Referrers of kept images must survive.

The venv is built once and cached under build/ (gitignored), keyed by the pinned versions.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.shared.version import VERSION as POWERTOOLS_VERSION
from helpers.infra import Synthesized

from ecr_sweeper.aws.ssm import STATE_PARAMETER_VARIABLE
from ecr_sweeper.core import log_events as ev
from infra.config import PROJECT_ROOT
from infra.function import sdk_pins
from local_ecr import LocalEcr, SeedResult
from local_ecr.manifests import ManifestFactory

LAMBDA_PYTHON = "3.12"
RUNTIME_BOTO3 = "1.40.0"
"""An older runtime SDK: botocore 1.40.0 predates ECR's OCI referrer fields (1.41.0)."""

RUNTIME_PACKAGES = (
    f"boto3=={RUNTIME_BOTO3}",
    f"botocore=={RUNTIME_BOTO3}",
    f"aws-lambda-powertools[tracer,parser]=={POWERTOOLS_VERSION}",
)
"""What the function finds without our layer: the runtime's boto3 and the Powertools layer
(built from aws-lambda-powertools[all]: aws-xray-sdk and pydantic among its extras)."""

VENV = (
    PROJECT_ROOT
    / "build"
    / "lambda-runtime"
    / f"python{LAMBDA_PYTHON}-boto3-{RUNTIME_BOTO3}-powertools-{POWERTOOLS_VERSION}"
)
MARKER = "RUNTIME-RESULT "

RUNNER = f"""
import importlib, json, os, sys
import boto3, botocore

ecr = boto3.client("ecr")
seen = 0
for repository in json.loads(os.environ["REPOSITORIES"]):
    for page in ecr.get_paginator("describe_images").paginate(repositoryName=repository):
        seen += sum(1 for d in page["imageDetails"] if d.get("subjectManifestDigest"))

class Context:
    function_name = "ecr-sweeper"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ecr-sweeper"
    aws_request_id = "runtime-test"
    def get_remaining_time_in_millis(self):
        return 900_000

module, _, name = os.environ["HANDLER"].rpartition(".")
summary = getattr(importlib.import_module(module), name)(json.loads(os.environ["EVENT"]), Context())
print({MARKER!r} + json.dumps({{
    "botocore": botocore.__version__,
    "botocoreFile": botocore.__file__,
    "referrersSeen": seen,
    "summary": summary,
}}))
"""


def _python312() -> tuple[str, dict[str, str]]:
    """A python3.12 interpreter and the environment that selects it (pyenv's shims need it)."""
    environment = dict(os.environ)
    pyenv = shutil.which("pyenv")
    if pyenv and not environment.get("PYENV_VERSION", "").startswith(LAMBDA_PYTHON):
        installed = subprocess.run(
            [pyenv, "versions", "--bare"], capture_output=True, text=True, check=False
        ).stdout.split()
        matching = sorted(v for v in installed if re.fullmatch(rf"{LAMBDA_PYTHON}\.\d+", v))
        if matching:
            environment["PYENV_VERSION"] = matching[-1]
    interpreter = shutil.which(f"python{LAMBDA_PYTHON}")
    if interpreter is None:
        pytest.fail(
            f"python{LAMBDA_PYTHON} (the Lambda runtime's Python) is needed for this test: "
            f"install it, e.g. `pyenv install {LAMBDA_PYTHON}`"
        )
    return interpreter, environment


@pytest.fixture(scope="session")
def runtime_python() -> Path:
    """The venv's python; created (about a minute, once) when the pinned versions change."""
    python = VENV / "bin" / "python"
    ready = VENV / ".ready"
    wanted = "\n".join(RUNTIME_PACKAGES)
    if not ready.exists() or ready.read_text() != wanted:
        shutil.rmtree(VENV, ignore_errors=True)
        interpreter, environment = _python312()
        subprocess.run(
            [interpreter, "-m", "venv", str(VENV)], check=True, env=environment, timeout=300
        )
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *RUNTIME_PACKAGES],
            check=True,
            timeout=600,
        )
        ready.write_text(wanted)
    version = subprocess.run(
        [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert version == LAMBDA_PYTHON
    return python


def _asset_dir(app: Synthesized, code: dict[str, Any]) -> Path:
    """Where the synthesized assembly staged an asset (S3Key is '<hash>.zip')."""
    key = code["S3Key"]
    assert isinstance(key, str) and key.endswith(".zip"), key
    folder = app.outdir / f"asset.{key.removesuffix('.zip')}"
    assert folder.is_dir(), folder
    return folder


def _lambda_paths(app: Synthesized, *, with_sdk_layer: bool) -> tuple[list[Path], dict[str, Any]]:
    """sys.path as Lambda builds it for the synthesized function: code, then its layers."""
    _, function = app.only("AWS::Lambda::Function")
    properties = function["Properties"]
    paths = [_asset_dir(app, properties["Code"])]
    layers = app.resources("AWS::Lambda::LayerVersion")
    for reference in properties["Layers"]:
        if isinstance(reference, dict) and "Ref" in reference:
            layer = layers[reference["Ref"]]["Properties"]
            assert layer["CompatibleRuntimes"] == [f"python{LAMBDA_PYTHON}"]
            if with_sdk_layer:
                paths.append(_asset_dir(app, layer["Content"]) / "python")
        # The public Powertools layer is the venv's Powertools, after both (as in /opt/python).
    return paths, properties


def _seed(local_ecr: LocalEcr) -> tuple[SeedResult, set[str]]:
    """The 'signed' registry plus two old untagged plain images per repository (to delete)."""
    seeded = local_ecr.seed("signed")
    now = local_ecr.clock.now()
    make = ManifestFactory(random.Random(7))
    expendable = set()
    for repository in seeded.repositories:
        for days in (30, 40):
            built = make.image(compact=True)
            expendable.add(
                local_ecr.push_image(
                    repository,
                    built.body,
                    None,
                    pushed_at=now - timedelta(days=days),
                    media_type=built.media_type,
                )
            )
    return seeded, expendable


def _run(
    python: Path, app: Synthesized, local_ecr: LocalEcr, repositories: tuple[str, ...], *, sdk: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    paths, properties = _lambda_paths(app, with_sdk_layer=sdk)
    variables = dict(properties["Environment"]["Variables"])
    (cursor_id,) = app.resources("AWS::SSM::Parameter")
    assert variables[STATE_PARAMETER_VARIABLE] == {"Ref": cursor_id}
    variables[STATE_PARAMETER_VARIABLE] = "/ecr-sweeper/runtime-test-cursor"
    local_ecr.client("ssm").put_parameter(
        Name=variables[STATE_PARAMETER_VARIABLE], Value="{}", Type="String", Overwrite=True
    )
    assert all(isinstance(value, str) for value in variables.values()), variables
    _, schedule = app.only("AWS::Scheduler::Schedule")
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **variables,
        "PYTHONPATH": os.pathsep.join(str(path) for path in paths),
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "HANDLER": properties["Handler"],
        "EVENT": schedule["Properties"]["Target"]["Input"],
        "REPOSITORIES": json.dumps(list(repositories)),
        "AWS_ENDPOINT_URL": local_ecr.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": local_ecr.region,
        "AWS_DEFAULT_REGION": local_ecr.region,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    done = subprocess.run(
        [str(python), "-c", RUNNER],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    (result,) = [json.loads(line[len(MARKER) :]) for line in lines if line.startswith(MARKER)]
    logs = [json.loads(line) for line in lines if line.startswith("{") and "_aws" not in line]
    return result, logs


def _left(local_ecr: LocalEcr, repositories: tuple[str, ...]) -> set[str]:
    client = local_ecr.client("ecr")
    return {
        detail["imageDigest"]
        for repository in repositories
        for page in client.get_paginator("describe_images").paginate(repositoryName=repository)
        for detail in page["imageDetails"]
    }


def test_with_its_sdk_layer_the_function_keeps_referrers_of_kept_images(
    runtime_python: Path, default_app: Synthesized, local_ecr: LocalEcr
) -> None:
    seeded, expendable = _seed(local_ecr)
    referrers = {image.digest for image in seeded.of_kind("referrer", "signature")}
    assert len(seeded.of_kind("referrer")) >= 4

    result, logs = _run(runtime_python, default_app, local_ecr, seeded.repositories, sdk=True)

    layer = _lambda_paths(default_app, with_sdk_layer=True)[0][1]
    assert result["botocore"] == "1.44.8"
    assert Path(result["botocoreFile"]).is_relative_to(layer), "the SDK layer must win"
    assert result["referrersSeen"] == len(seeded.of_kind("referrer"))
    summary = result["summary"]
    assert summary["dryRun"] is False and summary["failures"] == 0
    assert summary["repositoriesUncertain"] == 0
    left = _left(local_ecr, seeded.repositories)
    assert not expendable & left, "the live run deletes what the policy expires"
    assert summary["imagesDeleted"] == len(expendable)
    assert referrers <= left, "signatures and SBOMs of kept images survive"
    assert not [r for r in logs if r.get(ev.EVENT) == ev.SDK_UNSUPPORTED]


def test_with_only_the_runtime_sdk_the_function_deletes_nothing_and_says_why(
    runtime_python: Path, default_app: Synthesized, local_ecr: LocalEcr
) -> None:
    seeded, _ = _seed(local_ecr)
    before = _left(local_ecr, seeded.repositories)

    result, logs = _run(runtime_python, default_app, local_ecr, seeded.repositories, sdk=False)

    assert result["botocore"] == RUNTIME_BOTO3
    assert result["referrersSeen"] == 0, "this SDK drops subjectManifestDigest: the real hazard"
    summary = result["summary"]
    assert _left(local_ecr, seeded.repositories) == before, "nothing deleted"
    assert summary["dryRun"] is False and summary["imagesDeleted"] == 0
    repositories = [r for r in logs if r.get(ev.EVENT) == ev.REPOSITORY_SUMMARY]
    assert summary["repositoriesUncertain"] == len(seeded.repositories), repositories
    assert summary["failures"] >= len(seeded.repositories)
    assert len(repositories) == len(seeded.repositories)
    for repository in repositories:
        assert "subjectManifestDigest" in repository["uncertain"]
        assert f"botocore {RUNTIME_BOTO3}" in repository["uncertain"]
    (error,) = [r for r in logs if r.get(ev.EVENT) == ev.SDK_UNSUPPORTED]
    assert error["level"] == "ERROR" and "subjectManifestDigest" in error[ev.REASON]


def test_the_layer_holds_exactly_the_sdk_the_tests_use(default_app: Synthesized) -> None:
    from importlib.metadata import version

    layer = _lambda_paths(default_app, with_sdk_layer=True)[0][1]
    pins = sdk_pins()
    assert {"boto3", "botocore", "urllib3"} <= set(pins)
    shipped = {
        re.sub(r"[-_.]+", "-", match.group(1)).lower(): match.group(2)
        for info in layer.glob("*.dist-info")
        if (match := re.fullmatch(r"(.+)-([^-]+)\.dist-info", info.name))
    }
    assert shipped == {re.sub(r"[-_.]+", "-", name).lower(): v for name, v in pins.items()}
    for name, pinned in pins.items():
        assert version(name) == pinned, f"the tests run {name} {version(name)}, the layer {pinned}"
