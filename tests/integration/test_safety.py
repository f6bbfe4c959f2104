"""Never break what is kept: multi-arch images, referrers, images in use, and races."""

from __future__ import annotations

import json
import logging
import random
from typing import Any

import pytest
from helpers.sweep import NOW, ago, push, remaining, sweep, sweeper

from ecr_sweeper.core.settings import Settings
from local_ecr import LocalEcr
from local_ecr.manifests import SPDX_JSON, Built, ManifestFactory, cosign_tag

ACCOUNT = "123456789012"
HOST = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
KEEP_ONE = Settings(keep_tagged_images=1)


@pytest.fixture
def make() -> ManifestFactory:
    return ManifestFactory(random.Random(11))


def push_index(
    local_ecr: LocalEcr,
    make: ManifestFactory,
    repository: str,
    children: list[Built],
    tag: str,
    days_ago: float,
) -> tuple[str, list[str]]:
    """Children (and one BuildKit attestation each) first, then the index, as buildx pushes."""
    attestations = [(make.attestation(child), child) for child in children]
    present = remaining(local_ecr, repository) if repository in _repositories(local_ecr) else {}
    for child in children:
        if child.digest not in present:
            push(local_ecr, repository, child, None, days_ago)
    for attestation, _ in attestations:
        push(local_ecr, repository, attestation, None, days_ago)
    platforms = [(child, f"linux/arch{n}") for n, child in enumerate(children)]
    index = make.index(platforms, attestations)
    digest = push(local_ecr, repository, index, tag, days_ago)
    return digest, [c.digest for c in children] + [a.digest for a, _ in attestations]


def _repositories(local_ecr: LocalEcr) -> set[str]:
    response = local_ecr.client("ecr").describe_repositories(maxResults=1000)
    return {repository["repositoryName"] for repository in response["repositories"]}


def test_children_follow_their_index_and_shared_children_stay(
    local_ecr: LocalEcr, make: ManifestFactory
) -> None:
    shared = make.image(oci=True)
    old_only = make.image(oci=True)
    new_only = make.image(oci=True)
    old, old_children = push_index(local_ecr, make, "app", [old_only, shared], "v1", 30)
    new, new_children = push_index(local_ecr, make, "app", [new_only, shared], "v2", 2)
    summary = sweep(local_ecr, KEEP_ONE)
    left = set(remaining(local_ecr, "app"))
    assert left == {new, *new_children}
    assert shared.digest in left and old_only.digest not in left and old not in left
    assert summary.failures == 0
    result = summary.results[0]
    assert result.images_deleted == len({old, *old_children} - {shared.digest})
    assert result.kept_by_protection["index-child"] == len(new_children)


def test_indexes_are_read_100_at_a_time_and_only_indexes_are_read(
    local_ecr: LocalEcr, make: ManifestFactory
) -> None:
    for number in range(120):
        push_index(local_ecr, make, "many", [make.image(oci=True, layers=1)], f"v{number}", 3)
    push(local_ecr, "many", make.image(compact=True), "plain", 3)
    local_ecr.reset_counters()
    summary = sweep(local_ecr, Settings(keep_tagged_images=200), dry_run=True)
    assert local_ecr.calls_for("ecr")["BatchGetImage"] == 2
    assert not summary.results[0].plan.expired  # type: ignore[union-attr]


def test_an_index_that_cannot_be_fetched_keeps_its_whole_repository(
    local_ecr: LocalEcr, make: ManifestFactory
) -> None:
    push_index(local_ecr, make, "multi", [make.image(oci=True)], "v1", 30)
    push_index(local_ecr, make, "multi", [make.image(oci=True)], "v2", 2)
    push(local_ecr, "multi", make.image(compact=True), None, 40)
    push(local_ecr, "plain", make.image(compact=True), None, 40)
    before = remaining(local_ecr, "multi")
    local_ecr.faults.error(500, "BatchGetImage")
    summary = sweep(local_ecr, KEEP_ONE)
    assert remaining(local_ecr, "multi") == before
    assert remaining(local_ecr, "plain") == {}, "other repositories are still swept"
    multi = next(r for r in summary.results if r.repository == "multi")
    assert multi.kept_by_protection["uncertain"] == len(before)
    assert (summary.uncertain_repositories, summary.failures) == (1, 1), "a held run is no success"
    assert "BatchGetImage failed" in multi.plan.decisions[0].reason  # type: ignore[union-attr]


