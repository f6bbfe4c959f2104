"""Inputs someone with a small right can write (a repository's tags, a fan-out work item, an object
in the run bucket) never make the sweeper delete more than its settings allow."""

from __future__ import annotations

import json
import logging
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from helpers.sweep import push, remaining, sweep

from ecr_sweeper.aws.clients import AwsTarget
from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core.references import InUse
from ecr_sweeper.core.settings import Settings
from ecr_sweeper.sweep import fan_out
from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory


def twelve_recent_images(local_ecr: LocalEcr, repository: str, tags: dict[str, str]) -> None:
    local_ecr.client("ecr").create_repository(
        repositoryName=repository, tags=[{"Key": k, "Value": v} for k, v in tags.items()]
    )
    make = ManifestFactory(random.Random(19))
    for number in range(12):
        push(local_ecr, repository, make.image(compact=True), f"v{number}", 13 - number)


LOOSENING_TAGS = {"ecr-sweeper:keep-tagged-images": "1", "ecr-sweeper:minimum-age-days": "0"}


def test_a_repository_tag_cant_loosen_the_settings(
    local_ecr: LocalEcr, caplog: pytest.LogCaptureFixture
) -> None:
    """The review's scenario: keep 10 and a minimum age of 30 days keep all 12 images (1 to 12
    days old). Whoever may only tag the repository sets keep 1 and minimum age 0: the next sweep
    still deletes nothing, and says which tags it ignored."""
    twelve_recent_images(local_ecr, "app", LOOSENING_TAGS)
    settings = Settings(keep_tagged_images=10, minimum_age_days=30)
    with caplog.at_level(logging.WARNING):
        summary = sweep(local_ecr, settings, logger=logging.getLogger("test.tags"))
    assert summary.total("images_deleted") == 0 and summary.failures == 0
    assert len(remaining(local_ecr, "app")) == 12
    warnings = [r for r in caplog.records if getattr(r, ev.EVENT, None) == ev.OVERRIDE_IGNORED]
    assert [r.getMessage() for r in warnings] == [
        "repository app: ignored ecr-sweeper:keep-tagged-images=1: it would loosen "
        "keepTaggedImages (10); a tag may only make the policy stricter unless "
        "repositoryTagsMayLoosen is true",
        "repository app: ignored ecr-sweeper:minimum-age-days=0: it would loosen minimumAgeDays "
        "(30); a tag may only make the policy stricter unless repositoryTagsMayLoosen is true",
    ]
    assert all(getattr(r, ev.REPOSITORY) == "app" for r in warnings)


def test_with_repository_tags_may_loosen_the_tag_applies(local_ecr: LocalEcr) -> None:
    twelve_recent_images(local_ecr, "app", LOOSENING_TAGS)
    settings = Settings(keep_tagged_images=10, minimum_age_days=30, repository_tags_may_loosen=True)
    summary = sweep(local_ecr, settings)
    assert summary.total("images_deleted") == 11
    assert list(remaining(local_ecr, "app").values()) == [("v11",)]


# -- the fan-out's Sweep step and the run bucket --------------------------------------------------

ACCOUNT = "123456789012"
REGION = "us-east-1"


def arn(name: str) -> str:
    return f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{name}"


def listed_run(
    local_ecr: LocalEcr, settings: Settings, *, run_id: str = "run-1", dry_run: bool = False
) -> dict[str, Any]:
    """List's state for a real run over the local ECR (inline items)."""
    if "runs" not in {b["Name"] for b in local_ecr.client("s3").list_buckets()["Buckets"]}:
        local_ecr.client("s3").create_bucket(Bucket="runs")
    return fan_out.list_work(
        base(local_ecr), settings, logging.getLogger("test.list"), run_id=run_id,
        dry_run=dry_run, bucket="runs", started_at=datetime.now(UTC),
    )  # fmt: skip


def base(local_ecr: LocalEcr) -> AwsTarget:
    return AwsTarget(region=REGION, endpoint_url=local_ecr.endpoint_url)


def sweep_item(
    local_ecr: LocalEcr, settings: Settings, item: Any, run: dict[str, Any]
) -> dict[str, Any]:
    return fan_out.sweep_batch(
        base(local_ecr), settings, logging.getLogger("test.sweep"), {"item": item, "run": run},
        bucket="runs", account=ACCOUNT,
    )  # fmt: skip


def two_repositories(local_ecr: LocalEcr) -> None:
    """`app` is tagged skip; `web` is not. Both hold 12 images a sweep with keep 1 would cut."""
    twelve_recent_images(local_ecr, "app", {"ecr-sweeper:skip": "true"})
    twelve_recent_images(local_ecr, "web", {})


FAN_OUT = Settings(keep_tagged_images=1, protect_lambda_images=False)


