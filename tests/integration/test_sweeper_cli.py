"""The installed `ecr-sweeper` console script against the local ECR, as a user runs it."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

from helpers.sweep import build_registry, default_keeps, push, remaining

from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "ecr-sweeper"


def run_cli(
    *args: str, cwd: Path = ROOT, stdin: str | None = None, credentials: bool = True
) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "POWERTOOLS_"))
    }
    environment.update(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    if credentials:
        environment.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    else:
        environment.update(AWS_EC2_METADATA_DISABLED="true")  # no instance-role lookups
    return subprocess.run(
        [str(CLI), *args],
        cwd=cwd,
        env=environment,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def target(local_ecr: LocalEcr) -> list[str]:
    return ["--endpoint-url", local_ecr.endpoint_url, "--region", local_ecr.region]


def test_sweep_yes_json_leaves_exactly_what_the_defaults_keep(local_ecr: LocalEcr) -> None:
    registry = build_registry(local_ecr, seed=42)
    result = run_cli("sweep", *target(local_ecr), "--output", "json", "--yes")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    deleted = 0
    for repository, images in registry.items():
        keep = default_keeps(images)
        assert set(remaining(local_ecr, repository)) == keep
        deleted += len(images) - len(keep)
    assert summary["imagesDeleted"] == deleted and summary["dryRun"] is False
    decisions = [d for r in summary["perRepository"] for d in r["decisions"]]
    assert all(d["reason"] for d in decisions)


def test_plan_deletes_nothing_and_shows_every_decision(local_ecr: LocalEcr) -> None:
    make = ManifestFactory(random.Random(9))
    for number in range(12):
        push(local_ecr, "web", make.image(compact=True), f"v{number}", 30 - number)
    before = remaining(local_ecr, "web")
    result = run_cli("plan", *target(local_ecr), "--details")
    assert result.returncode == 0, result.stderr
    assert remaining(local_ecr, "web") == before
    assert "DRY RUN" in result.stdout and "would delete 2 images" in result.stdout
    assert result.stdout.count("delete ") >= 2 and "among the newest 10" in result.stdout


def test_settings_overrides_and_failures_set_the_exit_code(local_ecr: LocalEcr) -> None:
    make = ManifestFactory(random.Random(4))
    push(local_ecr, "web", make.image(compact=True), None, 5)
    # A 400 that botocore does not retry: the CLI's backoff would really sleep.
    local_ecr.faults.throttle("BatchDeleteImage", code="AccessDeniedException")
    unguarded = ("-c", "guardMaxDeletionFraction=1")  # the one image is all the registry holds
    failed = run_cli("sweep", *target(local_ecr), "--yes", "--output", "json", *unguarded)
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["failures"] == 1
    local_ecr.faults.clear()
    kept = run_cli("sweep", *target(local_ecr), "--yes", "-c", "untaggedGraceDays=7")
    assert kept.returncode == 0 and len(remaining(local_ecr, "web")) == 1


def test_bad_input_exits_2_with_one_clear_line(local_ecr: LocalEcr, tmp_path: Path) -> None:
    typo = run_cli("plan", *target(local_ecr), "-c", "keepTagedImages=3")
    assert typo.returncode == 2
    assert "keepTagedImages: unknown setting (did you mean 'keepTaggedImages'?)" in typo.stderr
    assert "Traceback" not in typo.stderr
    no_config = run_cli("plan", *target(local_ecr), cwd=tmp_path)
    assert no_config.returncode == 2 and "cdk.json: not found" in no_config.stderr
    unconfirmed = run_cli("sweep", *target(local_ecr))
    assert unconfirmed.returncode == 2 and "refusing to delete without --yes" in unconfirmed.stderr
    assert run_cli("plan", "--output", "xml").returncode == 2
    no_credentials = run_cli("plan", *target(local_ecr), credentials=False)
    assert no_credentials.returncode == 2
    assert "no AWS credentials found" in no_credentials.stderr
    assert "Traceback" not in no_credentials.stderr


def test_evaluate_reads_aws_cli_output_offline(tmp_path: Path) -> None:
    policy = {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": 1,
                },
                "action": {"type": "expire"},
            }
        ]
    }
    images = {
        "imageDetails": [
            {
                "imageDigest": "sha256:" + "a" * 64,
                "imageTags": ["new"],
                "imagePushedAt": 1780000000,
            },
            {"imageDigest": "sha256:" + "b" * 64, "imagePushedAt": "2026-01-01T00:00:00Z"},
        ]
    }
    (tmp_path / "policy.json").write_text(json.dumps(policy))
    result = run_cli(
        "evaluate",
        "--policy",
        str(tmp_path / "policy.json"),
        "--images",
        "-",
        stdin=json.dumps(images),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["expired"] == ["sha256:" + "b" * 64]


def run_on_terminal(local_ecr: LocalEcr, answer: str, *command: str) -> str:
    """`ecr-sweeper sweep` (or `command`) on a pseudo-terminal, answering its confirmation
    prompt."""
    import pty
    import select

    primary, secondary = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    process = subprocess.Popen(
        [str(CLI), *(command or ("sweep",)), *target(local_ecr)],
        cwd=ROOT,
        env=environment,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    output = b""
    answered = False
    while True:
        ready, _, _ = select.select([primary], [], [], 60)
        if not ready:
            process.kill()
            raise AssertionError(f"no prompt: {output.decode(errors='replace')}")
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
        if not answered and b"Type 'yes' to continue" in output:
            os.write(primary, answer.encode() + b"\n")
            answered = True
    process.wait(timeout=60)
    os.close(primary)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", output.decode(errors="replace"))
    return " ".join(plain.split())


def test_on_a_terminal_sweep_asks_first_and_deletes_only_on_yes(local_ecr: LocalEcr) -> None:
    make = ManifestFactory(random.Random(12))
    leftover = push(local_ecr, "web", make.image(compact=True), None, 5)
    refused = run_on_terminal(local_ecr, "no")
    assert "Delete 1 image?" in refused and "Nothing deleted." in refused
    assert leftover in remaining(local_ecr, "web")
    confirmed = run_on_terminal(local_ecr, "yes")
    assert "deleted 1 image (" in confirmed
    assert remaining(local_ecr, "web") == {}


def test_concurrency_and_time_budget_flags(local_ecr: LocalEcr) -> None:
    make = ManifestFactory(random.Random(5))
    for repository in ("api", "web"):
        push(local_ecr, repository, make.image(compact=True), None, 5)
    for bad, message in (
        (("--concurrency", "0"), "'0' is not a whole number from 1 to 64"),
        (("--concurrency", "many"), "'many' is not a whole number from 1 to 64"),
        (("--time-budget", "-5"), "'-5' is not a number of seconds above 0"),
        (("-c", "maxConcurrency=65"), 'maxConcurrency (-c): got "65"; expected a whole number'),
    ):
        refused = run_cli("plan", *target(local_ecr), *bad)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    late = run_cli(
        "sweep", *target(local_ecr), "--yes", "--output", "json", "--time-budget", "0.000001"
    )
    assert late.returncode == 0, late.stderr
    summary = json.loads(late.stdout)
    assert summary["repositoriesUnfinished"] == ["api", "web"] and summary["imagesDeleted"] == 0
    table = run_cli("sweep", *target(local_ecr), "--yes", "--time-budget", "0.000001")
    assert "unfinished (time budget ran out): api, web" in table.stdout
    done = run_cli(
        "sweep", *target(local_ecr), "--yes", "--concurrency", "2", "--output", "json",
        "-c", "guardMaxDeletionFraction=1",
    )  # fmt: skip
    assert done.returncode == 0 and json.loads(done.stdout)["imagesDeleted"] == 2
