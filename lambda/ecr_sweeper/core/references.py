"""Image references as services hold them (`repo:tag`, `repo@sha256:…`, `repo:tag@sha256:…`).

Pure: the modules that ask ECS, Lambda, S3 and SSM hand their strings here, and the planner gets,
per repository, which digests and tags are in use and by whom.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_ECR_HOST = re.compile(
    r"^(?P<account>[0-9]{12})\.dkr[.-]ecr(-fips)?\.(?P<region>[a-z0-9-]+)\."
    r"(amazonaws\.com(\.cn)?|on\.aws|c2s\.ic\.gov|sc2s\.sgov\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$"
)
"""Private ECR registry hosts: IPv4 and dual-stack, FIPS, China and the isolated partitions."""
_LOOKS_LIKE_ECR = re.compile(r"dkr[.-]ecr", re.IGNORECASE)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImageReference:
    """One parsed reference; `registry` is None when the string names no ECR registry."""

    registry: tuple[str, str] | None
    repository: str
    tag: str | None
    digest: str | None


class ReferenceError(ValueError):
    """A string that is not an image reference."""


def looks_like_ecr(text: str) -> bool:
    """Whether a string seems to name a private ECR image, parsed or not."""
    return bool(_LOOKS_LIKE_ECR.search(text))


def parse_reference(text: str) -> ImageReference:
    """Split `[host/]repo[:tag][@sha256:…]`; the host tells the ECR account and region."""
    reference = text.strip()
    digest = None
    if "@" in reference:
        reference, digest = reference.rsplit("@", 1)
        digest = digest.lower()
        if not _DIGEST.fullmatch(digest):
            raise ReferenceError(f"{text!r}: the part after '@' is not a sha256 digest")
    host, _, path = reference.partition("/")
    registry = None
    host = host.lower().removesuffix(":443")
    match = _ECR_HOST.fullmatch(host)
    if match and path:
        registry = (match.group("account"), match.group("region"))
    else:
        path = reference
    tag = None
    name, colon, maybe_tag = path.rpartition(":")
    if colon and "/" not in maybe_tag:
        path, tag = name, maybe_tag
    if not path:
        raise ReferenceError(f"{text!r}: no repository name")
    return ImageReference(registry, path, tag, digest)


@dataclass
class InUse:
    """Every image reference found in use, with who holds it."""

    by_repository: dict[tuple[str, str, str], tuple[dict[str, str], dict[str, str]]] = field(
        default_factory=dict
    )
    unparsed: list[str] = field(default_factory=list)
    """References that may name an ECR image but can't be read: a run with any deletes nothing."""

    def add(self, text: str, holder: str) -> None:
        """Record one reference. One that seems to be ECR but can't be read is a problem the
        caller must not ignore (see `unreadable`); any other non-ECR image is not ours."""
        try:
            reference = parse_reference(text)
        except ReferenceError:
            self.unparsed.append(f"{text} ({holder})")
            return
        if reference.registry is None:
            if looks_like_ecr(text):
                self.unparsed.append(f"{text} ({holder})")
            return
        key = (*reference.registry, reference.repository)
        by_digest, by_tag = self.by_repository.setdefault(key, ({}, {}))
        if reference.digest:
            by_digest.setdefault(reference.digest, holder)
        if reference.tag or not reference.digest:
            by_tag.setdefault(reference.tag or "latest", holder)

    def for_repository(
        self, account: str, region: str, repository: str
    ) -> tuple[Mapping[str, str], Mapping[str, str]]:
        """(holders by digest, holders by tag) of one repository."""
        return self.by_repository.get((account, region, repository), ({}, {}))


@dataclass(frozen=True)
class Usage:
    """The images in use across a run, or (fail-closed: nothing is deleted) why that can't be
    known."""

    in_use: InUse
    uncertain: str | None = None
