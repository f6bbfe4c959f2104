"""Named registries to seed: realistic manifests, CI tags, leftovers, months of push dates.

Seeding writes straight into the backend through the same code path as PutImage (no HTTP), in
push-time order, so moved tags leave untagged images behind exactly as real pushes do.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from local_ecr.manifests import SIGSTORE_BUNDLE, SPDX_JSON, Built, ManifestFactory, cosign_tag
from local_ecr.store import RepoView, ensure_repository, meta_of

Kind = Literal["image", "index", "child", "attestation", "signature", "referrer", "untagged"]
MAX_REPOSITORIES = 10_000
MAX_IMAGES_PER_REPOSITORY = 100_000
MAX_TOTAL_IMAGES = 1_000_000


@dataclass(frozen=True)
class SeededImage:
    """One manifest as seeded (tags as they ended up after every push of the scenario)."""

    repository: str
    digest: str
    tags: tuple[str, ...]
    pushed_at: datetime
    kind: Kind
    media_type: str
    parents: tuple[str, ...] = ()
    subject: str | None = None
    status: str = "ACTIVE"
    """imageStatus after seeding: ACTIVE, ARCHIVED or ACTIVATING."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "digest": self.digest,
            "tags": list(self.tags),
            "pushedAt": self.pushed_at.isoformat(),
            "kind": self.kind,
            "mediaType": self.media_type,
            "parents": list(self.parents),
            "subject": self.subject,
            "imageStatus": self.status,
        }


@dataclass(frozen=True)
class SeedResult:
    """What a scenario put in the registry, for tests to compute expectations from."""

    scenario: str
    seed: int
    now: datetime
    repositories: tuple[str, ...]
    images: tuple[SeededImage, ...]
    notes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def in_repository(self, name: str) -> list[SeededImage]:
        return [image for image in self.images if image.repository == name]

    def of_kind(self, *kinds: Kind) -> list[SeededImage]:
        return [image for image in self.images if image.kind in kinds]

    def by_digest(self, repository: str, digest: str) -> SeededImage:
        return next(
            image
            for image in self.images
            if image.repository == repository and image.digest == digest
        )

    def with_tag(self, repository: str, tag: str) -> SeededImage:
        return next(image for image in self.in_repository(repository) if tag in image.tags)

    def summary(self) -> str:
        kinds: dict[str, int] = {}
        for image in self.images:
            kinds[image.kind] = kinds.get(image.kind, 0) + 1
        counts = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
        return (
            f"seeded {self.scenario}: {len(self.repositories)} repositories, "
            f"{len(self.images)} images ({counts})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "now": self.now.isoformat(),
            "repositories": list(self.repositories),
            "images": [image.to_dict() for image in self.images],
            "notes": {key: list(value) for key, value in self.notes.items()},
        }


@dataclass
class _Origin:
    kind: Kind
    parents: set[str] = field(default_factory=set)
    subject: str | None = None


