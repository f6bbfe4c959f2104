"""Nightly enforcement of `nativeLifecyclePolicy` by the Lambda handler, over the local ECR."""

from __future__ import annotations

import hashlib
import json
import random
from types import ModuleType
from typing import Any

import pytest
from helpers.infra import NATIVE_POLICY
from helpers.sweep import push, remaining
from test_handler import handler, invoke, per_repository, records

from ecr_sweeper.core import lifecycle
from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core import metrics_catalog as names
from ecr_sweeper.core.settings import ENVIRONMENT_VARIABLE, Settings
from ecr_sweeper.sweep.native_policy import policy_text
from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory

__all__ = ["handler"]  # the fixture, shared with the handler's own tests

NATIVE: dict[str, Any] = NATIVE_POLICY
OLD_POLICY = json.dumps(
    {
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
)


def configure(monkeypatch: pytest.MonkeyPatch, **settings: Any) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, Settings.from_mapping(settings).to_json())


def registry(local_ecr: LocalEcr) -> None:
    """fresh: no policy, old images; drifted: another policy; skipped: tagged skip."""
    make = ManifestFactory(random.Random(5))
    for days in (30, 20, 0.5):
        push(local_ecr, "fresh", make.image(compact=True), None, days)
    push(local_ecr, "drifted", make.image(compact=True), "v1", 30)
    ecr = local_ecr.client("ecr")
    ecr.put_lifecycle_policy(repositoryName="drifted", lifecyclePolicyText=OLD_POLICY)
    ecr.create_repository(
        repositoryName="skipped", tags=[{"Key": "ecr-sweeper:skip", "Value": "true"}]
    )


def policy_of(local_ecr: LocalEcr, repository: str) -> str | None:
    ecr = local_ecr.client("ecr")
    try:
        return str(ecr.get_lifecycle_policy(repositoryName=repository)["lifecyclePolicyText"])
    except ecr.exceptions.LifecyclePolicyNotFoundException:
        return None


