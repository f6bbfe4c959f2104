"""Image semantics that moto gets wrong: digests, moving tags, index children, ImageDetail
fields, pull times, referrers and the clock, all seen through boto3."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers.emulator import OCI, OCI_INDEX, Manifests, digest_of, push

from local_ecr import LocalEcr


def detail(ecr: Any, repo: str, digest: str) -> dict[str, Any]:
    details = ecr.describe_images(repositoryName=repo, imageIds=[{"imageDigest": digest}])
    return dict(details["imageDetails"][0])


def test_digest_is_sha256_of_the_manifest_bytes(ecr: Any, manifests: Manifests) -> None:
    ecr.create_repository(repositoryName="app")
    image, index_children = manifests.image(), [manifests.image(), manifests.image()]
    assert push(ecr, "app", image, "v1") == digest_of(image)
    for child in index_children:
        assert push(ecr, "app", child) == digest_of(child)
    index = manifests.index(*index_children)
    assert push(ecr, "app", index, "multi") == digest_of(index)
    listed = {i["imageDigest"] for i in ecr.list_images(repositoryName="app")["imageIds"]}
    assert listed == {digest_of(m) for m in [image, index, *index_children]}


def test_a_digest_that_does_not_match_the_manifest_is_refused(
    ecr: Any, manifests: Manifests
) -> None:
    ecr.create_repository(repositoryName="app")
    image = manifests.image()
    with pytest.raises(ClientError) as error:
        ecr.put_image(
            repositoryName="app",
            imageManifest=image,
            imageTag="v1",
            imageDigest="sha256:" + "0" * 64,
        )
    assert error.value.response["Error"]["Code"] == "ImageDigestDoesNotMatchException"
    ecr.put_image(repositoryName="app", imageManifest=image, imageDigest=digest_of(image))


def test_pushing_a_held_tag_moves_it_and_leaves_the_old_image_untagged(
    ecr: Any, manifests: Manifests
) -> None:
    ecr.create_repository(repositoryName="app")
    old = push(ecr, "app", manifests.image(), "latest")
    ecr.put_image(repositoryName="app", imageManifest=manifests.image(), imageTag="v2")
    new = push(ecr, "app", manifests.image(), "latest")
    assert detail(ecr, "app", new)["imageTags"] == ["latest"]
    old_detail = detail(ecr, "app", old)
    assert "imageTags" not in old_detail  # still there, untagged
    untagged = ecr.list_images(repositoryName="app", filter={"tagStatus": "UNTAGGED"})
    assert untagged["imageIds"] == [{"imageDigest": old}]
    # Re-tagging an existing image moves the tag back without a new image.
    assert (
        push(
            ecr,
            "app",
            ecr.batch_get_image(repositoryName="app", imageIds=[{"imageDigest": old}])["images"][0][
                "imageManifest"
            ],
            "latest",
        )
        == old
    )
    assert "imageTags" not in detail(ecr, "app", new)
    assert len(ecr.describe_images(repositoryName="app")["imageDetails"]) == 3


def test_same_manifest_and_tag_again_is_image_already_exists(
    ecr: Any, manifests: Manifests
) -> None:
    ecr.create_repository(repositoryName="app")
    image = manifests.image()
    push(ecr, "app", image, "v1")
    with pytest.raises(ClientError) as error:
        push(ecr, "app", image, "v1")
    assert error.value.response["Error"]["Code"] == "ImageAlreadyExistsException"


def test_immutable_repository_refuses_to_move_a_tag(ecr: Any, manifests: Manifests) -> None:
    ecr.create_repository(repositoryName="app", imageTagMutability="IMMUTABLE")
    push(ecr, "app", manifests.image(), "v1")
    with pytest.raises(ClientError) as error:
        push(ecr, "app", manifests.image(), "v1")
    assert error.value.response["Error"]["Code"] == "ImageTagAlreadyExistsException"


def test_delete_by_tag_untags_and_delete_by_digest_removes_every_tag(
    ecr: Any, manifests: Manifests
) -> None:
    ecr.create_repository(repositoryName="app")
    image = manifests.image()
    digest = push(ecr, "app", image, "v1")
    push(ecr, "app", image, "stable")
    response = ecr.batch_delete_image(repositoryName="app", imageIds=[{"imageTag": "v1"}])
    assert response["imageIds"] == [{"imageDigest": digest, "imageTag": "v1"}]
    assert detail(ecr, "app", digest)["imageTags"] == ["stable"]
    response = ecr.batch_delete_image(repositoryName="app", imageIds=[{"imageDigest": digest}])
    assert response["imageIds"] == [{"imageDigest": digest, "imageTag": "stable"}]
    assert ecr.describe_images(repositoryName="app")["imageDetails"] == []
    response = ecr.batch_delete_image(repositoryName="app", imageIds=[{"imageDigest": digest}])
    assert response["failures"][0]["failureCode"] == "ImageNotFound"


def test_deleting_untagged_image_by_digest_reports_it(ecr: Any, manifests: Manifests) -> None:
    ecr.create_repository(repositoryName="app")
    digest = push(ecr, "app", manifests.image())
    response = ecr.batch_delete_image(repositoryName="app", imageIds=[{"imageDigest": digest}])
    assert response["imageIds"] == [{"imageDigest": digest}]
    assert response["failures"] == []


def test_child_of_an_index_cannot_be_deleted_until_the_index_is(
    ecr: Any, manifests: Manifests
) -> None:
    ecr.create_repository(repositoryName="app")
    amd, arm = manifests.image(), manifests.image()
    amd_digest, arm_digest = push(ecr, "app", amd), push(ecr, "app", arm)
    index_digest = push(ecr, "app", manifests.index(amd, arm), "v1")
    response = ecr.batch_delete_image(
        repositoryName="app", imageIds=[{"imageDigest": amd_digest}, {"imageDigest": arm_digest}]
    )
    assert [f["failureCode"] for f in response["failures"]] == ["ImageReferencedByManifestList"] * 2
    assert response["imageIds"] == []
    assert len(ecr.describe_images(repositoryName="app")["imageDetails"]) == 3
    ecr.batch_delete_image(repositoryName="app", imageIds=[{"imageDigest": index_digest}])
    response = ecr.batch_delete_image(
        repositoryName="app", imageIds=[{"imageDigest": amd_digest}, {"imageDigest": arm_digest}]
    )
    assert response["failures"] == []
    assert ecr.describe_images(repositoryName="app")["imageDetails"] == []


def test_index_referencing_a_missing_child_is_refused(ecr: Any, manifests: Manifests) -> None:
    ecr.create_repository(repositoryName="app")
    present, missing = manifests.image(), manifests.image()
    push(ecr, "app", present)
    with pytest.raises(ClientError) as error:
        push(ecr, "app", manifests.index(present, missing), "v1")
    assert error.value.response["Error"]["Code"] == "ReferencedImagesNotFoundException"


def test_image_detail_fields(ecr: Any, manifests: Manifests) -> None:
    ecr.create_repository(repositoryName="app")
    small, big = manifests.image((100, 200)), manifests.image((5000, 7000), oci=True)
    small_digest, big_digest = push(ecr, "app", small, "small"), push(ecr, "app", big)
    index_digest = push(ecr, "app", manifests.index(small, big), "multi")
    sbom_digest = push(ecr, "app", manifests.referrer(big, "application/spdx+json"))

    small_detail = detail(ecr, "app", small_digest)
    assert small_detail["imageSizeInBytes"] == 300
    assert small_detail["artifactMediaType"] == "application/vnd.docker.container.image.v1+json"
    assert small_detail["imageManifestMediaType"] == json.loads(small)["mediaType"]
    assert "subjectManifestDigest" not in small_detail
    assert detail(ecr, "app", big_digest)["artifactMediaType"] == (
        "application/vnd.oci.image.config.v1+json"
    )
    index_detail = detail(ecr, "app", index_digest)
    assert index_detail["imageSizeInBytes"] == 12000  # the largest manifest it lists
    assert index_detail["imageManifestMediaType"] == OCI_INDEX
    sbom = detail(ecr, "app", sbom_digest)
    assert sbom["subjectManifestDigest"] == big_digest
    assert sbom["artifactMediaType"] == "application/spdx+json"
    assert sbom["imageManifestMediaType"] == OCI
    for each in (small_detail, index_detail, sbom):
        assert "lastRecordedPullTime" not in each  # never pulled yet
        assert each["imageStatus"] == "ACTIVE"


def test_pull_records_last_recorded_pull_time_at_most_daily(
    local_ecr: LocalEcr, ecr: Any, manifests: Manifests
) -> None:
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    local_ecr.clock.set(start)
    ecr.create_repository(repositoryName="app")
    digest = push(ecr, "app", manifests.image(), "v1")
    pulled = ecr.batch_get_image(repositoryName="app", imageIds=[{"imageTag": "v1"}])
    assert pulled["images"][0]["imageId"] == {"imageDigest": digest, "imageTag": "v1"}
    assert detail(ecr, "app", digest)["lastRecordedPullTime"] == start
    local_ecr.clock.advance(timedelta(hours=3))
    ecr.batch_get_image(repositoryName="app", imageIds=[{"imageDigest": digest}])
    assert detail(ecr, "app", digest)["lastRecordedPullTime"] == start
    local_ecr.clock.advance(timedelta(hours=22))
    ecr.batch_get_image(repositoryName="app", imageIds=[{"imageDigest": digest}])
    assert detail(ecr, "app", digest)["lastRecordedPullTime"] == start + timedelta(hours=25)


def test_batch_get_image_reports_missing_images(ecr: Any, manifests: Manifests) -> None:
    ecr.create_repository(repositoryName="app")
    push(ecr, "app", manifests.image(), "v1")
    response = ecr.batch_get_image(
        repositoryName="app", imageIds=[{"imageTag": "v1"}, {"imageTag": "nope"}]
    )
    assert len(response["images"]) == 1
    assert response["failures"][0]["failureCode"] == "ImageNotFound"
    assert response["failures"][0]["imageId"] == {"imageTag": "nope"}


def test_list_image_referrers(ecr: Any, manifests: Manifests) -> None:
    ecr.create_repository(repositoryName="app")
    subject = manifests.image(oci=True)
    subject_digest = push(ecr, "app", subject, "v1")
    sbom = push(ecr, "app", manifests.referrer(subject, "application/spdx+json"))
    bundle = push(ecr, "app", manifests.referrer(subject, "application/vnd.dev.sigstore.bundle"))
    push(ecr, "app", manifests.referrer(manifests.image(), "application/spdx+json"))
    found = ecr.list_image_referrers(
        repositoryName="app", subjectId={"imageDigest": subject_digest}
    )
    assert {r["digest"] for r in found["referrers"]} == {sbom, bundle}
    assert {r["artifactType"] for r in found["referrers"]} == {
        "application/spdx+json",
        "application/vnd.dev.sigstore.bundle",
    }
    only_sbom = ecr.list_image_referrers(
        repositoryName="app",
        subjectId={"imageDigest": subject_digest},
        filter={"artifactTypes": ["application/spdx+json"]},
    )
    assert [r["digest"] for r in only_sbom["referrers"]] == [sbom]
    first = ecr.list_image_referrers(
        repositoryName="app", subjectId={"imageDigest": subject_digest}, maxResults=1
    )
    assert len(first["referrers"]) == 1 and "nextToken" in first


def test_clock_sets_push_time_and_push_time_can_be_changed(
    local_ecr: LocalEcr, ecr: Any, manifests: Manifests
) -> None:
    months_ago = datetime(2026, 1, 15, 8, 30, tzinfo=UTC)
    local_ecr.clock.set(months_ago)
    ecr.create_repository(repositoryName="app")
    digest = push(ecr, "app", manifests.image(), "v1")
    assert detail(ecr, "app", digest)["imagePushedAt"] == months_ago
    later = months_ago + timedelta(days=90)
    local_ecr.set_pushed_at("app", digest, later)
    assert detail(ecr, "app", digest)["imagePushedAt"] == later
    direct = local_ecr.push_image(
        "other", manifests.image(), "v9", pushed_at=datetime(2025, 6, 1, tzinfo=UTC)
    )
    assert detail(ecr, "other", direct)["imagePushedAt"] == datetime(2025, 6, 1, tzinfo=UTC)
    local_ecr.clock.resume()
    fresh = push(ecr, "app", manifests.image(), "v2")
    pushed = detail(ecr, "app", fresh)["imagePushedAt"]
    assert abs(pushed - datetime.now(UTC)) < timedelta(minutes=1)
    with pytest.raises(KeyError):
        local_ecr.set_pushed_at("app", "sha256:" + "f" * 64, later)


def test_repository_not_found_is_the_real_error(ecr: Any) -> None:
    for call in (
        lambda: ecr.describe_images(repositoryName="ghost"),
        lambda: ecr.list_images(repositoryName="ghost"),
        lambda: ecr.batch_delete_image(repositoryName="ghost", imageIds=[{"imageTag": "x"}]),
        lambda: ecr.describe_repositories(repositoryNames=["ghost"]),
    ):
        with pytest.raises(ClientError) as error:
            call()
        assert error.value.response["Error"]["Code"] == "RepositoryNotFoundException"
