"""Checks at start that the AWS SDK in use knows every ECR field the safety rules read.

botocore parses responses by its bundled service model and drops members that model lacks,
without a word. An SDK older than ECR's OCI referrer support (botocore < 1.41) returns OCI
signatures and SBOMs as plain untagged images, and a sweep would delete them with the image
they belong to still kept. The function ships its own SDK (the SDK layer); this check is the
defence when that layer is missing or shadowed: the run then deletes nothing and says why.
"""

from __future__ import annotations

from typing import Any

import botocore
import botocore.session

REQUIRED_FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("DescribeImages", "imageDetails", "imageDigest", "every decision names the image"),
    ("DescribeImages", "imageDetails", "imagePushedAt", "age and keep-N rules"),
    ("DescribeImages", "imageDetails", "imageTags", "tagged rules and protected tags"),
    (
        "DescribeImages",
        "imageDetails",
        "imageManifestMediaType",
        "children of a kept index are kept",
    ),
    (
        "DescribeImages",
        "imageDetails",
        "subjectManifestDigest",
        "OCI referrers (signatures, SBOMs) follow their subject",
    ),
    ("DescribeImages", "imageDetails", "lastRecordedPullTime", "sinceImagePulled rules"),
    (
        "DescribeImages",
        "imageDetails",
        "imageStatus",
        "archived images are never counted or deleted as active ones",
    ),
    ("ListImages", "imageIds", "imageTag", "tags are re-read right before deleting"),
)
"""(operation, output list, member of its items, what depends on it)."""


def missing_ecr_fields(service_model: Any | None = None) -> list[str]:
    """The required fields the ECR model lacks, as 'Operation.list[].member (why)'."""
    model = service_model or botocore.session.get_session().get_service_model("ecr")
    missing = []
    for operation, listed, member, why in REQUIRED_FIELDS:
        output = model.operation_model(operation).output_shape
        items = output.members[listed].member if listed in output.members else None
        if items is None or member not in items.members:
            missing.append(f"{operation} {listed}[].{member} ({why})")
    return missing


def sdk_problem(service_model: Any | None = None) -> str | None:
    """Why this SDK can't be trusted to delete, or None when it knows every required field."""
    missing = missing_ecr_fields(service_model)
    if not missing:
        return None
    return (
        f"the AWS SDK in use (botocore {botocore.__version__}) does not know the ECR field(s) "
        f"{'; '.join(missing)}; an older SDK drops them silently, so this run deletes "
        "nothing anywhere. Deploy with the SDK layer (`make install` builds it)"
    )