def test_signatures_sboms_and_referrers_follow_their_subject(
    local_ecr: LocalEcr, make: ManifestFactory
) -> None:
    old, new = make.image(oci=True), make.image(oci=True)
    push(local_ecr, "app", old, "v1", 30)
    push(local_ecr, "app", new, "v2", 2)
    followers: dict[str, list[str]] = {"old": [], "new": []}
    for name, subject, days in (("old", old, 30), ("new", new, 2)):
        for kind in ("sig", "att", "sbom"):
            artifact = make.cosign(kind)
            followers[name].append(
                push(local_ecr, "app", artifact, cosign_tag(subject.digest, kind), days)
            )
        followers[name].append(
            push(local_ecr, "app", make.referrer(subject, SPDX_JSON), None, days)
        )
    never_pushed = make.image(oci=True)
    old_orphan = push(local_ecr, "app", make.referrer(never_pushed, SPDX_JSON), None, 5)
    young_orphan = push(local_ecr, "app", make.referrer(never_pushed, SPDX_JSON), None, 0.2)
    elsewhere = cosign_tag("sha256:" + "e" * 64, "sig")  # cosign's COSIGN_REPOSITORY layout
    signature_of_elsewhere = push(local_ecr, "app", make.cosign("sig"), elsewhere, 90)
    settings = Settings(keep_tagged_images=1, protected_tags=("latest", "sha256-*"))
    summary = sweep(local_ecr, settings)
    left = set(remaining(local_ecr, "app"))
    assert left == {new.digest, *followers["new"], young_orphan, signature_of_elsewhere}
    assert old_orphan not in left
    assert summary.results[0].kept_by_protection["referrer"] == 5
    assert summary.failures == 0


def register_task(ecs: Any, family: str, image: str) -> str:
    response = ecs.register_task_definition(
        family=family,
        containerDefinitions=[{"name": family, "image": image, "memory": 128}],
    )
    return str(response["taskDefinition"]["taskDefinitionArn"])


