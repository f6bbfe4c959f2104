"""The ECR operations the emulator answers itself instead of moto, with real ECR's rules.

Served here: PutImage, DescribeImages, ListImages, DescribeRepositories, BatchGetImage,
BatchDeleteImage, ListImageReferrers and UpdateImageStorageClass (the archive tier). Every other
ECR operation goes to moto unchanged.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from moto.core.exceptions import JsonRESTError, ServiceException

from local_ecr.store import (
    EcrError,
    RepoView,
    all_repositories,
    backend,
    check_image_id,
    failed,
    image_detail,
    invalid_parameter,
    meta_of,
    open_repository,
    repository_not_found,
)

MAX_IMAGE_IDS = 100
IMAGE_STATUSES = ("ACTIVE", "ARCHIVED", "ACTIVATING", "ANY")
STORAGE_CLASSES = ("STANDARD", "ARCHIVE")
DEFAULT_ACTIVATION_DELAY = timedelta(minutes=20)
"""ECR restores an archived image "within 20 minutes"."""
ARCHIVED_PULL_FAILURE = "ImageInaccessible"
"""How BatchGetImage (a pull) fails for an archived or activating image. The user guide says only
that pulls of archived images "fail with a 404 error". ImageFailureCode gained ImageInaccessible
with the archive tier (botocore 1.44.8 has it, older API references don't), so it is the likely
code; ImageNotFound would wrongly say the image is gone. An inference: see docs/local-ecr.md."""
_TOKEN_VERSION = "\x01v1"
T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    """Who is asking: the account and region moto would use for the same request."""

    account_id: str
    region: str
    now: Callable[[], datetime]
    digest_and_tag_deletes_image: bool = False
    """Which reading of BatchDeleteImage `{imageDigest, imageTag}` to serve (see RepoView)."""
    activation_delay: timedelta = DEFAULT_ACTIVATION_DELAY


@dataclass(frozen=True)
class PageLimits:
    default: int
    maximum: int
    error_code: str = "InvalidParameterException"


ECR_PAGES = PageLimits(default=100, maximum=1000)
REFERRER_PAGES = PageLimits(default=20, maximum=50, error_code="ValidationException")


def _constraint(parameter: str, text: str, code: str = "InvalidParameterException") -> EcrError:
    if code == "ValidationException":
        return EcrError(
            code,
            f"1 validation error detected: Value at '{parameter}' failed to "
            f"satisfy constraint: {text}",
        )
    return EcrError(
        code, f"Invalid parameter at '{parameter}' failed to satisfy constraint: '{text}'"
    )


def _max_results(params: dict[str, Any], limits: PageLimits) -> int:
    value = params.get("maxResults")
    if value is None:
        return limits.default
    if not isinstance(value, int) or isinstance(value, bool):
        raise _constraint("maxResults", "Member must be an integer", limits.error_code)
    if value < 1:
        raise _constraint(
            "maxResults", "Member must have value greater than or equal to 1", limits.error_code
        )
    if value > limits.maximum:
        raise _constraint(
            "maxResults",
            f"Member must have value less than or equal to {limits.maximum}",
            limits.error_code,
        )
    return value


def _encode_token(operation: str, scope: str, after: Sequence[Any]) -> str:
    # A leading version byte keeps the token opaque: botocore's paginator would otherwise take a
    # base64 JSON token for one of its own resume tokens.
    raw = _TOKEN_VERSION + json.dumps({"op": operation, "scope": scope, "after": list(after)})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_token(token: Any, operation: str, scope: str, code: str) -> list[Any]:
    try:
        raw = base64.b64decode(str(token), altchars=b"-_", validate=True).decode()
        if not raw.startswith(_TOKEN_VERSION):
            raise ValueError("unknown token version")
        data = json.loads(raw[len(_TOKEN_VERSION) :])
        if data["op"] == operation and data["scope"] == scope and isinstance(data["after"], list):
            return list(data["after"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        pass
    raise _constraint("nextToken", "Invalid NextToken", code)


def paginate(
    items: list[T],
    key: Callable[[T], list[Any]],
    params: dict[str, Any],
    operation: str,
    scope: str,
    limits: PageLimits = ECR_PAGES,
) -> tuple[list[T], str | None]:
    """One page after the token's key. Keys, not offsets, so deletes between pages skip nothing."""
    size = _max_results(params, limits)
    token = params.get("nextToken")
    if token is not None:
        after = _decode_token(token, operation, scope, limits.error_code)
        items = [item for item in items if key(item) > after]
    page = items[:size]
    if len(items) > size:
        return page, _encode_token(operation, scope, key(page[-1]))
    return page, None


def _image_ids(params: dict[str, Any], required: bool) -> list[dict[str, Any]] | None:
    ids = params.get("imageIds")
    if ids is None and not required:
        return None
    if not isinstance(ids, list) or not ids:
        raise _constraint("imageIds", "Member must have length greater than or equal to 1")
    if len(ids) > MAX_IMAGE_IDS:
        raise _constraint(
            "imageIds", f"Member must have length less than or equal to {MAX_IMAGE_IDS}"
        )
    return [dict(each) for each in ids]


def _repo(params: dict[str, Any], ctx: Context) -> RepoView:
    name = params.get("repositoryName")
    if not isinstance(name, str) or not name:
        raise _constraint("repositoryName", "Member must not be null")
    return open_repository(ctx.account_id, ctx.region, name, params.get("registryId"))


def _tag_status(params: dict[str, Any]) -> tuple[str, str]:
    """The filter; like real ECR, no imageStatus means ACTIVE images only."""
    status_filter = params.get("filter") or {}
    image_status = status_filter.get("imageStatus", "ACTIVE")
    if image_status not in IMAGE_STATUSES:
        raise _constraint(
            "filter.imageStatus",
            f"Member must satisfy enum value set: [{', '.join(IMAGE_STATUSES)}]",
            "ValidationException",
        )
    return status_filter.get("tagStatus", "ANY"), image_status


def _keep(image: Any, tag_status: str, image_status: str) -> bool:
    if image_status != "ANY" and meta_of(image).status != image_status:
        return False
    tags = image.image_tags
    return tag_status == "ANY" or (tag_status == "TAGGED") == bool(tags)


def put_image(params: dict[str, Any], ctx: Context) -> dict[str, Any]:
    view = _repo(params, ctx)
    body = params.get("imageManifest")
    if not isinstance(body, str):
        raise _constraint("imageManifest", "Member must not be null")
    tag = params.get("imageTag")
    image = view.put(
        body, tag, params.get("imageManifestMediaType"), params.get("imageDigest"), ctx.now()
    )
    image_id = {"imageDigest": image.get_image_digest()}
    if tag:
        image_id["imageTag"] = tag
    return {
        "image": {
            "registryId": view.registry_id,
            "repositoryName": view.name,
            "imageId": image_id,
            "imageManifest": body,
            "imageManifestMediaType": meta_of(image).media_type,
        }
    }


def describe_images(params: dict[str, Any], ctx: Context) -> dict[str, Any]:
    view = _repo(params, ctx)
    view.settle(ctx.now())
    ids = _image_ids(params, required=False)
    if ids is not None:
        if "maxResults" in params or "nextToken" in params:
            raise invalid_parameter(
                "Invalid parameter at 'maxResults, nextToken' failed to satisfy constraint: "
                "'maxResults and nextToken cannot be used when imageIds are specified'"
            )
        details: dict[str, dict[str, Any]] = {}
        for image_id in ids:
            image = None if check_image_id(image_id) else view.find(image_id)
            if image is None:
                raise EcrError(
                    "ImageNotFoundException",
                    f"The image with imageId {{imageDigest:'{image_id.get('imageDigest')}', "
                    f"imageTag:'{image_id.get('imageTag')}'}} does not exist within the "
                    f"repository with name '{view.name}' in the registry with id "
                    f"'{view.registry_id}'",
                )
            details[image.get_image_digest()] = image_detail(view, image)
        return {"imageDetails": list(details.values())}
    tag_status, image_status = _tag_status(params)
    images = [image for image in view.images() if _keep(image, tag_status, image_status)]
    page, token = paginate(
        images,
        lambda image: [meta_of(image).sequence],
        params,
        "DescribeImages",
        f"{view.registry_id}/{view.name}/{tag_status}/{image_status}",
    )
    response: dict[str, Any] = {"imageDetails": [image_detail(view, image) for image in page]}
    if token:
        response["nextToken"] = token
    return response


def list_images(params: dict[str, Any], ctx: Context) -> dict[str, Any]:
    view = _repo(params, ctx)
    view.settle(ctx.now())
    tag_status, image_status = _tag_status(params)
    entries: list[tuple[list[Any], dict[str, str]]] = []
    for image in view.images():
        if not _keep(image, tag_status, image_status):
            continue
        digest, sequence = image.get_image_digest(), meta_of(image).sequence
        if not image.image_tags:
            entries.append(([sequence, ""], {"imageDigest": digest}))
        for tag in image.image_tags:
            entries.append(([sequence, tag], {"imageDigest": digest, "imageTag": tag}))
    page, token = paginate(
        entries,
        lambda entry: entry[0],
        params,
        "ListImages",
        f"{view.registry_id}/{view.name}/{tag_status}/{image_status}",
    )
    response: dict[str, Any] = {"imageIds": [entry[1] for entry in page]}
    if token:
        response["nextToken"] = token
    return response


def _repository(repository: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "repositoryArn": repository.arn,
        "registryId": repository.registry_id,
        "repositoryName": repository.name,
        "repositoryUri": repository.uri,
        "createdAt": repository.created_at.timestamp(),
        "imageTagMutability": str(
            getattr(repository.image_tag_mutability, "value", None)
            or repository.image_tag_mutability
        ),
        "imageScanningConfiguration": repository.image_scanning_configuration,
        "encryptionConfiguration": repository.encryption_configuration,
    }
    if repository.image_tag_mutability_exclusion_filters:
        result["imageTagMutabilityExclusionFilters"] = (
            repository.image_tag_mutability_exclusion_filters
        )
    return result


def describe_repositories(params: dict[str, Any], ctx: Context) -> dict[str, Any]:
    registry = params.get("registryId") or ctx.account_id
    repositories = sorted(
        (
            each
            for each in all_repositories(ctx.account_id, ctx.region)
            if each.registry_id == registry
        ),
        key=lambda each: str(each.name),
    )
    names = params.get("repositoryNames")
    if names:
        if "maxResults" in params or "nextToken" in params:
            raise invalid_parameter(
                "Invalid parameter at 'maxResults, nextToken' failed to satisfy constraint: "
                "'maxResults and nextToken cannot be used when repositoryNames are specified'"
            )
        by_name = {str(each.name): each for each in repositories}
        for name in names:
            if name not in by_name:
                raise repository_not_found(name, registry)
        return {"repositories": [_repository(by_name[name]) for name in dict.fromkeys(names)]}
    page, token = paginate(
        repositories, lambda each: [str(each.name)], params, "DescribeRepositories", registry
    )
    response: dict[str, Any] = {"repositories": [_repository(each) for each in page]}
    if token:
        response["nextToken"] = token
    return response


def batch_get_image(params: dict[str, Any], ctx: Context) -> dict[str, Any]:
    view = _repo(params, ctx)
    ids = _image_ids(params, required=True) or []
    images: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    seen: set[tuple[str, str | None]] = set()
    now = ctx.now()
    view.settle(now)
    for image_id in ids:
        failure = check_image_id(image_id)
        image = None if failure else view.find(image_id)
        if failure is not None or image is None:
            failures.append(
                failure or failed(image_id, "ImageNotFound", "Requested image not found")
            )
            continue
        if meta_of(image).status != "ACTIVE":
            failures.append(
                failed(
                    image_id,
                    ARCHIVED_PULL_FAILURE,
                    f"Requested image is {meta_of(image).status}: archived images can't be "
                    "pulled until they are restored",
                )
            )
            continue
        digest, tag = image.get_image_digest(), image_id.get("imageTag")
        if (digest, tag) in seen:
            continue
        seen.add((digest, tag))
        view.record_pull(image, now)
        returned_id = {"imageDigest": digest, **({"imageTag": tag} if tag else {})}
        images.append(
            {
                "registryId": view.registry_id,
                "repositoryName": view.name,
                "imageId": returned_id,
                "imageManifest": image.image_manifest,
                "imageManifestMediaType": meta_of(image).media_type,
            }
        )
    return {"images": images, "failures": failures}


def batch_delete_image(params: dict[str, Any], ctx: Context) -> dict[str, Any]:
    view = _repo(params, ctx)
    ids = _image_ids(params, required=True) or []
    deleted: list[dict[str, str]] = []
    failures: list[dict[str, Any]] = []
    for image_id in ids:
        removed, failure = view.delete(
            image_id, digest_and_tag_deletes_image=ctx.digest_and_tag_deletes_image
        )
        deleted.extend(removed)
        if failure is not None:
            failures.append(failure)
    view.flush()
    return {"imageIds": deleted, "failures": failures}


def list_image_referrers(params: dict[str, Any], ctx: Context) -> dict[str, Any]:
    view = _repo(params, ctx)
    subject = (params.get("subjectId") or {}).get("imageDigest")
    if not isinstance(subject, str) or not subject:
        raise _constraint("subjectId.imageDigest", "Member must not be null", "ValidationException")
    wanted = (params.get("filter") or {}).get("artifactTypes") or None
    status = (params.get("filter") or {}).get("artifactStatus", "ACTIVE")
    referrers = [
        image
        for image in view.images()
        if meta_of(image).subject_digest == subject
        and status in ("ACTIVE", "ANY")
        and (wanted is None or meta_of(image).artifact_media_type in wanted)
    ]
    page, token = paginate(
        referrers,
        lambda image: [meta_of(image).sequence],
        params,
        "ListImageReferrers",
        f"{view.registry_id}/{view.name}/{subject}",
        REFERRER_PAGES,
    )
    entries = []
    for image in page:
        meta = meta_of(image)
        entry: dict[str, Any] = {
            "digest": image.get_image_digest(),
            "mediaType": meta.media_type,
            "size": meta.manifest_size,
            "artifactStatus": "ACTIVE",
        }
        if meta.artifact_media_type:
            entry["artifactType"] = meta.artifact_media_type
        if meta.annotations:
            entry["annotations"] = meta.annotations
        entries.append(entry)
    response: dict[str, Any] = {"referrers": entries}
    if token:
        response["nextToken"] = token
    return response


def update_image_storage_class(params: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Archive an ACTIVE image, or restore an ARCHIVED one (through ACTIVATING)."""
    view = _repo(params, ctx)
    image_id = params.get("imageId")
    if not isinstance(image_id, dict):
        raise _constraint("imageId", "Member must not be null", "ValidationException")
    target = params.get("targetStorageClass")
    if target not in STORAGE_CLASSES:
        raise _constraint(
            "targetStorageClass",
            f"Member must satisfy enum value set: [{', '.join(STORAGE_CLASSES)}]",
            "ValidationException",
        )
    problem = check_image_id(image_id)
    image = None if problem else view.find(image_id)
    if problem is not None:
        raise invalid_parameter(problem["failureReason"])
    if image is None:
        raise EcrError(
            "ImageNotFoundException",
            f"The image with imageId {{imageDigest:'{image_id.get('imageDigest')}', "
            f"imageTag:'{image_id.get('imageTag')}'}} does not exist within the repository "
            f"with name '{view.name}' in the registry with id '{view.registry_id}'",
        )
    status = view.update_storage_class(image, target, ctx.now(), ctx.activation_delay)
    returned = {"imageDigest": image.get_image_digest()}
    if image_id.get("imageTag"):
        returned["imageTag"] = image_id["imageTag"]
    return {
        "registryId": view.registry_id,
        "repositoryName": view.name,
        "imageId": returned,
        "imageStatus": status,
    }


def list_tags_for_resource(params: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """moto's own answer, called directly: its HTTP dispatch costs more than the lookup, and a
    sweep asks once per repository."""
    arn = params.get("resourceArn")
    if not isinstance(arn, str) or not arn:
        raise _constraint("resourceArn", "Member must not be null")
    try:
        return dict(backend(ctx.account_id, ctx.region).list_tags_for_resource(arn))
    except ServiceException as error:
        raise EcrError(str(error.code), str(error.message)) from None
    except JsonRESTError as error:
        raise EcrError(str(error.error_type), str(error.message)) from None


HANDLERS: dict[str, Callable[[dict[str, Any], Context], dict[str, Any]]] = {
    "ListTagsForResource": list_tags_for_resource,
    "PutImage": put_image,
    "DescribeImages": describe_images,
    "ListImages": list_images,
    "DescribeRepositories": describe_repositories,
    "BatchGetImage": batch_get_image,
    "BatchDeleteImage": batch_delete_image,
    "ListImageReferrers": list_image_referrers,
    "UpdateImageStorageClass": update_image_storage_class,
}
