"""Manifest builders and small helpers for the emulator tests, written independently of the
emulator's own scenario code so the tests check it rather than echo it."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

DOCKER = "application/vnd.docker.distribution.manifest.v2+json"
OCI = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY_DIGEST = "sha256:" + hashlib.sha256(b"{}").hexdigest()


def blob(rng: random.Random, media_type: str, size: int) -> dict[str, Any]:
    return {
        "mediaType": media_type,
        "size": size,
        "digest": "sha256:" + rng.getrandbits(256).to_bytes(32, "big").hex(),
    }


class Manifests:
    """Builds manifest text independently of the emulator's own scenario code."""

    def __init__(self) -> None:
        self.rng = random.Random(1234)

    def image(self, layer_sizes: tuple[int, ...] = (1000, 2000), *, oci: bool = False) -> str:
        media_type = OCI if oci else DOCKER
        config = (
            "application/vnd.oci.image.config.v1+json"
            if oci
            else ("application/vnd.docker.container.image.v1+json")
        )
        return json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": media_type,
                "config": blob(self.rng, config, 1500),
                "layers": [blob(self.rng, "application/octet-stream", s) for s in layer_sizes],
            },
            indent=3,
        )

    def index(self, *children: str) -> str:
        entries = [
            {
                "mediaType": json.loads(child)["mediaType"],
                "digest": digest_of(child),
                "size": len(child.encode()),
                "platform": {"architecture": arch, "os": "linux"},
            }
            for child, arch in zip(children, ["amd64", "arm64", "s390x", "ppc64le"], strict=False)
        ]
        return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})

    def referrer(self, subject: str, artifact_type: str) -> str:
        return json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI,
                "artifactType": artifact_type,
                "config": {
                    "mediaType": "application/vnd.oci.empty.v1+json",
                    "digest": EMPTY_DIGEST,
                    "size": 2,
                },
                "layers": [blob(self.rng, artifact_type, 321)],
                "subject": {"mediaType": OCI, "digest": digest_of(subject), "size": len(subject)},
                "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
            }
        )


def digest_of(manifest: str) -> str:
    return "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()


def push(ecr: Any, repo: str, manifest: str, tag: str | None = None) -> str:
    kwargs: dict[str, Any] = {"repositoryName": repo, "imageManifest": manifest}
    if tag is not None:
        kwargs["imageTag"] = tag
    return str(ecr.put_image(**kwargs)["image"]["imageId"]["imageDigest"])