def test_a_genuine_work_item_sweeps_and_skips_what_is_tagged_skip(local_ecr: LocalEcr) -> None:
    two_repositories(local_ecr)
    state = listed_run(local_ecr, FAN_OUT)
    (item,) = state["items"]
    # Plan and Check first, as the state machine runs them: without Check's decision to
    # proceed a live child deletes nothing.
    log = logging.getLogger("test.guard")
    event = {"item": item, "run": state["run"]}
    fan_out.plan_batch(base(local_ecr), FAN_OUT, log, event, bucket="runs", account=ACCOUNT)
    unguarded = Settings(  # web loses 11 of its 12 images: over the default share
        keep_tagged_images=1, protect_lambda_images=False, guard_max_deletion_fraction=1.0
    )
    checked = fan_out.check_run(base(local_ecr), unguarded, log, run_id="run-1", bucket="runs")
    assert checked == {"runId": "run-1", "held": False, "wouldDelete": 11}
    counts = sweep_item(local_ecr, FAN_OUT, item, state["run"])
    assert counts["imagesDeleted"] == 11
    assert len(remaining(local_ecr, "app")) == 12 and len(remaining(local_ecr, "web")) == 1


def test_a_skip_tagged_name_with_another_repositorys_arn_is_refused(local_ecr: LocalEcr) -> None:
    """Tags are read from the ARN and images deleted by name: the pair must agree."""
    two_repositories(local_ecr)
    state = listed_run(local_ecr, FAN_OUT)
    (item,) = state["items"]
    item["repositories"] = [{"name": "app", "arn": arn("web")}, {"name": "web", "arn": arn("web")}]
    with pytest.raises(fan_out.BatchError, match="the ARN given for 'app' is not that"):
        sweep_item(local_ecr, FAN_OUT, item, state["run"])
    assert len(remaining(local_ecr, "app")) == len(remaining(local_ecr, "web")) == 12


def test_an_item_cant_sweep_live_over_a_dry_run_deployment(local_ecr: LocalEcr) -> None:
    two_repositories(local_ecr)
    settings = Settings(keep_tagged_images=1, protect_lambda_images=False, dry_run=True)
    state = listed_run(local_ecr, settings, dry_run=True)
    (item,) = state["items"]
    item["dryRun"] = False
    with pytest.raises(fan_out.BatchError, match="dryRun False, but the settings and the run"):
        sweep_item(local_ecr, settings, item, state["run"])
    assert len(remaining(local_ecr, "web")) == 12


def test_an_item_cant_choose_another_run_or_its_snapshot(local_ecr: LocalEcr) -> None:
    """The run id comes from the execution's state; an item naming another run (and so another
    in-use snapshot) is refused, and so is a run id without its run document's digest."""
    two_repositories(local_ecr)
    older = listed_run(local_ecr, FAN_OUT, run_id="run-0")
    state = listed_run(local_ecr, FAN_OUT)
    (item,) = state["items"]
    with pytest.raises(fan_out.BatchError, match="runId 'run-0' is not this execution's"):
        sweep_item(local_ecr, FAN_OUT, {**item, "runId": "run-0"}, state["run"])
    with pytest.raises(fan_out.BatchError, match="changed since it was written"):
        sweep_item(local_ecr, FAN_OUT, item, {"runId": "run-1", "sha256": older["run"]["sha256"]})
    assert len(remaining(local_ecr, "web")) == 12


def test_a_blanked_in_use_snapshot_is_refused_and_the_image_in_use_kept(
    local_ecr: LocalEcr,
) -> None:
    """Between List and Sweep, someone empties the snapshot: the child refuses it by its digest
    (and in the deployed stack, the bucket policy denies them the write)."""
    twelve_recent_images(local_ecr, "web", {})
    ecs = local_ecr.client("ecs")
    ecs.create_cluster(clusterName="prod")
    image = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/web:v0"
    definition = ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "web", "image": image, "memory": 64}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.run_task(cluster="prod", taskDefinition=definition, launchType="FARGATE")
    state = listed_run(local_ecr, FAN_OUT)
    (item,) = state["items"]
    blank = fan_out.in_use_document(InUse(), None)
    local_ecr.client("s3").put_object(
        Bucket="runs",
        Key=fan_out.in_use_key("run-1", f"self/{REGION}"),
        Body=json.dumps(blank).encode(),
    )
    with pytest.raises(fan_out.BatchError, match=r"in-use/self/us-east-1\.json: changed since"):
        sweep_item(local_ecr, FAN_OUT, item, state["run"])
    assert ("v0",) in remaining(local_ecr, "web").values()
    assert len(remaining(local_ecr, "web")) == 12


def test_a_rewritten_run_document_is_refused(local_ecr: LocalEcr) -> None:
    """Adding a repository to List's run document (to sweep it) breaks its digest."""
    two_repositories(local_ecr)
    settings = Settings(
        keep_tagged_images=1, protect_lambda_images=False, exclude_repositories=("app",)
    )
    state = listed_run(local_ecr, settings)
    (item,) = state["items"]
    s3 = local_ecr.client("s3")
    key = "runs/run-1/run.json"
    run = json.loads(s3.get_object(Bucket="runs", Key=key)["Body"].read())
    run["batches"][0]["repositories"].insert(0, "app")
    s3.put_object(Bucket="runs", Key=key, Body=json.dumps(run).encode())
    item["repositories"].insert(0, {"name": "app", "arn": arn("app")})
    with pytest.raises(fan_out.BatchError, match=r"run\.json: changed since it was written"):
        sweep_item(local_ecr, settings, item, state["run"])
    assert len(remaining(local_ecr, "app")) == len(remaining(local_ecr, "web")) == 12
