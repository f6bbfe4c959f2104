"""Several regions and accounts from one deployment: each target swept with its own clients, its
role assumed through STS (moto: the credentials land in the target account's backend), failures
isolated per target, and the target named in every result (engine, Lambda handler and CLI)."""

from __future__ import annotations

import json
import logging
import random
from typing import Any

import pytest
from helpers.lambda_context import LambdaContext
from helpers.sweep import ago
from moto.sts.models import sts_backends

from ecr_sweeper.aws.clients import AwsTarget
from ecr_sweeper.core.cursor import CURSOR_MAX_CHARS, targets_digest
from ecr_sweeper.core.results import FAILED, UNFINISHED
from ecr_sweeper.core.settings import Settings
from ecr_sweeper.sweep.budget import TimeBudget
from ecr_sweeper.sweep.targets import role_arns, sweep_targets
from ecr_sweeper_cli.main import main
from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory

MEMBER = "111111111111"
OTHER_MEMBER = "222222222222"
SETTINGS = {
    "keep_tagged_images": 2,
    "protect_lambda_images": False,
    "guard_max_deletion_fraction": 1.0,
}
"""These registries lose 60% of their images: the deletion guard's share check is off."""


def seed(
    local_ecr: LocalEcr,
    monkeypatch: pytest.MonkeyPatch,
    repository: str,
    *,
    region: str = "us-east-1",
    account: str | None = None,
) -> None:
    """Four tagged images and one old untagged one: a sweep deletes three."""
    make = ManifestFactory(random.Random(f"{account}/{region}/{repository}"))
    with monkeypatch.context() as patch:
        patch.setattr(local_ecr, "account_id", account or local_ecr.account_id)
        for number in range(4):
            built = make.image(compact=True)
            local_ecr.push_image(
                repository,
                built.body,
                f"v{number}",
                pushed_at=ago(40 - number),
                media_type=built.media_type,
                region=region,
            )
        built = make.image(compact=True)
        local_ecr.push_image(
            repository,
            built.body,
            None,
            pushed_at=ago(9),
            media_type=built.media_type,
            region=region,
        )


def left(
    local_ecr: LocalEcr, repository: str, *, region: str = "us-east-1", account: str = ""
) -> int:
    from local_ecr.store import backend

    repositories = backend(account or local_ecr.account_id, region).repositories
    return len(repositories[repository].images) if repository in repositories else -1


def target(local_ecr: LocalEcr) -> AwsTarget:
    return AwsTarget(region="us-east-1", endpoint_url=local_ecr.endpoint_url)