class Seeder:
    """Pushes manifests into repositories and remembers what each one is."""

    def __init__(self, account_id: str, region: str, now: datetime, seed: int) -> None:
        self.account_id, self.region, self.now = account_id, region, now
        self.rng = random.Random(seed)
        self.make = ManifestFactory(self.rng)
        self.views: dict[str, RepoView] = {}
        self.origins: dict[tuple[str, str], _Origin] = {}
        self.notes: dict[str, list[str]] = {}

    def repo(self, name: str) -> RepoView:
        if name not in self.views:
            self.views[name] = ensure_repository(self.account_id, self.region, name)
        return self.views[name]

    def ago(self, days: float = 0, hours: float = 0) -> datetime:
        return self.now - timedelta(days=days, hours=hours)

    def push(
        self,
        repository: str,
        built: Built,
        tags: list[str] | tuple[str, ...],
        at: datetime,
        kind: Kind = "image",
        *,
        subject: str | None = None,
    ) -> str:
        """Push `built` with each tag (moving it); a manifest already present only gains tags."""
        view = self.repo(repository)
        digest = built.digest
        body = built.body.decode()
        if digest not in view.by_digest:
            view.put(body, tags[0] if tags else None, built.media_type, None, at)
            tags = tags[1:]
        for tag in tags:
            if tag not in view.by_digest[digest].image_tags:
                view.put(body, tag, built.media_type, None, at)
        self.origins.setdefault((repository, digest), _Origin(kind, subject=subject))
        return digest

    def push_index(
        self,
        repository: str,
        children: list[tuple[Built, str]],
        tags: list[str],
        at: datetime,
        *,
        attestations: bool = True,
        oci: bool = True,
    ) -> str:
        attached = (
            [(self.make.attestation(child), child) for child, _ in children]
            if (attestations and oci)
            else []
        )
        index = self.make.index(children, attached, oci=oci)
        for child, _ in children:
            self.push(repository, child, [], at, "child")
            self.origins[repository, child.digest].parents.add(index.digest)
        for attestation, _ in attached:
            self.push(repository, attestation, [], at, "attestation")
            self.origins[repository, attestation.digest].parents.add(index.digest)
        return self.push(repository, index, tags, at, "index")

    def sign(self, repository: str, subject: str, at: datetime, kinds: tuple[str, ...]) -> None:
        for kind in kinds:
            built = self.make.cosign(kind)
            self.push(
                repository, built, [cosign_tag(subject, kind)], at, "signature", subject=subject
            )

    def refer(self, repository: str, subject: Built, artifact_type: str, at: datetime) -> str:
        built = self.make.referrer(subject, artifact_type)
        return self.push(repository, built, [], at, "referrer", subject=subject.digest)

    def archive(self, repository: str, digest: str, at: datetime) -> None:
        """Move an image to the archive storage class, as UpdateImageStorageClass did at `at`."""
        meta = meta_of(self.repo(repository).by_digest[digest])
        meta.status, meta.last_archived_at = "ARCHIVED", at

    def delete(self, repository: str, digest: str) -> None:
        view = self.repo(repository)
        view.remove(view.by_digest[digest])
        view.flush()

    def note(self, key: str, *values: str) -> None:
        self.notes.setdefault(key, []).extend(values)

    def result(self, scenario: str, seed: int) -> SeedResult:
        images: list[SeededImage] = []
        for name, view in self.views.items():
            for image in view.images():
                digest = image.get_image_digest()
                origin = self.origins.get((name, digest), _Origin("image"))
                kind: Kind = origin.kind
                if kind == "image" and not image.image_tags:
                    kind = "untagged"
                images.append(
                    SeededImage(
                        repository=name,
                        digest=digest,
                        tags=tuple(image.image_tags),
                        pushed_at=meta_of(image).pushed_at,
                        kind=kind,
                        media_type=meta_of(image).media_type,
                        parents=tuple(sorted(origin.parents)),
                        subject=origin.subject,
                        status=meta_of(image).status,
                    )
                )
        return SeedResult(
            scenario=scenario,
            seed=seed,
            now=self.now,
            repositories=tuple(self.views),
            images=tuple(images),
            notes={key: tuple(values) for key, values in self.notes.items()},
        )


def _short_sha(rng: random.Random) -> str:
    return f"sha-{rng.getrandbits(28):07x}"


def _spread(seeder: Seeder, count: int, days: float) -> list[datetime]:
    """`count` push times over the last `days` days, oldest first."""
    return sorted(seeder.ago(days=seeder.rng.uniform(0.05, days)) for _ in range(count))


def demo(s: Seeder, repositories: int, per_repository: int) -> None:
    """Four repositories, 49 images: enough for a default sweep to delete and keep for reasons."""
    del repositories, per_repository
    for number in range(14):  # web: releases every 10 days; `latest` pinned to an old one
        tags = [f"v1.{number}.0"] + (["latest"] if number == 1 else [])
        s.push("web", s.make.image(), tags, s.ago(days=150 - 10 * number))
    s.note("old_tagged_latest", s.repo("web").by_tag["latest"].get_image_digest())
    for when in (s.ago(days=45), s.ago(days=30), s.ago(days=12), s.ago(hours=5)):
        s.push("web", s.make.image(), ["staging"], when)
    s.push("web", s.make.image(), ["dev"], s.ago(hours=2))
    s.push("web", s.make.image(), ["dev"], s.ago(hours=1))

    first_amd, shared_arm = s.make.image(oci=True), s.make.image(oci=True)
    s.push("api", s.make.image(), ["rc"], s.ago(days=70))
    s.push_index(
        "api",
        [(first_amd, "linux/amd64"), (shared_arm, "linux/arm64")],
        ["v2.0.0", "latest"],
        s.ago(days=60),
    )
    s.push("api", s.make.image(), ["rc"], s.ago(days=40))
    s.push_index(
        "api",
        [(s.make.image(oci=True), "linux/amd64"), (shared_arm, "linux/arm64")],
        ["v2.1.0", "latest"],
        s.ago(days=10),
    )

    for number, when in enumerate(_spread(s, 8, 30)):
        digest = s.push("worker", s.make.image(), [_short_sha(s.rng), "main"], when)
        if number == 7:
            s.sign("worker", digest, when, ("sig",))
    s.push("worker", s.make.image(), ["pr-12", _short_sha(s.rng)], s.ago(days=3))
    for when in (s.ago(days=20), s.ago(days=9), s.ago(hours=6), s.ago(hours=2)):
        s.push("worker", s.make.image(), ["pr-7"], when)

    for number, days in enumerate((90, 50, 15)):
        built = s.make.image(oci=True)
        s.push(
            "batch",
            built,
            [f"v0.{number + 1}.0"] + (["latest"] if number == 2 else []),
            s.ago(days=days),
        )
    s.refer("batch", built, SPDX_JSON, s.ago(days=15))


