"""What the sweep knows about one repository and what it keeps there: its images, the facts
about them (index children, images in use) and the plan.

The repository unit plans with it, and native policy enforcement checks a policy against it
(what ECR would expire that the sweep keeps), so both read the repository once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from ecr_sweeper.core import overrides, planner
from ecr_sweeper.core.model import Action, Image, ImageStatus, RepositoryPlan
from ecr_sweeper.core.references import Usage
from ecr_sweeper.ports import Registry, Repository


@dataclass(frozen=True)
class SweepView:
    """One repository as the sweep sees it: every image, the facts, and the plan."""

    images: list[Image]
    facts: planner.RepositoryFacts
    plan: RepositoryPlan


def repository_facts(
    registry: Registry,
    usage: Callable[[], Usage],
    repository: Repository,
    images: list[Image],
) -> planner.RepositoryFacts:
    """Index children and images in use; any doubt (the usage's, an unreadable index manifest)
    makes the repository uncertain. `usage` is asked last: the run may still be learning it."""
    indexes = [image for image in images if image.is_index]
    readable = sorted(i.digest for i in indexes if i.status is ImageStatus.ACTIVE)
    manifests = registry.index_manifests(repository.name, readable) if readable else None
    known = usage()
    uncertain = known.uncertain
    by_digest, by_tag = known.in_use.for_repository(
        repository.registry_id, repository.region, repository.name
    )
    return planner.RepositoryFacts(
        children=manifests.children if manifests else {},
        in_use_by_digest=by_digest,
        in_use_by_tag=by_tag,
        uncertain=uncertain or (manifests.problem if manifests else None),
        unreadable_indexes=tuple(
            sorted(i.digest for i in indexes if i.status is not ImageStatus.ACTIVE)
        ),
    )


def sweep_view(
    registry: Registry,
    usage: Callable[[], Usage],
    repository: Repository,
    rules: overrides.RepositoryRules,
    *,
    now: datetime,
    confirmed: frozenset[str] | None = None,
) -> SweepView:
    """List the repository's images, learn the facts and plan it; raises RegistryError."""
    images = registry.images(repository.name)
    facts = repository_facts(registry, usage, repository, images)
    plan = planner.plan_repository(
        repository.name, images, rules, now=now, facts=facts, confirmed=confirmed
    )
    return SweepView(images, facts, plan)


def kept_by_the_sweep(view: SweepView) -> Mapping[str, str]:
    """{digest: why} for each image the sweep keeps for a reason ECR's own lifecycle policies
    know nothing of: in use, a child of a kept index, a referrer of a kept image."""
    decisions = {d.image.digest: d for d in view.plan.decisions}
    kept = {digest for digest, d in decisions.items() if d.action is Action.KEEP}
    facts = view.facts
    parents: dict[str, list[str]] = {}
    for index, children in facts.children.items():
        for child in children:
            if child != index:
                parents.setdefault(child, []).append(index)
    why: dict[str, str] = {}
    for digest in sorted(kept):
        image = decisions[digest].image
        holder = facts.in_use_by_digest.get(digest) or next(
            (facts.in_use_by_tag[tag] for tag in image.tags if tag in facts.in_use_by_tag), None
        )
        parent = next((p for p in sorted(parents.get(digest, ())) if p in kept), None)
        subject = image.subject_digest or planner.cosign_subject(image)
        if holder is not None:
            why[digest] = f"it is in use by {holder}"
        elif parent is not None:
            why[digest] = (
                f"the sweep keeps it: child of kept index {decisions[parent].image.label()}"
            )
        elif subject is not None and subject in kept:
            why[digest] = (
                f"the sweep keeps it: referrer of kept image {decisions[subject].image.label()}"
            )
    return why
