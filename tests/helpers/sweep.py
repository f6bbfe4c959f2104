"""Helpers for sweeping the local ECR: build registries, run the engine, read what is left."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.config import Config

from ecr_sweeper.aws.clients import AwsTarget
from ecr_sweeper.aws.ecr import PAGE_SIZE, EcrRegistry
from ecr_sweeper.aws.limiter import AdaptiveLimiter
from ecr_sweeper.core.references import InUse
from ecr_sweeper.core.results import RunSummary
from ecr_sweeper.core.settings import Settings
from ecr_sweeper.ports import Cursor
from ecr_sweeper.sweep.budget import TimeBudget
from ecr_sweeper.sweep.engine import RegistrySweep, Sweeper
from ecr_sweeper.sweep.guard import RunGuard
from ecr_sweeper.sweep.in_use import images_in_use
from local_ecr import LocalEcr
from local_ecr.manifests import Built, ManifestFactory

NOW = datetime.now(UTC).replace(microsecond=0)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def push(
    local_ecr: LocalEcr, repository: str, built: Built, tag: str | None, days_ago: float
) -> str:
    return local_ecr.push_image(
        repository, built.body, tag, pushed_at=ago(days_ago), media_type=built.media_type
    )


def remaining(local_ecr: LocalEcr, repository: str) -> dict[str, tuple[str, ...]]:
    """digest -> tags of every image left in the repository (all pages)."""
    client = local_ecr.client("ecr")
    left: dict[str, tuple[str, ...]] = {}
    for page in client.get_paginator("describe_images").paginate(repositoryName=repository):
        for detail in page["imageDetails"]:
            left[detail["imageDigest"]] = tuple(sorted(detail.get("imageTags", [])))
    return left


def sweeper(
    local_ecr: LocalEcr,
    settings: Settings | None = None,
    *,
    dry_run: bool = False,
    client: Any | None = None,
    logger: logging.Logger | None = None,
    page_size: int = PAGE_SIZE,
    tracer: Any | None = None,
    approved: dict[str, frozenset[str]] | None = None,
    max_concurrency: int | None = None,
    budget: TimeBudget | None = None,
    cursor: Cursor | None = None,
    in_use: Callable[[], InUse] | None = None,
) -> RegistrySweep:
    """The engine on the emulator, as the handler wires it, with the run starting at NOW."""
    chosen = settings or Settings()
    target = AwsTarget(region=local_ecr.region, endpoint_url=local_ecr.endpoint_url)
    # Standard mode: adaptive mode's client-side rate limiter waits in real time after throttling.
    ecr_client = client or local_ecr.client(
        "ecr", config=Config(retries={"mode": "standard", "max_attempts": 10})
    )
    workers = max_concurrency or chosen.max_concurrency
    engine = Sweeper(
        EcrRegistry(ecr_client, page_size=page_size, limiter=AdaptiveLimiter(workers)),
        chosen,
        logger or logging.getLogger("test.sweep"),
        dry_run=dry_run,
        clock=lambda: NOW,
        tracer=tracer,
        approved=approved,
        images_in_use=in_use or (lambda: images_in_use(chosen, target.client)),
        max_concurrency=workers,
        budget=budget,
    )
    return RegistrySweep(engine, cursor)


def sweep(
    local_ecr: LocalEcr,
    settings: Settings | None = None,
    *,
    guard: RunGuard | None = None,
    **kwargs: Any,
) -> RunSummary:
    return sweeper(local_ecr, settings, **kwargs).run(guard)


CI_TAGS = ("main", "latest", "v1.2.{n}", "sha-{h}", "pr-{n}")


Pushed = dict[str, list[tuple[str, tuple[str, ...], float]]]


def build_registry(local_ecr: LocalEcr, seed: int) -> Pushed:
    """Random CI-style registry; returns what was pushed, as the oracle's input."""
    rng = random.Random(seed)
    factory = ManifestFactory(rng)
    pushed: dict[str, list[tuple[str, tuple[str, ...], float]]] = {}
    for index in range(rng.randint(1, 4)):
        repository = f"team/service-{index}"
        history: list[tuple[str, str | None, float]] = []
        for step in range(rng.randint(0, 30)):
            template = rng.choice((*CI_TAGS, None, None))
            tag = template.format(n=step, h=f"{rng.getrandbits(24):06x}") if template else None
            days = round(rng.uniform(0, 120), 3)
            digest = push(local_ecr, repository, factory.image(compact=True), tag, days)
            history.append((digest, tag, days))
        if not history:
            local_ecr.client("ecr").create_repository(repositoryName=repository)
        left = remaining(local_ecr, repository)
        ages = {digest: days for digest, _, days in history}
        pushed[repository] = [(d, tags, ages[d]) for d, tags in left.items()]
    return pushed


def default_keeps(images: list[tuple[str, tuple[str, ...], float]]) -> set[str]:
    """The documented defaults, written independently of the engine."""
    tagged = sorted((i for i in images if i[1]), key=lambda i: (i[2], i[0]))
    keep = {digest for digest, _, _ in tagged[:10]}
    keep |= {digest for digest, tags, _ in images if "latest" in tags}
    keep |= {digest for digest, tags, days in images if not tags and days <= 1}
    return keep