def archived(s: Seeder, repositories: int, per_repository: int) -> None:
    """`archive-app`: 12 active releases and 5 older archived ones, all tagged.

    Default settings keep the 10 newest active releases, expire the 2 oldest and leave the
    archived ones alone; with expiredImageAction=archive, 10 stay active and 7 end archived.
    `archive-mixed` adds an archived index (with its archived children), an untagged archived
    image archived 200 days ago, and an image being restored (ACTIVATING).
    """
    del repositories, per_repository
    for number in range(5):
        digest = s.push("archive-app", s.make.image(), [f"v0.{number}.0"], s.ago(days=400 - number))
        s.archive("archive-app", digest, s.ago(days=100 - number))
    for number in range(12):
        s.push("archive-app", s.make.image(), [f"v1.{number}.0"], s.ago(days=60 - 5 * number))
    s.note("archived_tags", *(f"v0.{number}.0" for number in range(5)))

    amd, arm = s.make.image(oci=True), s.make.image(oci=True)
    index = s.push_index(
        "archive-mixed", [(amd, "linux/amd64"), (arm, "linux/arm64")], ["v1.0.0"], s.ago(300)
    )
    for digest in (index, amd.digest, arm.digest):
        s.archive("archive-mixed", digest, s.ago(days=150))
    for origin in list(s.origins):  # BuildKit attestations of the index are archived too
        if origin[0] == "archive-mixed" and index in s.origins[origin].parents:
            s.archive("archive-mixed", origin[1], s.ago(days=150))
    leftover = s.push("archive-mixed", s.make.image(), [], s.ago(days=280))
    s.archive("archive-mixed", leftover, s.ago(days=200))
    warming = s.push("archive-mixed", s.make.image(), ["v0.9.0"], s.ago(days=320))
    meta = meta_of(s.repo("archive-mixed").by_digest[warming])
    meta.status, meta.last_archived_at = "ACTIVATING", s.ago(days=250)
    meta.activating_until = s.now + timedelta(minutes=20)
    for number in range(3):
        s.push("archive-mixed", s.make.image(), [f"v2.{number}.0"], s.ago(days=20 - 5 * number))


def ci(s: Seeder, repositories: int, per_repository: int) -> None:
    """CI builds: main builds `sha-…` + `main`, releases `vX.Y.Z` + `latest`, PR builds `pr-N`."""
    for index in range(repositories):
        name = f"ci-service-{index + 1:02d}"
        release = 0
        for number, when in enumerate(_spread(s, per_repository, 120)):
            if s.rng.random() < 0.3:
                s.push(name, s.make.image(), [f"pr-{s.rng.randint(100, 112)}"], when)
                continue
            tags = [_short_sha(s.rng), "main"]
            if number % 8 == 7:
                release += 1
                tags += [f"v1.{release}.{s.rng.randint(0, 3)}", "latest"]
            s.push(name, s.make.image(oci=s.rng.random() < 0.3), tags, when)


def multi_arch(s: Seeder, repositories: int, per_repository: int) -> None:
    """Indexes (OCI with BuildKit attestations, Docker lists) sharing unchanged children."""
    for index in range(repositories):
        name = f"multiarch-{index + 1:02d}"
        arm = s.make.image(oci=True)
        for number, when in enumerate(_spread(s, per_repository, 150)):
            oci = number % 3 != 2
            amd = s.make.image(oci=oci)
            if s.rng.random() >= 0.4 or not oci:
                arm = s.make.image(oci=oci)
            tags = [f"v{number + 1}.0.0", "latest"] if number % 2 == 0 else ["nightly"]
            s.push_index(name, [(amd, "linux/amd64"), (arm, "linux/arm64")], tags, when, oci=oci)