def test_every_region_is_swept_with_its_own_clients_and_named_in_its_results(
    local_ecr: LocalEcr, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(local_ecr, monkeypatch, "web", region="us-east-1")
    seed(local_ecr, monkeypatch, "api", region="eu-west-1")
    settings = Settings(regions=("us-east-1", "eu-west-1"), **SETTINGS)  # type: ignore[arg-type]
    summary = sweep_targets(target(local_ecr), settings, logging.getLogger("t"), dry_run=False)
    assert [(r.target, r.repository, r.images_deleted) for r in summary.results] == [
        ("self/us-east-1", "web", 3),
        ("self/eu-west-1", "api", 3),
    ]
    assert left(local_ecr, "web") == 2 and left(local_ecr, "api", region="eu-west-1") == 2
    assert summary.to_dict()["perRepository"][1]["target"] == "self/eu-west-1"
    assert summary.failures == 0


def test_a_member_account_is_swept_through_exactly_its_role(
    local_ecr: LocalEcr, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(local_ecr, monkeypatch, "web", account=MEMBER)
    seed(local_ecr, monkeypatch, "web")  # the sweeper's own account: not in `accounts`
    settings = Settings(accounts=(MEMBER,), **SETTINGS)  # type: ignore[arg-type]
    summary = sweep_targets(target(local_ecr), settings, logging.getLogger("t"), dry_run=False)
    assert [(r.target, r.repository, r.images_deleted) for r in summary.results] == [
        (f"{MEMBER}/us-east-1", "web", 3)
    ]
    assert left(local_ecr, "web", account=MEMBER) == 2
    assert left(local_ecr, "web") == 5, "the own account is not a target when accounts are set"
    assumed = {
        role.role_arn
        for backend in sts_backends.values()
        for region in backend.values()
        for role in region.assumed_roles
    }
    assert assumed == set(role_arns(settings)) == {f"arn:aws:iam::{MEMBER}:role/EcrSweeperMember"}


def test_a_target_whose_role_cant_be_assumed_fails_alone(
    local_ecr: LocalEcr, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(local_ecr, monkeypatch, "web", account=MEMBER)
    seed(local_ecr, monkeypatch, "web", account=OTHER_MEMBER)
    local_ecr.faults.throttle("AssumeRole", service="sts", on_calls=[1], code="AccessDenied")
    settings = Settings(accounts=(MEMBER, OTHER_MEMBER), **SETTINGS)  # type: ignore[arg-type]
    summary = sweep_targets(target(local_ecr), settings, logging.getLogger("t"), dry_run=False)
    failed, swept = summary.results
    assert (failed.target, failed.status, failed.error_code) == (
        f"{MEMBER}/us-east-1",
        FAILED,
        "AccessDenied",
    )
    assert (swept.target, swept.images_deleted) == (f"{OTHER_MEMBER}/us-east-1", 3)
    assert left(local_ecr, "web", account=MEMBER) == 5
    assert summary.failures == 1


def test_the_cli_plans_every_region_and_shows_the_target_in_every_row(
    local_ecr: LocalEcr, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(local_ecr, monkeypatch, "web", region="us-east-1")
    seed(local_ecr, monkeypatch, "api", region="eu-west-1")
    common = ["--endpoint-url", local_ecr.endpoint_url, "--region", "us-east-1"]
    regions = ["-c", 'regions=["us-east-1","eu-west-1"]', "-c", "keepTaggedImages=2"]
    regions += ["-c", "guardMaxDeletionFraction=1"]
    assert main(["plan", *common, *regions, "--output", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [
        (r["target"], r["repository"], r["imagesExpired"]) for r in document["perRepository"]
    ] == [
        ("self/us-east-1", "web", 3),
        ("self/eu-west-1", "api", 3),
    ]
    assert main(["plan", *common, *regions, "--details"]) == 0
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if "│ delete │" in line or "│ keep   │" in line]
    assert len(rows) == 10 and all("self/" in row for row in rows)
    assert main(["plan", *common, *regions]) == 0
    summary = capsys.readouterr().out
    assert "self/us-east-1 web" in summary and "self/eu-west-1 api" in summary
    assert main(["sweep", *common, *regions, "--yes", "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["imagesDeleted"] == 6
    assert left(local_ecr, "api", region="eu-west-1") == 2


def test_the_lambda_sweeps_every_region_and_its_metrics_add_them_up(
    local_ecr: LocalEcr, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib

    from test_handler import invoke, per_repository, records

    from ecr_sweeper.core import metrics_catalog
    from ecr_sweeper.core.settings import ENVIRONMENT_VARIABLE

    seed(local_ecr, monkeypatch, "web", region="us-east-1")
    seed(local_ecr, monkeypatch, "api", region="eu-west-1")
    settings = Settings(regions=("us-east-1", "eu-west-1"), **SETTINGS)  # type: ignore[arg-type]
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, settings.to_json())
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_ecr.endpoint_url)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "EcrSweeper")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", metrics_catalog.SERVICE)
    for name in ("POWERTOOLS_DEV", "POWERTOOLS_METRICS_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    handler = importlib.reload(importlib.import_module("ecr_sweeper.handlers.sweeper"))
    summary = invoke(handler, {}, LambdaContext())
    logs, emf = records(capsys.readouterr().out)
    assert [(r["target"], r["imagesDeleted"]) for r in per_repository(logs)] == [
        ("self/us-east-1", 3),
        ("self/eu-west-1", 3),
    ]
    assert summary["imagesDeleted"] == 6
    (run,) = [doc for doc in emf if metrics_catalog.TARGET_DIMENSION not in doc]
    by_target = [doc for doc in emf if metrics_catalog.TARGET_DIMENSION in doc]
    assert run[metrics_catalog.IMAGES_DELETED] == [6]
    deleted = {
        doc[metrics_catalog.TARGET_DIMENSION]: doc[metrics_catalog.IMAGES_DELETED]
        for doc in by_target
        if metrics_catalog.IMAGES_DELETED in doc
    }
    assert deleted == {"self/us-east-1": [3.0], "self/eu-west-1": [3.0]}
    for doc in by_target:
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "EcrSweeper"
        assert doc[metrics_catalog.MODE_DIMENSION] == metrics_catalog.MODE_LIVE
        assert sorted(directive["Dimensions"][0]) >= [
            metrics_catalog.MODE_DIMENSION,
            metrics_catalog.TARGET_DIMENSION,
        ] or set(directive["Dimensions"][0]) >= {"Mode", "Target"}


def test_every_call_in_a_member_account_is_granted_to_the_member_role(
    local_ecr: LocalEcr, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import boto3
    from helpers.kubernetes import KubernetesApi
    from test_iam_coverage import busy_registry

    from infra import build_app
    from infra.config import cdk_json_context
    from infra.member import MEMBER_STACK_ID

    with monkeypatch.context() as patch:
        patch.setattr(local_ecr, "account_id", MEMBER)
        member = local_ecr.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{MEMBER}:role/seed", RoleSessionName="seed"
        )["Credentials"]
        session = boto3.Session(
            region_name=local_ecr.region,
            aws_access_key_id=member["AccessKeyId"],
            aws_secret_access_key=member["SecretAccessKey"],
            aws_session_token=member["SessionToken"],
        )
        patch.setattr(local_ecr, "session", lambda: session)
        local_ecr._session = None  # the seeding clients act in the member account
        cluster = KubernetesApi().__enter__()  # the member account's EKS cluster
        busy_registry(local_ecr, "ssm:/refs/in-use", cluster)
    local_ecr._session = None
    local_ecr.reset_counters()
    settings = Settings(accounts=(MEMBER,), keep_tagged_images=1)
    try:
        summary = sweep_targets(target(local_ecr), settings, logging.getLogger("t"), dry_run=False)
    finally:
        cluster.__exit__()
    assert summary.failures == 0 and summary.total("images_deleted") == 3
    assert cluster.state.requests, "read with the member role's token"
    called = {
        f"{service}:{operation}"
        for service, operations in local_ecr.counter.by_service().items()
        for operation in operations
        if service != "sts"
    }
    app, _stack = build_app(
        {**cdk_json_context(), "accounts": json.dumps([MEMBER])}, outdir=str(tmp_path)
    )
    member_template = app.synth().get_stack_by_name(MEMBER_STACK_ID).template
    granted = {
        action
        for resource in member_template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        for action in (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
    }
    assert called <= granted, f"called but not granted: {sorted(called - granted)}"
    assert granted <= called, f"granted but never called: {sorted(granted - called)}"


def test_the_next_run_starts_with_the_target_the_last_one_ran_out_in(
    local_ecr: LocalEcr, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A multi-region run out of time leaves a cursor at its first unfinished target; the next
    live run starts with the target it ran out in, so a late target is never left behind night
    after night."""
    ssm = local_ecr.client("ssm")
    ssm.put_parameter(Name="/sweeper/cursor", Value="{}", Type="String")
    seed(local_ecr, monkeypatch, "web", region="us-east-1")
    seed(local_ecr, monkeypatch, "api", region="eu-west-1")
    settings = Settings(regions=("us-east-1", "eu-west-1"), **SETTINGS)  # type: ignore[arg-type]

    def one_delete_call() -> TimeBudget:
        """A budget on a clock that ticks once per BatchDeleteImage: one call, then it's out."""
        return TimeBudget(0.5, clock=lambda: local_ecr.calls_for("ecr")["BatchDeleteImage"])

    def run() -> list[tuple[str | None, str, str, int]]:
        summary = sweep_targets(
            target(local_ecr), settings, logging.getLogger("t"), dry_run=False,
            budget=one_delete_call(), cursor_parameter="/sweeper/cursor",
        )  # fmt: skip
        return [(r.target, r.repository, r.status, r.images_deleted) for r in summary.results]

    def cursor() -> object:
        return json.loads(ssm.get_parameter(Name="/sweeper/cursor")["Parameter"]["Value"])

    assert run() == [
        ("self/us-east-1", "web", "swept", 3),
        ("self/eu-west-1", "api", UNFINISHED, 0),
    ]
    labels = ["self/us-east-1", "self/eu-west-1"]
    assert cursor() == {
        "resumeAt": {"targets": targets_digest(labels), "target": 1, "repository": "api"}
    }

    make = ManifestFactory(random.Random("older"))
    for number in range(3):  # more to delete in the first target
        built = make.image(compact=True)
        local_ecr.push_image("web", built.body, f"old-{number}", pushed_at=ago(60))
    assert run() == [
        ("self/us-east-1", "web", UNFINISHED, 0),
        ("self/eu-west-1", "api", "swept", 3),
    ], "results keep the settings' order; eu-west-1 went first and took the one call"
    assert cursor() == {
        "resumeAt": {"targets": targets_digest(labels), "target": 0, "repository": "web"}
    }

    summary = sweep_targets(
        target(local_ecr), settings, logging.getLogger("t"), dry_run=False,
        cursor_parameter="/sweeper/cursor",
    )  # fmt: skip
    assert [(r.target, r.status) for r in summary.results] == [
        ("self/us-east-1", "swept"),
        ("self/eu-west-1", "swept"),
    ]
    assert cursor() == {}, "nothing left unfinished: the cursor is cleared"
    assert left(local_ecr, "web") == 2 and left(local_ecr, "api", region="eu-west-1") == 2


def test_a_dry_run_over_several_targets_neither_reads_nor_moves_the_cursor(
    local_ecr: LocalEcr, monkeypatch: pytest.MonkeyPatch
) -> None:
    ssm = local_ecr.client("ssm")
    document = {"resumeTarget": "self/eu-west-1", "targets": {"self/eu-west-1": "api"}}
    ssm.put_parameter(Name="/sweeper/cursor", Value=json.dumps(document), Type="String")
    seed(local_ecr, monkeypatch, "api", region="eu-west-1")
    settings = Settings(regions=("us-east-1", "eu-west-1"), **SETTINGS)  # type: ignore[arg-type]
    local_ecr.reset_counters()
    summary = sweep_targets(
        target(local_ecr), settings, logging.getLogger("t"), dry_run=True,
        budget=TimeBudget(0), cursor_parameter="/sweeper/cursor",
    )  # fmt: skip
    assert {r.status for r in summary.results} == {UNFINISHED}
    assert not local_ecr.calls_for("ssm"), "a dry run doesn't touch the cursor"
    assert json.loads(ssm.get_parameter(Name="/sweeper/cursor")["Parameter"]["Value"]) == document


def test_the_extra_references_document_is_read_once_with_the_deployments_credentials(
    local_ecr: LocalEcr, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The document lives in the sweeper's own account, where only its own role may read it: a
    member account's role would find nothing there, and every member target would then delete
    nothing. It is read once, with the deployment's credentials, for every target."""
    seed(local_ecr, monkeypatch, "web", account=MEMBER)
    seed(local_ecr, monkeypatch, "web", account=OTHER_MEMBER, region="eu-west-1")
    keep = f"{MEMBER}.dkr.ecr.us-east-1.amazonaws.com/web:v0"
    local_ecr.client("ssm").put_parameter(
        Name="/refs/in-use", Value=json.dumps([keep]), Type="String"
    )
    settings = Settings(
        accounts=(MEMBER, OTHER_MEMBER),
        regions=("us-east-1", "eu-west-1"),
        extra_image_references="ssm:/refs/in-use",
        **SETTINGS,  # type: ignore[arg-type]
    )
    local_ecr.reset_counters()
    summary = sweep_targets(target(local_ecr), settings, logging.getLogger("t"), dry_run=False)
    assert local_ecr.counter.by_service()["ssm"] == {"GetParameter": 1}
    swept = [
        (r.target, r.repository, r.images_deleted) for r in summary.results if r.status == "swept"
    ]
    assert swept == [(f"{MEMBER}/us-east-1", "web", 2), (f"{OTHER_MEMBER}/eu-west-1", "web", 3)]
    assert summary.failures == 0
    assert left(local_ecr, "web", account=MEMBER) == 3, "v0 is kept: the document names it"


def deletes_of(local_ecr: LocalEcr, targets: int) -> TimeBudget:
    """A budget on a clock that ticks once per BatchDeleteImage call (one per target here):
    it runs out after `targets` targets' deletes."""
    start = local_ecr.calls_for("ecr")["BatchDeleteImage"]
    return TimeBudget(
        targets - 0.5, clock=lambda: local_ecr.calls_for("ecr")["BatchDeleteImage"] - start
    )


def test_150_targets_out_of_time_every_30_are_each_swept_once_in_five_runs(
    local_ecr: LocalEcr, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe of issue 24: 150 accounts, a budget that runs out after 30 targets' deletes.
    The cursor used to hold an entry per unfinished target (5-6 KB here), its write failed on
    the 4,096-character Standard tier, and every run started again at the first target. Now
    five runs reach every target exactly once, and no cursor write comes near the limit."""
    accounts = tuple(f"{100000000000 + n}" for n in range(150))
    for account in accounts:
        seed(local_ecr, monkeypatch, "web", account=account)
    ssm = local_ecr.client("ssm")
    ssm.put_parameter(Name="/sweeper/cursor", Value="{}", Type="String")
    settings = Settings(
        accounts=accounts, protect_ecs_images=False, protect_scheduled_task_images=False,
        protect_batch_images=False, protect_sage_maker_images=False,
        protect_code_build_images=False, eks_clusters=(), **SETTINGS,
    )  # type: ignore[arg-type]  # fmt: skip
    written: list[str] = []
    ssm_calls = target(local_ecr).client("ssm")
    swept: list[str] = []
    for night in range(5):
        summary = sweep_targets(
            target(local_ecr), settings, logging.getLogger("t"), dry_run=False,
            budget=deletes_of(local_ecr, 30), cursor_parameter="/sweeper/cursor",
        )  # fmt: skip
        tonight = [r.target or "" for r in summary.results if r.status == "swept"]
        assert len(tonight) == 30, f"night {night + 1}: {len(tonight)} targets swept"
        assert summary.cursor_failure is None and summary.failures == 0
        value = ssm_calls.get_parameter(Name="/sweeper/cursor")["Parameter"]["Value"]
        written.append(value)
        swept += tonight
    labels = [f"{account}/us-east-1" for account in accounts]
    assert swept == labels, "each target once, in the settings' order"
    assert all(left(local_ecr, "web", account=account) == 2 for account in accounts)
    assert max(len(value) for value in written) <= CURSOR_MAX_CHARS < 4096
    digest = targets_digest(labels)
    assert [json.loads(value) for value in written[:4]] == [
        {"resumeAt": {"targets": digest, "target": n * 30, "repository": "web"}}
        for n in range(1, 5)
    ]
    assert json.loads(written[4]) == {
        "resumeAt": {"targets": digest, "target": 0, "repository": "web"}
    }, "the fifth run wrapped around to the first target, which starts the next night"


def test_a_cursor_for_another_list_of_targets_or_malformed_is_ignored_with_the_reason(
    local_ecr: LocalEcr, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    seed(local_ecr, monkeypatch, "web", region="us-east-1")
    seed(local_ecr, monkeypatch, "api", region="eu-west-1")
    settings = Settings(regions=("us-east-1", "eu-west-1"), **SETTINGS)  # type: ignore[arg-type]
    ssm = local_ecr.client("ssm")
    stale = {"resumeAt": {"targets": "0123456789abcdef", "target": 1}, "approval": {"x": 1}}
    ssm.put_parameter(Name="/sweeper/cursor", Value=json.dumps(stale), Type="String")
    with caplog.at_level(logging.WARNING):
        summary = sweep_targets(
            target(local_ecr), settings, logging.getLogger("t"), dry_run=False,
            cursor_parameter="/sweeper/cursor",
        )  # fmt: skip
    assert [(r.target, r.status) for r in summary.results] == [
        ("self/us-east-1", "swept"),
        ("self/eu-west-1", "swept"),
    ]
    ignored = [r for r in caplog.records if getattr(r, "event", None) == "cursor.ignored"]
    assert ignored and "another list of targets" in ignored[0].getMessage()
    stored = json.loads(ssm.get_parameter(Name="/sweeper/cursor")["Parameter"]["Value"])
    assert stored == {"approval": {"x": 1}}, "the stale cursor is cleared, other keys kept"
    assert summary.cursor_failure is None and summary.failures == 0


def test_a_cursor_that_cant_be_written_fails_the_run_and_raises_the_metric(
    local_ecr: LocalEcr, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib

    from test_handler import invoke, records

    from ecr_sweeper.core import metrics_catalog
    from ecr_sweeper.core.settings import ENVIRONMENT_VARIABLE

    seed(local_ecr, monkeypatch, "web", region="us-east-1")
    seed(local_ecr, monkeypatch, "api", region="eu-west-1")
    labels = ["self/us-east-1", "self/eu-west-1"]
    # The last run stopped in eu-west-1: this one finishes and must clear the cursor.
    last = {"resumeAt": {"targets": targets_digest(labels), "target": 1}}
    local_ecr.client("ssm").put_parameter(
        Name="/sweeper/cursor", Value=json.dumps(last), Type="String"
    )
    # Stands in for an oversized value or a missing grant: SSM refuses the write.
    local_ecr.faults.throttle("PutParameter", service="ssm", code="ValidationException")
    settings = Settings(regions=("us-east-1", "eu-west-1"), **SETTINGS)  # type: ignore[arg-type]
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, settings.to_json())
    monkeypatch.setenv("SWEEPER_STATE_PARAMETER", "/sweeper/cursor")
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_ecr.endpoint_url)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "EcrSweeper")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", metrics_catalog.SERVICE)
    for name in ("POWERTOOLS_DEV", "POWERTOOLS_METRICS_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    handler = importlib.reload(importlib.import_module("ecr_sweeper.handlers.sweeper"))
    summary = invoke(handler, {}, LambdaContext())
    assert summary["outcome"] == "failed" and summary["failures"] == 1
    assert "ValidationException" in summary["cursorFailure"]
    logs, emf = records(capsys.readouterr().out)
    (run,) = [doc for doc in emf if metrics_catalog.TARGET_DIMENSION not in doc]
    assert run[metrics_catalog.CURSOR_FAILURES] == [1]
    assert summary["imagesDeleted"] == 6, "the sweep itself went on"
    assert any(record.get("event") == "cursor.unavailable" for record in logs)
