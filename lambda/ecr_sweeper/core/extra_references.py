"""Extra image references: where the document may live, and what it must hold.

The sweep reads it (`sweep.in_use.read_document`) from S3 or SSM.

For EKS or anything else the sweeper can't see, settings name a JSON document (an S3 object or an
SSM parameter) listing image references that must be kept:
`{"images": ["<uri>", {"image": "<uri>", "holder": "EKS deployment web"}, ...]}` or the bare list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from ecr_sweeper.core.references import looks_like_ecr

S3_PREFIX = "s3://"
SSM_PREFIX = "ssm:"


class ExtraReferencesError(ValueError):
    """The extra references document can't be read or has the wrong shape."""


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PARAMETER = re.compile(r"^/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")


def location_problem(location: str) -> str | None:
    """Why a location is not `s3://bucket/key` or `ssm:/parameter/name`, or None if it is.

    One object or parameter only: a wildcard would become a wildcard IAM grant.
    """
    if "*" in location or "?" in location:
        return "name one object or parameter; wildcards are not accepted"
    if location.startswith(S3_PREFIX):
        bucket, _, key = location[len(S3_PREFIX) :].partition("/")
        if not bucket or not key:
            return "s3:// needs a bucket and a key"
        return None if _BUCKET.fullmatch(bucket) else f"{bucket!r} is not an S3 bucket name"
    if location.startswith(SSM_PREFIX):
        name = location[len(SSM_PREFIX) :]
        if not name:
            return "ssm: needs a parameter name"
        return None if _PARAMETER.fullmatch(name) else f"{name!r} is not an SSM parameter name"
    return "expected s3://BUCKET/KEY or ssm:/PARAMETER/NAME"


def parse_document(text: str, location: str) -> Iterator[tuple[str, str]]:
    """(reference, holder) pairs from the document's text."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ExtraReferencesError(f"{location}: not valid JSON ({error})") from error
    except RecursionError:
        raise ExtraReferencesError(f"{location}: JSON nested too deeply") from None
    entries = document.get("images") if isinstance(document, dict) else document
    if not isinstance(entries, list):
        raise ExtraReferencesError(f'{location}: expected {{"images": [...]}} or a JSON list')
    for entry in entries:
        if isinstance(entry, str):
            image, holder = entry, f"extra references ({location})"
        elif isinstance(entry, dict) and isinstance(entry.get("image"), str):
            image = entry["image"]
            holder = str(entry.get("holder") or f"extra references ({location})")
        else:
            raise ExtraReferencesError(
                f"{location}: entry {entry!r} is neither an image reference string nor "
                '{"image": "...", "holder": "..."}'
            )
        if not looks_like_ecr(image):
            raise ExtraReferencesError(
                f"{location}: {image!r} is not a private ECR image URI "
                "(ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY[:TAG][@sha256:DIGEST])"
            )
        yield image, holder
