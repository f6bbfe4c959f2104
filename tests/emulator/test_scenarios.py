"""Seeded registries contain what their scenario promises, checked through boto3."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local_ecr import LocalEcr, SeedResult, parse_scenario

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def describe_all(ecr: Any, repo: str) -> list[dict[str, Any]]:
    return [
        detail
        for page in ecr.get_paginator("describe_images").paginate(repositoryName=repo)
        for detail in page["imageDetails"]
    ]


def assert_registry_matches(ecr: Any, result: SeedResult) -> None:
    for repo in result.repositories:
        details = {d["imageDigest"]: d for d in describe_all(ecr, repo)}
        seeded = {image.digest: image for image in result.in_repository(repo)}
        assert details.keys() == seeded.keys()
        for digest, image in seeded.items():
            assert tuple(details[digest].get("imageTags", ())) == image.tags
            assert details[digest]["imagePushedAt"] == image.pushed_at


def test_demo_has_what_a_default_sweep_needs(local_ecr: LocalEcr, ecr: Any) -> None:
    result = local_ecr.seed("demo", now=NOW)
    assert_registry_matches(ecr, result)
    assert 3 <= len(result.repositories) <= 5
    assert 35 <= len(result.images) <= 55
    day = timedelta(days=1)
    untagged = result.of_kind("untagged")
    assert any(NOW - image.pushed_at > day for image in untagged)
    assert sum(NOW - image.pushed_at < day for image in untagged) >= 2
    web = [image for image in result.in_repository("web") if image.tags]
    newest_ten = sorted(web, key=lambda image: image.pushed_at, reverse=True)[:10]
    latest = result.with_tag("web", "latest")
    assert latest not in newest_ten  # `latest` sits on an old image
    assert result.notes["old_tagged_latest"] == (latest.digest,)
    assert len(web) > 10
    assert result.of_kind("index") and result.of_kind("child") and result.of_kind("signature")


def test_seeding_is_deterministic(local_ecr: LocalEcr) -> None:
    first = local_ecr.seed("ci:2x10", now=NOW, seed=7)
    local_ecr.reset()
    again = local_ecr.seed("ci:2x10", now=NOW, seed=7)
    local_ecr.reset()
    other = local_ecr.seed("ci:2x10", now=NOW, seed=8)
    assert first.images == again.images
    assert {i.digest for i in first.images} != {i.digest for i in other.images}


def test_ci_tags(local_ecr: LocalEcr, ecr: Any) -> None:
    result = local_ecr.seed("ci:2x40", now=NOW)
    assert_registry_matches(ecr, result)
    pattern = re.compile(r"^(sha-[0-9a-f]{7}|pr-\d+|v\d+\.\d+\.\d+|main|latest)$")
    tags = [tag for image in result.images for tag in image.tags]
    assert tags and all(pattern.match(tag) for tag in tags)
    for repo in result.repositories:
        repo_tags = [tag for image in result.in_repository(repo) for tag in image.tags]
        assert repo_tags.count("main") == 1 and repo_tags.count("latest") == 1
        assert any(tag.startswith("pr-") for tag in repo_tags)
        assert any(re.match(r"v\d", tag) for tag in repo_tags)
    assert result.of_kind("untagged")
    spread = max(i.pushed_at for i in result.images) - min(i.pushed_at for i in result.images)
    assert spread > timedelta(days=60)


def test_multi_arch_indexes_share_children_and_carry_attestations(
    local_ecr: LocalEcr, ecr: Any
) -> None:
    result = local_ecr.seed("multi-arch:2x6", now=NOW)
    assert_registry_matches(ecr, result)
    assert any(len(child.parents) > 1 for child in result.of_kind("child"))
    assert any(not index.tags for index in result.of_kind("index"))  # moved `nightly`
    for repo in result.repositories:
        indexes = [i for i in result.in_repository(repo) if i.kind == "index"]
        fetched = ecr.batch_get_image(
            repositoryName=repo, imageIds=[{"imageDigest": i.digest} for i in indexes]
        )["images"]
        listed: dict[str, str] = {}
        for image in fetched:
            for entry in json.loads(image["imageManifest"])["manifests"]:
                kind = entry.get("annotations", {}).get("vnd.docker.reference.type", "child")
                listed[entry["digest"]] = kind
        for image in result.in_repository(repo):
            if image.kind in ("child", "attestation"):
                expected = "child" if image.kind == "child" else "attestation-manifest"
                assert listed[image.digest] == expected
        child = next(i for i in result.in_repository(repo) if i.kind == "child")
        failures = ecr.batch_delete_image(
            repositoryName=repo, imageIds=[{"imageDigest": child.digest}]
        )["failures"]
        assert failures[0]["failureCode"] == "ImageReferencedByManifestList"


def test_signed_cosign_tags_and_oci_referrers(local_ecr: LocalEcr, ecr: Any) -> None:
    result = local_ecr.seed("signed:1x6", now=NOW)
    assert_registry_matches(ecr, result)
    signatures = result.of_kind("signature")
    assert {tag.rsplit(".", 1)[1] for s in signatures for tag in s.tags} == {"sig", "att", "sbom"}
    for signature in signatures:
        (tag,) = signature.tags
        assert re.fullmatch(r"sha256-[0-9a-f]{64}\.(sig|att|sbom)", tag)
        assert signature.subject is not None
        assert tag.startswith(signature.subject.replace(":", "-"))
    repo = result.repositories[0]
    present = {image.digest for image in result.in_repository(repo)}
    orphans = [s for s in signatures if s.subject not in present]
    assert [s.subject for s in orphans] == list(result.notes["orphan_signature_subjects"])
    referrers = result.of_kind("referrer")
    assert referrers
    for referrer in referrers:
        assert referrer.subject is not None
        found = ecr.list_image_referrers(
            repositoryName=repo, subjectId={"imageDigest": referrer.subject}
        )["referrers"]
        assert referrer.digest in {r["digest"] for r in found}
        details = ecr.describe_images(
            repositoryName=repo, imageIds=[{"imageDigest": referrer.digest}]
        )["imageDetails"]
        assert details[0]["subjectManifestDigest"] == referrer.subject


def test_untagged_leftovers_spread_over_months(local_ecr: LocalEcr, ecr: Any) -> None:
    result = local_ecr.seed("untagged:1x20", now=NOW)
    assert_registry_matches(ecr, result)
    leftovers = result.of_kind("untagged")
    assert len(leftovers) == 18  # every push but the holders of `main` and `develop`
    assert max(NOW - image.pushed_at for image in leftovers) > timedelta(days=90)


def test_large_seeds_fast_and_completely(local_ecr: LocalEcr, ecr: Any) -> None:
    started = time.perf_counter()
    result = local_ecr.seed("large:50x200", now=NOW)
    elapsed = time.perf_counter() - started
    assert elapsed < 8, f"seeding 10,000 images took {elapsed:.1f}s"
    assert len(result.repositories) == 50 and len(result.images) == 10_000
    assert len(describe_all(ecr, "large-0042")) == 200
    repos = [
        repo["repositoryName"]
        for page in ecr.get_paginator("describe_repositories").paginate()
        for repo in page["repositories"]
    ]
    assert len(repos) == 50
    local_ecr.reset()
    assert len(local_ecr.seed("large:2\u00d73", now=NOW).images) == 6


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "nope",
            "accepted: demo, archived, ci[:RxI], multi-arch[:RxI], signed[:RxI], untagged[:RxI], "
            "large",
        ),
        ("large", "needs a size"),
        ("large:50", "expected RxI"),
        ("large:0x5", "must be 1..10000"),
        ("demo:2x2", "fixed size"),
        ("large:5000x5000", "more than 1000000"),
    ],
)
def test_bad_scenarios_are_refused_with_what_is_accepted(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_scenario(spec)
