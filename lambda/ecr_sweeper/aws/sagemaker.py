"""The one module that talks to SageMaker: the images of models, and those endpoints run.

A model names its images (`PrimaryContainer`, `Containers[]`); an endpoint config points at
models, and an endpoint reports the images it deployed (`DeployedImages`, with the digest a tag
resolved to), which still run after their model is deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError


class SageMakerImages:
    """(image reference, holder) of every model and every endpoint's deployed images."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def references(self) -> Iterator[tuple[str, str]]:
        yield from self._models()
        yield from self._endpoints()

    def _models(self) -> Iterator[tuple[str, str]]:
        for page in self._client.get_paginator("list_models").paginate():
            for summary in page.get("Models", []):
                name = summary["ModelName"]
                model = self._described("describe_model", ModelName=name)
                if model is None:
                    continue
                containers = [model.get("PrimaryContainer"), *model.get("Containers", [])]
                for image in _images(containers):
                    yield image, f"SageMaker model {name}"

    def _endpoints(self) -> Iterator[tuple[str, str]]:
        for page in self._client.get_paginator("list_endpoints").paginate():
            for summary in page.get("Endpoints", []):
                name = summary["EndpointName"]
                endpoint = self._described("describe_endpoint", EndpointName=name)
                if endpoint is None:
                    continue
                variants = [
                    *endpoint.get("ProductionVariants", []),
                    *endpoint.get("ShadowProductionVariants", []),
                ]
                for variant in variants:
                    holder = f"SageMaker endpoint {name} ({variant.get('VariantName', '?')})"
                    for deployed in variant.get("DeployedImages", []):
                        for key in ("SpecifiedImage", "ResolvedImage"):
                            if deployed.get(key):
                                yield str(deployed[key]), holder

    def _described(self, operation: str, **params: str) -> dict[str, Any] | None:
        """The description, or None for a resource deleted since it was listed (it holds no
        image any more)."""
        try:
            return dict(getattr(self._client, operation)(**params))
        except ClientError as error:
            said = error.response.get("Error", {})
            # SageMaker's answer for a name that no longer exists.
            if said.get("Code") == "ValidationException" and "Could not find" in str(
                said.get("Message", "")
            ):
                return None
            raise


def _images(containers: list[Any]) -> Iterator[str]:
    for container in containers:
        if isinstance(container, dict) and container.get("Image"):
            yield str(container["Image"])