def test_the_nightly_run_enforces_the_policy_logs_each_change_and_counts_them(
    handler: ModuleType,
    local_ecr: LocalEcr,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry(local_ecr)
    before = {name: remaining(local_ecr, name) for name in ("fresh", "drifted")}
    configure(monkeypatch, nativeLifecyclePolicy=NATIVE, sweepImages=False)
    local_ecr.reset_counters()
    summary = invoke(handler, {})
    logs, emf = records(capsys.readouterr().out)

    canonical = policy_text(lifecycle.parse_policy(NATIVE))
    assert policy_of(local_ecr, "fresh") == canonical
    assert policy_of(local_ecr, "drifted") == canonical
    assert policy_of(local_ecr, "skipped") is None
    assert {name: remaining(local_ecr, name) for name in ("fresh", "drifted")} == before
    assert local_ecr.calls["BatchDeleteImage"] == 0, "sweepImages=false deletes nothing"
    assert summary["imagesDeleted"] == 0 and summary["failures"] == 0
    changes = {r["repository"]: r.get("nativeLifecyclePolicy") for r in per_repository(logs)}
    assert changes == {"drifted": "update", "fresh": "create", "skipped": None}

    applied = {r[ev.REPOSITORY]: r for r in logs if r.get(ev.EVENT) == ev.POLICY_APPLIED}
    assert set(applied) == {"fresh", "drifted"}
    assert applied["fresh"][ev.POLICY_CHANGE] == "create"
    assert ev.PREVIOUS_POLICY_SHA256 not in applied["fresh"], "none before: Powertools drops null"
    assert applied["drifted"][ev.POLICY_CHANGE] == "update"
    old_hash = hashlib.sha256(OLD_POLICY.encode()).hexdigest()
    assert applied["drifted"][ev.PREVIOUS_POLICY_SHA256] == old_hash
    assert emf[0][names.LIFECYCLE_POLICIES_CHANGED] == [2]

    local_ecr.reset_counters()
    invoke(handler, {})
    logs, emf = records(capsys.readouterr().out)
    assert local_ecr.calls["PutLifecyclePolicy"] == 0
    assert {r.get("nativeLifecyclePolicy") for r in per_repository(logs)} == {"unchanged", None}
    assert not [r for r in logs if r.get(ev.EVENT) == ev.POLICY_APPLIED]
    assert emf[0][names.LIFECYCLE_POLICIES_CHANGED] == [0]


def test_a_dry_run_reports_the_changes_and_writes_nothing(
    handler: ModuleType,
    local_ecr: LocalEcr,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry(local_ecr)
    configure(monkeypatch, nativeLifecyclePolicy=NATIVE)
    local_ecr.reset_counters()
    summary = invoke(handler, {"dryRun": True})
    logs, _ = records(capsys.readouterr().out)
    assert local_ecr.calls["PutLifecyclePolicy"] == 0
    assert policy_of(local_ecr, "fresh") is None and policy_of(local_ecr, "drifted") == OLD_POLICY
    would = {r[ev.REPOSITORY] for r in logs if r.get(ev.EVENT) == ev.POLICY_WOULD_APPLY}
    assert would == {"fresh", "drifted"}
    assert summary["imagesExpired"] > 0, "sweepImages defaults to true: the sweep plans too"


def test_a_failed_put_fails_that_repository_only_and_the_sweep_goes_on(
    handler: ModuleType,
    local_ecr: LocalEcr,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry(local_ecr)
    configure(monkeypatch, nativeLifecyclePolicy=NATIVE)
    local_ecr.reset_counters()  # the fault's ordinal counts this run's calls only
    local_ecr.faults.throttle("PutLifecyclePolicy", code="AccessDeniedException", on_calls=[1])
    summary = invoke(handler, {})
    logs, _ = records(capsys.readouterr().out)
    failed = [r for r in per_repository(logs) if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["errorCode"] == "AccessDeniedException"
    assert failed[0]["reason"].startswith("lifecycle policy not applied:")
    assert [r[ev.REPOSITORY] for r in logs if r.get(ev.EVENT) == ev.POLICY_FAILED] == [
        failed[0]["repository"]
    ]
    assert summary["imagesDeleted"] >= 2, "the sweep still ran in every repository"


def multi_arch(local_ecr: LocalEcr) -> str:
    """`app`: index v1 (kept) with an untagged child pushed 30 days ago, which NATIVE (untagged
    after 14 days) would expire; `plain`: nothing NATIVE would expire that the sweep keeps."""
    make = ManifestFactory(random.Random(23))
    child = make.image(oci=True)
    child_digest = push(local_ecr, "app", child, None, 30)
    push(local_ecr, "app", make.index([(child, "linux/amd64")]), "v1", 30)
    push(local_ecr, "plain", make.image(compact=True), "v1", 30)
    return child_digest


def test_a_policy_that_would_expire_what_the_sweep_keeps_is_skipped_with_a_warning_and_a_metric(
    handler: ModuleType,
    local_ecr: LocalEcr,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    child = multi_arch(local_ecr)
    configure(monkeypatch, nativeLifecyclePolicy=NATIVE)
    invoke(handler, {})
    logs, emf = records(capsys.readouterr().out)

    assert policy_of(local_ecr, "app") is None, "not written: ECR would delete the kept child"
    assert policy_of(local_ecr, "plain") is not None
    changes = {r["repository"]: r for r in per_repository(logs)}
    assert changes["app"]["nativeLifecyclePolicy"] == "skipped"
    assert changes["plain"]["nativeLifecyclePolicy"] == "create"
    assert changes["app"]["status"] == "swept", "the sweep itself still runs"
    assert changes["app"]["notes"][0].startswith(
        "nativeLifecyclePolicy not written: the policy would expire what the sweep keeps"
    )
    assert "nativeLifecyclePolicyForce: true writes it anyway" in changes["app"]["notes"][0]
    assert changes["app"]["notes"][1] == (
        f"nativeLifecyclePolicy: {child[:19]} ({child}): the policy would expire it, but the "
        "sweep keeps it: child of kept index v1"
    )
    (skipped,) = [r for r in logs if r.get(ev.EVENT) == ev.POLICY_SKIPPED]
    assert skipped["level"] == "WARNING" and skipped[ev.REPOSITORY] == "app"
    assert skipped[ev.WARNING_COUNT] == 1 and child in skipped[ev.WARNINGS][0]
    assert emf[0][names.LIFECYCLE_POLICIES_SKIPPED] == [1]
    assert emf[0][names.LIFECYCLE_POLICIES_CHANGED] == [1]
    assert child in remaining(local_ecr, "app"), "and the sweep keeps the child"

    configure(monkeypatch, nativeLifecyclePolicy=NATIVE, nativeLifecyclePolicyForce=True)
    invoke(handler, {})
    logs, emf = records(capsys.readouterr().out)
    assert policy_of(local_ecr, "app") == policy_text(lifecycle.parse_policy(NATIVE))
    assert {r["repository"]: r.get("nativeLifecyclePolicy") for r in per_repository(logs)} == {
        "app": "create",
        "plain": "unchanged",
    }
    (warned,) = [r for r in logs if r.get(ev.EVENT) == ev.POLICY_FORCED]
    assert warned["level"] == "WARNING" and child in warned[ev.WARNINGS][0]
    assert emf[0][names.LIFECYCLE_POLICIES_SKIPPED] == [0]
