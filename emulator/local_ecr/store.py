"""Real-ECR image semantics on top of moto's ECR backend models.

moto keeps repositories and `Image` objects; this module reads and writes them the way real ECR
behaves (sha256 digests, tags that move, untagged leftovers, index children that cannot be
deleted first, pull times, referrers). Images stay moto `Image` objects so the rest of moto (for
example Lambda's ImageUri lookup) keeps working; the extra facts live in `ImageMeta`, attached to
each image.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any, cast

from moto.ecr.models import Image, Repository, ecr_backends

from local_ecr.manifests import INDEX_MEDIA_TYPES, sha256_digest

META_ATTRIBUTE = "local_ecr_meta"
DIGEST_PATTERN = re.compile(r"^[a-zA-Z0-9\-_+.]+:[a-fA-F0-9]+$")
PULL_TIME_REFRESH = timedelta(hours=24)
_sequence = itertools.count(1)


class EcrError(Exception):
    """An ECR error response: `code` becomes `__type`, as botocore expects."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def invalid_parameter(message: str) -> EcrError:
    return EcrError("InvalidParameterException", message)


@dataclass
class ImageMeta:
    """What ECR knows about an image and moto does not."""

    sequence: int
    pushed_at: datetime
    media_type: str
    manifest_size: int
    layers_size: int
    child_digests: tuple[str, ...]
    artifact_media_type: str | None
    subject_digest: str | None
    artifact_type: str | None
    annotations: dict[str, str] = field(default_factory=dict)
    last_pull: datetime | None = None
    status: str = "ACTIVE"
    """ACTIVE, ARCHIVED, or ACTIVATING until `activating_until` (see `settle`)."""
    last_archived_at: datetime | None = None
    last_activated_at: datetime | None = None
    activating_until: datetime | None = None

    def settle(self, now: datetime) -> None:
        """An ACTIVATING image becomes ACTIVE once its restore delay has passed."""
        until = self.activating_until
        if self.status == "ACTIVATING" and until is not None and now >= until:
            self.status, self.last_activated_at, self.activating_until = "ACTIVE", until, None

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES or bool(self.child_digests)


def describe_manifest(body: str, media_type: str | None) -> dict[str, Any]:
    """Parse a manifest; InvalidParameterException when it is not a JSON object."""
    try:
        parsed = json.loads(body)
    except json.JSONDecodeError:
        raise invalid_parameter(
            "Invalid parameter at 'ImageManifest' failed to satisfy constraint: "
            "'Invalid JSON syntax'"
        ) from None
    if not isinstance(parsed, dict):
        raise invalid_parameter(
            "Invalid parameter at 'ImageManifest' failed to satisfy constraint: "
            "'Manifest must be a JSON object'"
        )
    if not (media_type or parsed.get("mediaType")):
        raise invalid_parameter(
            "Invalid parameter at 'imageManifestMediaType' failed to satisfy constraint: "
            "'image manifest media type not provided in the manifest or the request'"
        )
    return parsed


def build_meta(
    manifest: dict[str, Any], body: str, media_type: str, pushed_at: datetime
) -> ImageMeta:
    children = tuple(
        str(entry["digest"])
        for entry in manifest.get("manifests") or []
        if isinstance(entry, dict) and "digest" in entry
    )
    config = manifest.get("config") if isinstance(manifest.get("config"), dict) else None
    layers = [layer for layer in manifest.get("layers") or [] if isinstance(layer, dict)]
    subject = manifest.get("subject") if isinstance(manifest.get("subject"), dict) else None
    artifact_type = manifest.get("artifactType")
    if isinstance(artifact_type, str):
        artifact_media_type: str | None = artifact_type
    elif config is not None and isinstance(config.get("mediaType"), str):
        artifact_media_type = config["mediaType"]
    else:
        artifact_media_type = None
    annotations = manifest.get("annotations")
    return ImageMeta(
        sequence=next(_sequence),
        pushed_at=pushed_at,
        media_type=media_type,
        manifest_size=len(body.encode()),
        layers_size=sum(int(layer.get("size", 0)) for layer in layers),
        child_digests=children,
        artifact_media_type=artifact_media_type,
        subject_digest=str(subject["digest"]) if subject and "digest" in subject else None,
        artifact_type=artifact_type if isinstance(artifact_type, str) else None,
        annotations=dict(annotations) if isinstance(annotations, dict) else {},
    )


