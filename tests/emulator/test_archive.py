"""ECR's archive tier in the emulator: imageStatus and its filter, UpdateImageStorageClass both
ways (through ACTIVATING), pulls of archived images failing, and the "archived" scenario."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers.emulator import Manifests, push

from ecr_sweeper.core import overrides, planner
from ecr_sweeper.core.model import Image, ImageStatus, image_from_detail
from ecr_sweeper.core.settings import Settings
from local_ecr import LocalEcr

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def statuses(ecr: Any, repo: str, image_status: str | None = None) -> dict[str, str]:
    kwargs: dict[str, Any] = {"repositoryName": repo}
    if image_status is not None:
        kwargs["filter"] = {"imageStatus": image_status}
    return {
        detail["imageDigest"]: detail["imageStatus"]
        for page in ecr.get_paginator("describe_images").paginate(**kwargs)
        for detail in page["imageDetails"]
    }


def archive(ecr: Any, repo: str, digest: str, target: str = "ARCHIVE") -> dict[str, Any]:
    response: dict[str, Any] = ecr.update_image_storage_class(
        repositoryName=repo, imageId={"imageDigest": digest}, targetStorageClass=target
    )
    return response


@pytest.fixture
def frozen(local_ecr: LocalEcr) -> LocalEcr:
    local_ecr.clock.set(NOW)
    return local_ecr


def test_archiving_hides_an_image_from_the_default_listing_and_the_filter_finds_it(
    frozen: LocalEcr, ecr: Any, manifests: Manifests
) -> None:
    ecr.create_repository(repositoryName="app")
    kept = push(ecr, "app", manifests.image(), "v2")
    cold = push(ecr, "app", manifests.image(), "v1")
    response = archive(ecr, "app", cold)
    assert response["imageStatus"] == "ARCHIVED"
    assert response["imageId"] == {"imageDigest": cold}
    assert statuses(ecr, "app") == {kept: "ACTIVE"}  # real ECR's default: ACTIVE only
    assert statuses(ecr, "app", "ACTIVE") == {kept: "ACTIVE"}
    assert statuses(ecr, "app", "ARCHIVED") == {cold: "ARCHIVED"}
    assert statuses(ecr, "app", "ANY") == {kept: "ACTIVE", cold: "ARCHIVED"}
    listed = ecr.list_images(repositoryName="app")["imageIds"]
    assert [entry["imageDigest"] for entry in listed] == [kept]
    detail = ecr.describe_images(repositoryName="app", imageIds=[{"imageDigest": cold}])
    (cold_detail,) = detail["imageDetails"]
    assert cold_detail["imageStatus"] == "ARCHIVED"
    assert cold_detail["lastArchivedAt"] == NOW
    assert "lastActivatedAt" not in cold_detail
    image = image_from_detail(cold_detail)
    assert (image.status, image.last_archived_at) == (ImageStatus.ARCHIVED, NOW)


def test_an_archived_image_cant_be_pulled(frozen: LocalEcr, ecr: Any, manifests: Manifests) -> None:
    ecr.create_repository(repositoryName="app")
    cold = push(ecr, "app", manifests.image(), "v1")
    archive(ecr, "app", cold)
    for image_id in ({"imageDigest": cold}, {"imageTag": "v1"}):
        response = ecr.batch_get_image(repositoryName="app", imageIds=[image_id])
        assert response["images"] == []
        (failure,) = response["failures"]
        assert failure["failureCode"] == "ImageInaccessible"
        assert "ARCHIVED" in failure["failureReason"]


def test_restoring_goes_through_activating_for_the_configured_delay(
    frozen: LocalEcr, ecr: Any, manifests: Manifests, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(frozen, "activation_delay", timedelta(minutes=5))
    ecr.create_repository(repositoryName="app")
    cold = push(ecr, "app", manifests.image(), "v1")
    archive(ecr, "app", cold)
    assert archive(ecr, "app", cold, "STANDARD")["imageStatus"] == "ACTIVATING"
    assert statuses(ecr, "app", "ACTIVATING") == {cold: "ACTIVATING"}
    assert statuses(ecr, "app") == {}
    pulled = ecr.batch_get_image(repositoryName="app", imageIds=[{"imageDigest": cold}])
    assert pulled["failures"][0]["failureCode"] == "ImageInaccessible"

    frozen.clock.advance(timedelta(minutes=4, seconds=59))
    assert statuses(ecr, "app", "ANY") == {cold: "ACTIVATING"}
    frozen.clock.advance(timedelta(seconds=1))
    assert statuses(ecr, "app") == {cold: "ACTIVE"}
    (detail,) = ecr.describe_images(repositoryName="app")["imageDetails"]
    assert detail["lastActivatedAt"] == NOW + timedelta(minutes=5)
    assert detail["lastArchivedAt"] == NOW
    pulled = ecr.batch_get_image(repositoryName="app", imageIds=[{"imageDigest": cold}])
    assert pulled["failures"] == [] and len(pulled["images"]) == 1


def test_a_zero_delay_restores_at_once(
    frozen: LocalEcr, ecr: Any, manifests: Manifests, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(frozen, "activation_delay", timedelta(0))
    ecr.create_repository(repositoryName="app")
    cold = push(ecr, "app", manifests.image(), "v1")
    archive(ecr, "app", cold)
    assert archive(ecr, "app", cold, "STANDARD")["imageStatus"] == "ACTIVE"


@pytest.mark.parametrize(
    ("prepare", "target", "code"),
    [
        ("ARCHIVE", "ARCHIVE", "ImageStorageClassUpdateNotSupportedException"),
        (None, "STANDARD", "ImageStorageClassUpdateNotSupportedException"),
        (None, "GLACIER", "ValidationException"),
    ],
)
def test_storage_class_updates_that_make_no_sense_are_refused(
    frozen: LocalEcr,
    ecr: Any,
    manifests: Manifests,
    prepare: str | None,
    target: str,
    code: str,
) -> None:
    ecr.create_repository(repositoryName="app")
    digest = push(ecr, "app", manifests.image(), "v1")
    if prepare is not None:
        archive(ecr, "app", digest, prepare)
    with pytest.raises(ClientError) as error:
        archive(ecr, "app", digest, target)
    assert error.value.response["Error"]["Code"] == code


def test_archiving_an_unknown_image_or_repository_fails_like_ecr(
    frozen: LocalEcr, ecr: Any
) -> None:
    ecr.create_repository(repositoryName="app")
    with pytest.raises(ClientError) as error:
        archive(ecr, "app", "sha256:" + "a" * 64)
    assert error.value.response["Error"]["Code"] == "ImageNotFoundException"
    with pytest.raises(ClientError) as error:
        archive(ecr, "nope", "sha256:" + "a" * 64)
    assert error.value.response["Error"]["Code"] == "RepositoryNotFoundException"


def test_an_unknown_image_status_filter_is_refused(frozen: LocalEcr, ecr: Any) -> None:
    ecr.create_repository(repositoryName="app")
    with pytest.raises(ClientError) as error:
        ecr.describe_images(repositoryName="app", filter={"imageStatus": "COLD"})
    assert error.value.response["Error"]["Code"] == "ValidationException"


# --- the "archived" scenario, and the acceptance run over it -----------------------------


def listing(ecr: Any, repo: str) -> list[Image]:
    """What the engine should do: list with an explicit filter, imageStatus=ANY."""
    return [
        image_from_detail(detail)
        for page in ecr.get_paginator("describe_images").paginate(
            repositoryName=repo, filter={"imageStatus": "ANY"}
        )
        for detail in page["imageDetails"]
    ]


def test_the_archived_scenario_holds_archived_and_activating_images(
    frozen: LocalEcr, ecr: Any
) -> None:
    result = frozen.seed("archived", now=NOW)
    app = result.in_repository("archive-app")
    assert sorted(image.status for image in app) == ["ACTIVE"] * 12 + ["ARCHIVED"] * 5
    assert {image.tags[0] for image in app if image.status == "ARCHIVED"} == set(
        result.notes["archived_tags"]
    )
    assert statuses(ecr, "archive-app", "ANY") == {image.digest: image.status for image in app}
    mixed = {image.digest: image for image in result.in_repository("archive-mixed")}
    assert statuses(ecr, "archive-mixed", "ANY") == {d: i.status for d, i in mixed.items()}
    assert {image.status for image in mixed.values()} == {"ACTIVE", "ARCHIVED", "ACTIVATING"}
    index = next(image for image in mixed.values() if image.kind == "index")
    assert index.status == "ARCHIVED"
    assert all(mixed[d].status == "ARCHIVED" for d in mixed if index.digest in mixed[d].parents)
    assert result.to_dict()["images"][0]["imageStatus"] in ("ACTIVE", "ARCHIVED")


@pytest.mark.parametrize("action", ["delete", "archive"])
def test_acceptance_12_active_and_5_archived(frozen: LocalEcr, ecr: Any, action: str) -> None:
    """Default settings: 10 active kept, 2 oldest active deleted, 5 archived left alone. With
    expiredImageAction=archive: 10 active and 7 archived, nothing deleted. The planner decides;
    the plan is applied here with the calls the engine will make."""
    frozen.seed("archived", now=NOW)
    settings = Settings(expired_image_action=action)
    rules = overrides.repository_rules(settings, {})
    plan = planner.plan_repository("archive-app", listing(ecr, "archive-app"), rules, now=NOW)
    for decision in plan.transitioned:
        archive(ecr, "archive-app", decision.image.digest)
    if plan.expired:
        ecr.batch_delete_image(
            repositoryName="archive-app",
            imageIds=[{"imageDigest": d.image.digest} for d in plan.expired],
        )
    after = list(statuses(ecr, "archive-app", "ANY").values())
    if action == "delete":
        assert len(plan.expired) == 2 and not plan.transitioned
        assert sorted(after) == ["ACTIVE"] * 10 + ["ARCHIVED"] * 5
    else:
        assert len(plan.transitioned) == 2 and not plan.expired
        assert sorted(after) == ["ACTIVE"] * 10 + ["ARCHIVED"] * 7
