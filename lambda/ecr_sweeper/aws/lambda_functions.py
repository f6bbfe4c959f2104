"""The one module that talks to AWS Lambda: which images container-image functions use."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError


class LambdaImages:
    """Image references of every function version with PackageType Image (aliases point at
    versions, so every version is looked at)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def references(self) -> Iterator[tuple[str, str]]:
        paginator = self._client.get_paginator("list_functions")
        for page in paginator.paginate(FunctionVersion="ALL"):
            for function in page.get("Functions", []):
                if function.get("PackageType") != "Image":
                    continue
                name, version = function["FunctionName"], function.get("Version", "$LATEST")
                holder = f"Lambda function {name}:{version}"
                try:
                    response = self._client.get_function(FunctionName=name, Qualifier=version)
                except ClientError as error:
                    if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                        continue  # deleted since it was listed: it holds no image any more
                    raise
                code = response.get("Code", {})
                for key in ("ImageUri", "ResolvedImageUri"):
                    if code.get(key):
                        yield code[key], holder