def test_images_in_use_by_ecs_and_lambda_are_kept_and_the_holder_is_logged(
    local_ecr: LocalEcr, make: ManifestFactory, caplog: pytest.LogCaptureFixture
) -> None:
    digests = {}
    for number in range(6):
        digests[number] = push(
            local_ecr, "app", make.image(compact=True), f"v{number}", 40 - number
        )
    ecs = local_ecr.client("ecs")
    ecs.create_cluster(clusterName="prod")
    running = register_task(ecs, "batch", f"{HOST}/app:v0")
    scaled_to_zero = register_task(ecs, "web", f"{HOST}/app@{digests[1]}")
    tag_and_digest = register_task(ecs, "api", f"{HOST}/app:v2@{digests[2]}")
    # moto runs FARGATE tasks without network settings (its awsvpc path is broken).
    ecs.run_task(cluster="prod", taskDefinition=running, launchType="FARGATE")
    ecs.create_service(
        cluster="prod", serviceName="web", taskDefinition=scaled_to_zero, desiredCount=0
    )
    ecs.create_service(
        cluster="prod", serviceName="api", taskDefinition=tag_and_digest, desiredCount=1
    )
    role = local_ecr.client("iam").create_role(
        RoleName="fn",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    local_ecr.client("lambda").create_function(
        FunctionName="resize",
        Role=role,
        PackageType="Image",
        Code={"ImageUri": f"{HOST}/app:v3"},
    )
    caplog.set_level(logging.INFO, logger="test.sweep")
    local_ecr.reset_counters()
    summary = sweep(local_ecr, KEEP_ONE)
    assert local_ecr.calls_for("ecs")["DescribeTaskDefinition"] == 3, "each described once"
    left = remaining(local_ecr, "app")
    assert set(left) == {digests[n] for n in (0, 1, 2, 3, 5)}, "only v4 is neither newest nor used"
    assert summary.results[0].kept_by_protection["in-use"] == 4
    logged = caplog.text
    assert "ECS task prod/" in logged
    assert "ECS service prod/web (web:1)" in logged
    assert "Lambda function resize:$LATEST" in logged


def test_extra_references_from_ssm_are_kept(local_ecr: LocalEcr, make: ManifestFactory) -> None:
    old = push(local_ecr, "app", make.image(compact=True), "v1", 30)
    push(local_ecr, "app", make.image(compact=True), "v2", 2)
    document = {"images": [{"image": f"{HOST}/app@{old}", "holder": "EKS deployment shop/web"}]}
    local_ecr.client("ssm").put_parameter(
        Name="/sweeper/in-use", Value=json.dumps(document), Type="String"
    )
    settings = Settings(keep_tagged_images=1, extra_image_references="ssm:/sweeper/in-use")
    summary = sweep(local_ecr, settings)
    assert old in remaining(local_ecr, "app")
    kept = next(d for d in summary.results[0].plan.decisions if d.image.digest == old)  # type: ignore[union-attr]
    assert "EKS deployment shop/web" in kept.reason


def test_when_images_in_use_cannot_be_listed_nothing_is_deleted(
    local_ecr: LocalEcr, make: ManifestFactory
) -> None:
    push(local_ecr, "app", make.image(compact=True), None, 30)
    local_ecr.faults.error(500, "ListClusters", service="ecs")
    summary = sweep(local_ecr)
    assert len(remaining(local_ecr, "app")) == 1
    assert summary.results[0].kept_by_protection["uncertain"] == 1
    assert summary.to_dict()["repositoriesUncertain"] == summary.failures == 1
    assert "images in use could not be read from ECS" in summary.results[0].plan.decisions[0].reason  # type: ignore[union-attr]


def test_a_tag_added_before_the_delete_saves_a_tagged_image(
    local_ecr: LocalEcr, make: ManifestFactory
) -> None:
    old = make.image(compact=True)
    push(local_ecr, "app", old, "v1", 30)
    push(local_ecr, "app", make.image(compact=True), "v2", 2)
    client = local_ecr.client("ecr")

    def retag(**_: Any) -> None:
        local_ecr.push_image("app", old.body, "hotfix", pushed_at=ago(30))

    client.meta.events.register_first("before-call.ecr.BatchDeleteImage", retag)
    summary = sweeper(local_ecr, KEEP_ONE, client=client).run()
    assert remaining(local_ecr, "app")[old.digest] == ("hotfix",)
    assert summary.failures == 0


def test_a_subject_that_survives_its_delete_keeps_its_signature_and_sbom(
    local_ecr: LocalEcr, make: ManifestFactory
) -> None:
    old = make.image(oci=True)
    push(local_ecr, "app", old, "v1", 30)
    push(local_ecr, "app", make.image(compact=True), "v2", 2)
    signature = push(local_ecr, "app", make.cosign("sig"), cosign_tag(old.digest, "sig"), 30)
    sbom = push(local_ecr, "app", make.referrer(old, SPDX_JSON), None, 30)
    client = local_ecr.client("ecr")
    calls = {"BatchDeleteImage": 0}

    def tag_just_before_the_first_delete(**_: Any) -> None:
        calls["BatchDeleteImage"] += 1
        if calls["BatchDeleteImage"] == 1:
            local_ecr.push_image("app", old.body, "hotfix", pushed_at=ago(30))

    client.meta.events.register_first(
        "before-call.ecr.BatchDeleteImage", tag_just_before_the_first_delete
    )
    summary = sweeper(local_ecr, KEEP_ONE, client=client).run()
    left = remaining(local_ecr, "app")
    assert left[old.digest] == ("hotfix",)
    assert signature in left and sbom in left, "followers stay while their subject stays"
    assert summary.total("images_deleted") == 0 and calls["BatchDeleteImage"] == 1


def test_a_tag_moved_to_a_new_image_before_the_delete_deletes_neither(
    local_ecr: LocalEcr, make: ManifestFactory
) -> None:
    old = make.image(compact=True)
    push(local_ecr, "app", old, "v1", 30)
    push(local_ecr, "app", make.image(compact=True), "v2", 2)
    newer = make.image(compact=True)
    client = local_ecr.client("ecr")

    def move_tag(**_: Any) -> None:
        local_ecr.push_image("app", newer.body, "v1", pushed_at=NOW)

    client.meta.events.register_first("before-call.ecr.BatchDeleteImage", move_tag)
    summary = sweeper(local_ecr, KEEP_ONE, client=client).run()
    left = remaining(local_ecr, "app")
    assert left[newer.digest] == ("v1",), "the image that took the tag must survive"
    assert left[old.digest] == (), "the old image lost its tag to the push, not to us"
    (failure,) = summary.results[0].delete_failures
    assert failure.code == "ImageTagDoesNotMatchDigest"


def test_an_untagged_image_tagged_during_the_run_is_kept(
    local_ecr: LocalEcr, make: ManifestFactory
) -> None:
    leftover = make.image(compact=True)
    push(local_ecr, "app", leftover, None, 30)
    client = local_ecr.client("ecr")

    def tag_before_the_recheck(**_: Any) -> None:
        local_ecr.push_image("app", leftover.body, "rescued", pushed_at=ago(30))

    client.meta.events.register_first("before-call.ecr.ListImages", tag_before_the_recheck)
    summary = sweeper(local_ecr, client=client).run()
    assert remaining(local_ecr, "app") == {leftover.digest: ("rescued",)}
    assert summary.results[0].kept_by_protection["changed-during-run"] == 1
    assert summary.total("images_deleted") == 0


def test_a_child_referenced_by_an_index_pushed_during_the_run_is_reported_not_lost(
    local_ecr: LocalEcr, make: ManifestFactory
) -> None:
    child = make.image(oci=True)
    push(local_ecr, "app", child, None, 30)
    client = local_ecr.client("ecr")
    index = make.index([(child, "linux/amd64")])

    def push_index_first(**_: Any) -> None:
        local_ecr.push_image("app", index.body, "new", pushed_at=NOW, media_type=index.media_type)

    client.meta.events.register_first("before-call.ecr.BatchDeleteImage", push_index_first)
    summary = sweeper(local_ecr, client=client).run()
    assert child.digest in remaining(local_ecr, "app")
    failure = summary.results[0].delete_failures[0]
    assert failure.code == "ImageReferencedByManifestList"
    assert summary.failures == 1
