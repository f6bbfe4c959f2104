"""The deletion guard over the local ECR: a registry whose plan deletes 80% of its images holds
(CLI and Lambda), a person's stated number or a higher limit lets it through, and nothing is
deleted anywhere while it holds."""

from __future__ import annotations

import json
import random
from types import ModuleType
from typing import Any

import pytest
from helpers.sweep import push, remaining
from test_handler import handler, invoke, records  # noqa: F401 (the handler fixture)
from test_sweeper_cli import run_cli, run_on_terminal, target

from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core import metrics_catalog
from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory

EXIT_HELD = 3
WOULD_DELETE = 8


def seed_eighty_percent(local_ecr: LocalEcr) -> dict[str, dict[str, tuple[str, ...]]]:
    """Two repositories of five images: one tagged image and four old untagged ones each, so
    the default policy deletes 8 of the 10 images. Returns what is there."""
    make = ManifestFactory(random.Random(22))
    for repository in ("api", "web"):
        push(local_ecr, repository, make.image(compact=True), "v1", 3)
        for days in (5, 6, 7, 8):
            push(local_ecr, repository, make.image(compact=True), None, days)
    return {name: remaining(local_ecr, name) for name in ("api", "web")}


def left(local_ecr: LocalEcr) -> dict[str, dict[str, tuple[str, ...]]]:
    return {name: remaining(local_ecr, name) for name in ("api", "web")}


def sweep_json(local_ecr: LocalEcr, *extra: str) -> tuple[int, dict[str, Any], str]:
    result = run_cli("sweep", *target(local_ecr), "--yes", "--output", "json", *extra)
    return result.returncode, json.loads(result.stdout), result.stderr


def test_the_default_cli_sweep_holds_and_deletes_nothing(local_ecr: LocalEcr) -> None:
    before = seed_eighty_percent(local_ecr)
    code, summary, stderr = sweep_json(local_ecr)
    assert code == EXIT_HELD, stderr
    assert left(local_ecr) == before
    assert summary["outcome"] == "held" and summary["held"] is True
    assert summary["imagesDeleted"] == 0 and summary["imagesExpired"] == WOULD_DELETE
    guard = summary["guard"]
    assert (guard["wouldDelete"], guard["imagesScanned"], guard["fraction"]) == (8, 10, 0.8)
    assert guard["limit"] == "guardMaxDeletionFraction" and guard["allowed"] == 0.5
    assert guard["topRepositories"] == [
        {"repository": "api", "wouldDelete": 4},
        {"repository": "web", "wouldDelete": 4},
    ]
    assert "--approve-deletions N" in stderr
    table = run_cli("sweep", *target(local_ecr), "--yes")
    assert table.returncode == EXIT_HELD
    assert "HELD" in table.stdout and "held by the deletion guard" in table.stdout
    assert left(local_ecr) == before


def test_a_higher_share_lets_the_same_sweep_through(local_ecr: LocalEcr) -> None:
    seed_eighty_percent(local_ecr)
    code, summary, stderr = sweep_json(local_ecr, "-c", "guardMaxDeletionFraction=0.9")
    assert code == 0, stderr
    assert summary["outcome"] == "succeeded" and summary["imagesDeleted"] == WOULD_DELETE
    assert [len(images) for images in left(local_ecr).values()] == [1, 1]


def test_a_count_limit_holds_even_within_the_share(local_ecr: LocalEcr) -> None:
    before = seed_eighty_percent(local_ecr)
    limits = ("-c", "guardMaxDeletionFraction=1", "-c", "guardMaxDeletions=7")
    code, summary, _ = sweep_json(local_ecr, *limits)
    assert code == EXIT_HELD and summary["guard"]["limit"] == "guardMaxDeletions"
    assert left(local_ecr) == before


def test_approve_deletions_passes_exactly_the_stated_number(local_ecr: LocalEcr) -> None:
    before = seed_eighty_percent(local_ecr)
    code, summary, _ = sweep_json(local_ecr, "--approve-deletions", str(WOULD_DELETE - 1))
    assert code == EXIT_HELD and summary["guard"]["limit"] == "approval"
    assert "more than the 7 approved" in summary["guard"]["reason"]
    assert left(local_ecr) == before
    code, summary, stderr = sweep_json(local_ecr, "--approve-deletions", str(WOULD_DELETE))
    assert code == 0, stderr
    assert summary["imagesDeleted"] == WOULD_DELETE and summary["guard"]["held"] is False


def test_a_bad_approve_deletions_is_refused(local_ecr: LocalEcr) -> None:
    refused = run_cli("sweep", *target(local_ecr), "--yes", "--approve-deletions", "-3")
    assert refused.returncode == 2 and "'-3' is not a number of images" in refused.stderr


def test_on_a_terminal_the_person_confirming_is_the_approval(local_ecr: LocalEcr) -> None:
    seed_eighty_percent(local_ecr)
    confirmed = run_on_terminal(local_ecr, "yes")
    assert f"Delete {WOULD_DELETE} images?" in confirmed
    assert f"deleted {WOULD_DELETE} images" in confirmed
    assert [len(images) for images in left(local_ecr).values()] == [1, 1]


def test_the_lambda_holds_reports_held_and_emits_guard_held(
    handler: ModuleType,  # noqa: F811
    local_ecr: LocalEcr,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = seed_eighty_percent(local_ecr)
    summary = invoke(handler, {})
    logs, emf = records(capsys.readouterr().out)
    assert left(local_ecr) == before
    assert summary["outcome"] == "held" and summary["dryRun"] is False
    assert summary["imagesDeleted"] == 0 and summary["guard"]["wouldDelete"] == WOULD_DELETE
    (held,) = [r for r in logs if r.get(ev.EVENT) == ev.GUARD_HELD]
    assert (held["wouldDelete"], held["imagesScanned"], held["fraction"]) == (8, 10, 0.8)
    assert held["limit"] == "guardMaxDeletionFraction" and len(held["topRepositories"]) == 2
    assert "ecr-sweeper approve" in held["message"]
    assert not [r for r in logs if r.get(ev.EVENT) == ev.IMAGE_DELETED]
    would = [r for r in logs if r.get(ev.EVENT) == ev.IMAGE_EXPIRED_DRY_RUN]
    assert len(would) == WOULD_DELETE and all(r[ev.DRY_RUN] is True for r in would)
    (run_metrics,) = [d for d in emf if metrics_catalog.GUARD_HELD in d]
    assert run_metrics[metrics_catalog.GUARD_HELD] == [1.0] and run_metrics["Mode"] == "Live"
    assert run_metrics[metrics_catalog.IMAGES_DELETED] == [0.0]
