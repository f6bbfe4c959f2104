"""Media types and builders for realistic image manifests (Docker v2, OCI, indexes, artifacts).

Builders return the manifest as the exact bytes a registry stores; the digest is the sha256 of
those bytes, as in a real registry.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
IN_TOTO = "application/vnd.in-toto+json"
COSIGN_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
SPDX_JSON = "application/spdx+json"
SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"

INDEX_MEDIA_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
ATTESTATION_ANNOTATION = "vnd.docker.reference.type"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def encode(manifest: dict[str, Any], *, indent: int | None = None) -> bytes:
    """Serialize a manifest the way build tools do: Docker indents by 3, BuildKit is compact."""
    if indent is None:
        return json.dumps(manifest, separators=(",", ":")).encode()
    return json.dumps(manifest, indent=indent).encode()


@dataclass(frozen=True)
class Built:
    """A manifest ready to push: its bytes, media type, digest and descriptor size."""

    body: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return sha256_digest(self.body)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.body),
            **extra,
        }


class ManifestFactory:
    """Makes deterministic, realistic manifests from a seeded random generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def blob(self, media_type: str, low: int, high: int, **extra: Any) -> dict[str, Any]:
        digest = "sha256:" + self.rng.getrandbits(256).to_bytes(32, "big").hex()
        return {"mediaType": media_type, "size": self.rng.randint(low, high), "digest": digest}

    def image(
        self, *, oci: bool = False, layers: int | None = None, compact: bool = False
    ) -> Built:
        """A runnable single-platform image: config plus 2-6 gzip layers (1 KB to 60 MB).

        Docker manifests are indented like `docker push` does unless `compact` (faster to make).
        """
        count = layers if layers is not None else self.rng.randint(2, 6)
        config_type, layer_type, media_type = (
            (OCI_CONFIG, OCI_LAYER, OCI_MANIFEST)
            if oci
            else (DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST)
        )
        manifest = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": self.blob(config_type, 1_500, 12_000),
            "layers": [self.blob(layer_type, 1_000, 60_000_000) for _ in range(count)],
        }
        return Built(encode(manifest, indent=None if oci or compact else 3), media_type)

    def attestation(self, subject: Built) -> Built:
        """A BuildKit attestation manifest (SBOM and provenance in-toto layers)."""
        layers = [
            {
                **self.blob(IN_TOTO, 2_000, 400_000),
                "annotations": {"in-toto.io/predicate-type": predicate},
            }
            for predicate in ("https://spdx.dev/Document", "https://slsa.dev/provenance/v0.2")
        ]
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": self.blob(OCI_CONFIG, 160, 400),
            "layers": layers,
        }
        return Built(encode(manifest), OCI_MANIFEST)

    def index(
        self,
        children: list[tuple[Built, str]],
        attestations: list[tuple[Built, Built]] | None = None,
        *,
        oci: bool = True,
    ) -> Built:
        """An index of (child, "os/arch") entries plus BuildKit attestations (oci only)."""
        entries: list[dict[str, Any]] = []
        for child, platform in children:
            os_name, arch = platform.split("/", 1)
            entries.append(child.descriptor(platform={"architecture": arch, "os": os_name}))
        for attestation, subject in attestations or []:
            entries.append(
                attestation.descriptor(
                    annotations={
                        "vnd.docker.reference.digest": subject.digest,
                        ATTESTATION_ANNOTATION: "attestation-manifest",
                    },
                    platform={"architecture": "unknown", "os": "unknown"},
                )
            )
        media_type = OCI_INDEX if oci else DOCKER_MANIFEST_LIST
        manifest = {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}
        return Built(encode(manifest, indent=None if oci else 3), media_type)

    def cosign(self, kind: str) -> Built:
        """A cosign tag-convention artifact: kind is "sig", "att" or "sbom"."""
        layer_type = {"sig": COSIGN_SIMPLESIGNING, "att": DSSE_ENVELOPE, "sbom": SPDX_JSON}[kind]
        layer = self.blob(layer_type, 200, 90_000)
        if kind == "sig":
            signature = self.rng.getrandbits(512).to_bytes(64, "big").hex()
            layer["annotations"] = {"dev.cosignproject.cosign/signature": signature}
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": self.blob(OCI_CONFIG, 200, 400),
            "layers": [layer],
        }
        return Built(encode(manifest), OCI_MANIFEST)

    def referrer(self, subject: Built, artifact_type: str) -> Built:
        """An OCI 1.1 artifact pointing at `subject` (found through ListImageReferrers)."""
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": OCI_EMPTY, "digest": OCI_EMPTY_DIGEST, "size": 2},
            "layers": [self.blob(artifact_type, 500, 200_000)],
            "subject": subject.descriptor(),
        }
        return Built(encode(manifest), OCI_MANIFEST)


def cosign_tag(subject_digest: str, kind: str) -> str:
    """cosign's tag convention: sha256:abc... -> sha256-abc....sig"""
    return subject_digest.replace(":", "-", 1) + "." + kind