def meta_of(image: Image) -> ImageMeta:
    """The image's ImageMeta, built on first sight for images moto created by itself."""
    meta: ImageMeta | None = getattr(image, META_ATTRIBUTE, None)
    if meta is None:
        body = image.image_manifest
        try:
            manifest = json.loads(body)
        except (TypeError, json.JSONDecodeError):
            manifest = {}
        media_type = image.image_manifest_media_type or manifest.get("mediaType") or ""
        pushed = datetime.fromtimestamp(float(image.image_pushed_at), UTC)
        meta = build_meta(manifest if isinstance(manifest, dict) else {}, body, media_type, pushed)
        setattr(image, META_ATTRIBUTE, meta)
    return meta


def set_pushed_at(image: Image, when: datetime) -> None:
    meta_of(image).pushed_at = when
    image.image_pushed_at = int(when.timestamp())  # moto's own copy, for moto's code paths


class RepoView:
    """One repository with lookups by digest and tag, kept current by the writes below."""

    def __init__(self, repository: Repository) -> None:
        self.repository = repository
        self.by_digest: dict[str, Image] = {}
        self.by_tag: dict[str, Image] = {}
        self._parents: dict[str, set[str]] | None = None
        self._removed: set[int] = set()
        for image in repository.images:
            self.by_digest[image.get_image_digest()] = image
            for tag in image.image_tags:
                self.by_tag[tag] = image

    @property
    def name(self) -> str:
        return str(self.repository.name)

    @property
    def registry_id(self) -> str:
        return str(self.repository.registry_id)

    def images(self) -> list[Image]:
        """Images in push order (the order pages are served in)."""
        self.flush()
        return sorted(self.repository.images, key=lambda image: meta_of(image).sequence)

    def find(self, image_id: dict[str, Any]) -> Image | None:
        digest, tag = image_id.get("imageDigest"), image_id.get("imageTag")
        image = self.by_digest.get(digest) if digest else self.by_tag.get(tag) if tag else None
        if image is not None and tag and tag not in image.image_tags:
            return None
        return image

    def referencing_indexes(self, digest: str) -> list[str]:
        """Digests of the indexes in this repository that list `digest`."""
        if self._parents is None:
            self._parents = {}
            for index_digest, image in self.by_digest.items():
                for child in meta_of(image).child_digests:
                    self._parents.setdefault(child, set()).add(index_digest)
        return sorted(self._parents.get(digest, ()))

    def size_of(self, image: Image) -> int:
        """imageSizeInBytes: layer total; for an index the largest manifest it lists."""
        meta = meta_of(image)
        if not meta.is_index:
            return meta.layers_size
        sizes = [
            meta_of(child).layers_size
            for digest in meta.child_digests
            if (child := self.by_digest.get(digest)) is not None
        ]
        return max(sizes, default=0)

    # -- writes -------------------------------------------------------------------------------

    def put(
        self,
        body: str,
        tag: str | None,
        media_type: str | None,
        digest: str | None,
        pushed_at: datetime,
    ) -> Image:
        """PutImage as ECR does it: the tag moves; the image it leaves stays, untagged."""
        manifest = describe_manifest(body, media_type)
        computed = sha256_digest(body.encode())
        if digest is not None and digest != computed:
            raise EcrError(
                "ImageDigestDoesNotMatchException",
                f"Invalid parameter at 'imageDigest' failed to satisfy constraint: "
                f"'The provided digest {digest} does not match the digest {computed} that "
                f"Amazon ECR calculated for the image manifest'",
            )
        existing = self.by_digest.get(computed)
        holder = self.by_tag.get(tag) if tag else None
        if existing is not None and (tag is None or tag in existing.image_tags):
            raise EcrError(
                "ImageAlreadyExistsException",
                f"Image with digest '{computed}' and tag '{tag or 'null'}' already exists in "
                f"the repository with name '{self.name}' in registry with id "
                f"'{self.registry_id}'",
            )
        if holder is not None and tag is not None and self._tag_immutable(tag):
            raise EcrError(
                "ImageTagAlreadyExistsException",
                f"The image tag '{tag}' already exists in the '{self.name}' repository and "
                f"cannot be overwritten because the tag is immutable.",
            )
        effective_type = str(media_type or manifest["mediaType"])
        meta = build_meta(manifest, body, effective_type, pushed_at)
        missing = [child for child in meta.child_digests if child not in self.by_digest]
        if missing:
            raise EcrError(
                "ReferencedImagesNotFoundException",
                f"Some of the images referenced by the manifest list were not found in the "
                f"repository: {missing}",
            )
        if holder is not None and tag is not None:
            self._untag(holder, tag)
        if existing is not None:
            assert tag is not None
            existing.update_tag(tag)
            self.by_tag[tag] = existing
            return existing
        image = Image(
            self.repository.account_id,
            cast(str, tag),  # moto types the tag as str but handles None (untagged)
            body,
            self.name,
            effective_type,
            computed,
            self.registry_id,
        )
        setattr(image, META_ATTRIBUTE, meta)
        set_pushed_at(image, pushed_at)
        self.repository.images.append(image)
        self.by_digest[computed] = image
        if self._parents is not None:
            for child in meta_of(image).child_digests:
                self._parents.setdefault(child, set()).add(computed)
        if tag is not None:
            self.by_tag[tag] = image
        return image

    def _tag_immutable(self, tag: str) -> bool:
        mutability = str(self.repository.image_tag_mutability)
        immutable = mutability.startswith("IMMUTABLE")
        filters = self.repository.image_tag_mutability_exclusion_filters or []
        if any(fnmatchcase(tag, str(entry.get("filter", ""))) for entry in filters):
            return not immutable
        return immutable

    def _untag(self, image: Image, tag: str) -> None:
        image.remove_tag(tag)
        if not image.image_tags:
            image.image_tag = cast(str, None)
        self.by_tag.pop(tag, None)

    def remove(self, image: Image) -> None:
        for tag in list(image.image_tags):
            self.by_tag.pop(tag, None)
        digest = image.get_image_digest()
        self.by_digest.pop(digest, None)
        self._removed.add(id(image))
        if self._parents is not None:
            for child in meta_of(image).child_digests:
                self._parents.get(child, set()).discard(digest)

    def flush(self) -> None:
        """Drop removed images from moto's list in one pass: a batch of deletes stays linear."""
        if self._removed:
            removed = self._removed
            self.repository.images[:] = [i for i in self.repository.images if id(i) not in removed]
            self._removed = set()

    def delete(
        self, image_id: dict[str, Any], *, digest_and_tag_deletes_image: bool = False
    ) -> tuple[list[dict[str, str]], dict[str, Any] | None]:
        """Delete one imageId: (ids deleted or untagged, failure or None).

        ECR's reference doesn't say what `{imageDigest, imageTag}` deletes when the image has
        more tags: by default only that tag (so the image goes with its last tag);
        `digest_and_tag_deletes_image` deletes the whole image, as moto does.
        """
        digest, tag = image_id.get("imageDigest"), image_id.get("imageTag")
        failure = check_image_id(image_id)
        if failure is not None:
            return [], failure
        image = self.find(image_id)
        if image is None:
            if digest and tag and digest in self.by_digest:
                return [], failed(
                    image_id,
                    "ImageTagDoesNotMatchDigest",
                    "Invalid request parameters: given tag does not map to the given digest",
                )
            return [], failed(image_id, "ImageNotFound", "Requested image not found")
        image_digest = image.get_image_digest()
        whole_image = bool(digest) and digest_and_tag_deletes_image
        if tag and len(image.image_tags) > 1 and not whole_image:
            self._untag(image, tag)
            return [{"imageDigest": image_digest, "imageTag": tag}], None
        referenced_by = self.referencing_indexes(image_digest)
        if referenced_by:
            return [], failed(
                image_id,
                "ImageReferencedByManifestList",
                f"Requested image referenced by manifest list: {referenced_by}",
            )
        tags = [tag] if tag and not whole_image else list(image.image_tags)
        self.remove(image)
        if not tags:
            return [{"imageDigest": image_digest}], None
        return [{"imageDigest": image_digest, "imageTag": each} for each in tags], None

    def settle(self, now: datetime) -> None:
        """Finish every restore whose delay has passed, before answering about the images."""
        for image in self.repository.images:
            meta_of(image).settle(now)

    def update_storage_class(
        self, image: Image, target: str, now: datetime, activation_delay: timedelta
    ) -> str:
        """UpdateImageStorageClass: ARCHIVE at once; STANDARD through ACTIVATING. New status."""
        meta = meta_of(image)
        meta.settle(now)
        if target == "ARCHIVE":
            if meta.status != "ACTIVE":
                raise EcrError(
                    "ImageStorageClassUpdateNotSupportedException",
                    f"The image {image.get_image_digest()} is {meta.status} and can't be "
                    "archived; only ACTIVE images can",
                )
            meta.status, meta.last_archived_at = "ARCHIVED", now
            return meta.status
        if meta.status != "ARCHIVED":
            raise EcrError(
                "ImageStorageClassUpdateNotSupportedException",
                f"The image {image.get_image_digest()} is {meta.status} and can't be restored; "
                "only ARCHIVED images can",
            )
        meta.status, meta.activating_until = "ACTIVATING", now + activation_delay
        meta.settle(now)
        return meta.status

    def record_pull(self, image: Image, now: datetime) -> None:
        """ECR refreshes lastRecordedPullTime at most once every 24 hours."""
        meta = meta_of(image)
        if meta.last_pull is None or now - meta.last_pull >= PULL_TIME_REFRESH:
            meta.last_pull = now