def signed(s: Seeder, repositories: int, per_repository: int) -> None:
    """cosign `sha256-….sig/.att/.sbom` tags and OCI 1.1 referrers, plus an orphan signature."""
    for index in range(repositories):
        name = f"signed-{index + 1:02d}"
        for number, when in enumerate(_spread(s, per_repository, 120)):
            built = s.make.image(oci=True)
            digest = s.push(name, built, [f"v1.{number}.0", "latest"], when)
            kinds = (
                ("sig",)
                + (("att",) if number % 2 == 0 else ())
                + (("sbom",) if number % 3 == 0 else ())
            )
            s.sign(name, digest, when + timedelta(minutes=2), kinds)
            if number % 2 == 1:
                s.refer(name, built, SPDX_JSON, when + timedelta(minutes=3))
            if number % 3 == 1:
                s.refer(name, built, SIGSTORE_BUNDLE, when + timedelta(minutes=3))
        gone = s.push(name, s.make.image(oci=True), [], s.ago(days=130))
        s.sign(name, gone, s.ago(days=130), ("sig",))
        s.delete(name, gone)
        s.note("orphan_signature_subjects", gone)


def untagged(s: Seeder, repositories: int, per_repository: int) -> None:
    """Leftovers: `main`/`develop` move on every push, so older builds end up untagged."""
    for index in range(repositories):
        name = f"leftovers-{index + 1:02d}"
        for number, when in enumerate(_spread(s, per_repository, 180)):
            s.push(name, s.make.image(), ["main" if number % 2 else "develop"], when)


def large(s: Seeder, repositories: int, per_repository: int) -> None:
    """Benchmark registry: single-arch images, 80% tagged `sha-…`, `latest` on the newest."""
    for index in range(repositories):
        name = f"large-{index + 1:04d}"
        times = _spread(s, per_repository, 365)
        for number, when in enumerate(times):
            tags = [_short_sha(s.rng)] if s.rng.random() < 0.8 else []
            if number == len(times) - 1:
                tags.append("latest")
            s.push(name, s.make.image(layers=2, compact=True), tags, when)


@dataclass(frozen=True)
class Scenario:
    build: Callable[[Seeder, int, int], None]
    default_size: tuple[int, int] | None  # None: the size is required
    sizable: bool = True


SCENARIOS: dict[str, Scenario] = {
    "demo": Scenario(demo, (4, 0), sizable=False),
    "archived": Scenario(archived, (2, 0), sizable=False),
    "ci": Scenario(ci, (3, 40)),
    "multi-arch": Scenario(multi_arch, (2, 6)),
    "signed": Scenario(signed, (2, 8)),
    "untagged": Scenario(untagged, (2, 20)),
    "large": Scenario(large, None),
}


def accepted_scenarios() -> str:
    names = []
    for name, scenario in SCENARIOS.items():
        if scenario.default_size is None:
            names.append(f"{name}:RxI")
        elif scenario.sizable:
            names.append(f"{name}[:RxI]")
        else:
            names.append(name)
    return ", ".join(names)


def parse_scenario(spec: str) -> tuple[str, tuple[int, int]]:
    """Parse "large:50x200" into ("large", (50, 200)); ValueError naming what is accepted."""
    name, _, size = spec.strip().partition(":")
    scenario = SCENARIOS.get(name)
    if scenario is None:
        raise ValueError(f"unknown scenario {spec!r}; accepted: {accepted_scenarios()}")
    if not size:
        if scenario.default_size is None:
            raise ValueError(
                f"scenario {name!r} needs a size RxI (repositories x images per repository), "
                f"e.g. {name}:50x200"
            )
        return name, scenario.default_size
    if not scenario.sizable:
        raise ValueError(f"scenario {name!r} has a fixed size; use plain {name!r}")
    match = re.fullmatch(r"(\d+)\s*[xX\u00d7]\s*(\d+)", size)
    if not match:
        raise ValueError(
            f"bad size {size!r} in scenario {spec!r}; expected RxI or RxI with whole numbers, "
            f"e.g. {name}:50x200"
        )
    repositories, per_repository = int(match.group(1)), int(match.group(2))
    if not 1 <= repositories <= MAX_REPOSITORIES:
        raise ValueError(f"repositories in {spec!r} must be 1..{MAX_REPOSITORIES}")
    if not 1 <= per_repository <= MAX_IMAGES_PER_REPOSITORY:
        raise ValueError(
            f"images per repository in {spec!r} must be 1..{MAX_IMAGES_PER_REPOSITORY}"
        )
    if repositories * per_repository > MAX_TOTAL_IMAGES:
        raise ValueError(f"scenario {spec!r} asks for more than {MAX_TOTAL_IMAGES} images")
    return name, (repositories, per_repository)


def seed_scenario(
    spec: str, *, account_id: str, region: str, now: datetime, seed: int
) -> SeedResult:
    name, (repositories, per_repository) = parse_scenario(spec)
    seeder = Seeder(account_id, region, now, seed)
    SCENARIOS[name].build(seeder, repositories, per_repository)
    label = name if not SCENARIOS[name].sizable else f"{name}:{repositories}x{per_repository}"
    return seeder.result(label, seed)
