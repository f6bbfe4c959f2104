"""Pure core of `ecr-sweeper evaluate`: policy and DescribeImages output in, JSON-able report out.

It applies the lifecycle policy only (no protections), so it shows what ECR itself would expire
or transition to the archive tier.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ecr_sweeper.core.lifecycle import LifecyclePolicy, evaluate, newest_first, parse_policy
from ecr_sweeper.core.model import Action, Image, ImageDetailError, image_from_detail

_DESCRIBE_IMAGES_KEYS = ("imageDetails",)


def images_from_document(document: Any) -> list[Image]:
    """Read what `aws ecr describe-images` prints: {"imageDetails": [...]} or a bare list."""
    if isinstance(document, dict):
        if "nextToken" in document:
            raise ImageDetailError(
                "nextToken: the listing is incomplete; run describe-images without --max-items "
                "(the AWS CLI then fetches every page)"
            )
        for key in document:
            if key not in _DESCRIBE_IMAGES_KEYS:
                raise ImageDetailError(
                    f"{key}: unknown key; expected the object `aws ecr describe-images` prints, "
                    'with "imageDetails"'
                )
        if "imageDetails" not in document:
            raise ImageDetailError("imageDetails: missing")
        details = document["imageDetails"]
        if not isinstance(details, list):
            raise ImageDetailError("imageDetails: expected a list of ImageDetail objects")
    elif isinstance(document, list):
        details = document
    else:
        raise ImageDetailError(
            'expected the object `aws ecr describe-images` prints (with "imageDetails") or a '
            "list of ImageDetail objects"
        )
    images: list[Image] = []
    first_index: dict[str, int] = {}
    for index, detail in enumerate(details):
        try:
            image = image_from_detail(detail)
        except ImageDetailError as error:
            raise ImageDetailError(f"imageDetails[{index}]: {error}") from None
        if image.digest in first_index:
            raise ImageDetailError(
                f"imageDetails[{index}]: imageDigest {image.digest} is also imageDetails"
                f"[{first_index[image.digest]}]; each image must appear once"
            )
        first_index[image.digest] = index
        images.append(image)
    return images


def report(policy: LifecyclePolicy, images: Sequence[Image], now: datetime) -> dict[str, Any]:
    """The evaluate report: expired and transitioned digests, and one decision per image,
    newest first."""
    verdicts = evaluate(policy, images, now)
    decisions: list[dict[str, Any]] = []
    expired: list[str] = []
    transitioned: list[str] = []
    for image in newest_first(images):
        verdict = verdicts[image.digest]
        if verdict.action is Action.EXPIRE:
            expired.append(image.digest)
        elif verdict.action is Action.TRANSITION:
            transitioned.append(image.digest)
        rule = verdict.acted_by
        decisions.append(
            {
                "imageDigest": image.digest,
                "imageTags": list(image.tags),
                "imageStatus": image.status.value,
                "action": verdict.action.value,
                "rulePriority": rule.priority if rule is not None else None,
                "reason": verdict.reason,
            }
        )
    return {"expired": expired, "transitioned": transitioned, "decisions": decisions}


def evaluate_documents(policy_document: Any, images_document: Any, now: datetime) -> dict[str, Any]:
    """Parse both documents and report; raises PolicyError or ImageDetailError on bad input."""
    policy = parse_policy(policy_document)
    return report(policy, images_from_document(images_document), now)