def check_image_id(image_id: dict[str, Any]) -> dict[str, Any] | None:
    digest, tag = image_id.get("imageDigest"), image_id.get("imageTag")
    if not digest and not tag:
        return failed(
            image_id,
            "MissingDigestAndTag",
            "Invalid request parameters: both tag and digest cannot be null",
        )
    if digest and not DIGEST_PATTERN.match(digest):
        return failed(
            image_id,
            "InvalidImageDigest",
            "Invalid request parameters: image digest should satisfy the regex "
            "'[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'",
        )
    return None


def failed(image_id: dict[str, Any], code: str, reason: str) -> dict[str, Any]:
    return {"imageId": dict(image_id), "failureCode": code, "failureReason": reason}


def backend(account_id: str, region: str) -> Any:
    return ecr_backends[account_id][region]


def repository_not_found(name: str, registry_id: str) -> EcrError:
    return EcrError(
        "RepositoryNotFoundException",
        f"The repository with name '{name}' does not exist in the registry with id '{registry_id}'",
    )


def open_repository(account_id: str, region: str, name: str, registry_id: str | None) -> RepoView:
    registry = registry_id or account_id
    repository = backend(account_id, region).repositories.get(name)
    if repository is None or repository.registry_id != registry:
        raise repository_not_found(name, registry)
    return RepoView(repository)


