"""The one module that talks to S3: the extra references document, and the fan-out's run
documents (work items, the in-use snapshot, per-batch results)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any


class StorageError(ValueError):
    """An object that is not what the caller expects (not UTF-8, not JSON)."""


def read_text(client: Any, bucket: str, key: str, *, sha256: str | None = None) -> str:
    """The object's body as UTF-8 text; with `sha256`, only if the body still has that digest
    (what `write_json` returned when it was written)."""
    data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise StorageError(
            f"s3://{bucket}/{key}: changed since it was written (its SHA-256 is not "
            f"{sha256[:12]}...)"
        )
    try:
        return str(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise StorageError(f"s3://{bucket}/{key}: not UTF-8 text ({error})") from error


def read_json(client: Any, bucket: str, key: str, *, sha256: str | None = None) -> Any:
    text = read_text(client, bucket, key, sha256=sha256)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise StorageError(f"s3://{bucket}/{key}: not valid JSON ({error})") from error


def write_json(client: Any, bucket: str, key: str, document: Any) -> str:
    """Write compact JSON; the bucket's default encryption applies. Returns the body's SHA-256
    (hex), for a reader to check that nobody changed it since."""
    body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")
    client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    return hashlib.sha256(body).hexdigest()


def keys(client: Any, bucket: str, prefix: str) -> Iterator[str]:
    """Every key under the prefix, all pages."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            yield str(entry["Key"])