def ensure_repository(account_id: str, region: str, name: str) -> RepoView:
    ecr = backend(account_id, region)
    if name not in ecr.repositories:
        ecr.create_repository(
            repository_name=name,
            registry_id=None,
            encryption_config=None,
            image_scan_config=None,
            image_tag_mutability=None,
            tags=[],
        )
    return RepoView(ecr.repositories[name])


def image_detail(view: RepoView, image: Image) -> dict[str, Any]:
    """An ImageDetail with every field real ECR fills for this kind of image."""
    meta = meta_of(image)
    detail: dict[str, Any] = {
        "registryId": view.registry_id,
        "repositoryName": view.name,
        "imageDigest": image.get_image_digest(),
        "imageSizeInBytes": view.size_of(image),
        "imagePushedAt": meta.pushed_at.timestamp(),
        "imageManifestMediaType": meta.media_type,
        "imageStatus": meta.status,
    }
    if image.image_tags:
        detail["imageTags"] = list(image.image_tags)
    if meta.artifact_media_type:
        detail["artifactMediaType"] = meta.artifact_media_type
    if meta.subject_digest:
        detail["subjectManifestDigest"] = meta.subject_digest
    if meta.last_pull is not None:
        detail["lastRecordedPullTime"] = meta.last_pull.timestamp()
    if meta.last_archived_at is not None:
        detail["lastArchivedAt"] = meta.last_archived_at.timestamp()
    if meta.last_activated_at is not None:
        detail["lastActivatedAt"] = meta.last_activated_at.timestamp()
    return detail


def all_repositories(account_id: str, region: str) -> Iterable[Repository]:
    return list(backend(account_id, region).repositories.values())
