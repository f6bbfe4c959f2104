"""The decision core: images and settings in, a plan with a reason per image out.

Pure functions over plain data (no boto3). The lifecycle policy decides what expires (or moves
to the archive tier) among the repository's top-level images; the protections here then keep what
must never go, and the image graph makes children of multi-arch indexes and referrers (signatures,
SBOMs, attestations) follow the image they belong to. Nothing a kept image needs is ever expired
or archived, and nothing an archived image needs is ever expired. Archiving obeys the same
protections as deleting: an archived image can't be pulled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from fnmatch import fnmatchcase

from ecr_sweeper.core import lifecycle
from ecr_sweeper.core.model import Action, Decision, Image, ImageStatus, Protection, RepositoryPlan
from ecr_sweeper.core.overrides import RepositoryRules
from ecr_sweeper.core.settings import Settings

COSIGN_TAG = re.compile(r"^sha256-([0-9a-f]{64})\.(sig|att|sbom)$")
"""cosign names a signature, attestation or SBOM after its subject's digest."""


@dataclass(frozen=True)
class RepositoryFacts:
    """What the run learned about a repository beyond DescribeImages.

    `children` maps each index digest to the digests its manifest lists. `in_use_by_digest` and
    `in_use_by_tag` name the holder (a service, task or function) of images in use. `uncertain`
    says why nothing may be deleted here this run (fail closed). `unreadable_indexes` are
    archived (or activating) indexes whose manifests can't be fetched, since such images can't
    be pulled: their children are unknown.
    """

    children: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    in_use_by_digest: Mapping[str, str] = field(default_factory=dict)
    in_use_by_tag: Mapping[str, str] = field(default_factory=dict)
    uncertain: str | None = None
    unreadable_indexes: tuple[str, ...] = ()


def select_repository(name: str, settings: Settings) -> bool:
    """Whether the include/exclude patterns select this repository."""
    included = any(fnmatchcase(name, pattern) for pattern in settings.include_repositories)
    return included and not any(
        fnmatchcase(name, pattern) for pattern in settings.exclude_repositories
    )


def cosign_subject(image: Image) -> str | None:
    """The subject digest a cosign-convention tag (`sha256-<hex>.sig`) names, if any."""
    for tag in image.tags:
        match = COSIGN_TAG.fullmatch(tag)
        if match:
            return f"sha256:{match.group(1)}"
    return None


@dataclass
class _Graph:
    """Who belongs to whom among the repository's images."""

    present: frozenset[str]
    parents: dict[str, set[str]]
    children: dict[str, tuple[str, ...]]
    subject: dict[str, str]
    referrers: dict[str, set[str]]

    @classmethod
    def of(
        cls, images: Mapping[str, Image], listed_children: Mapping[str, tuple[str, ...]]
    ) -> _Graph:
        graph = cls(frozenset(images), parents={}, children={}, subject={}, referrers={})
        for index, children in listed_children.items():
            if index not in images:
                continue
            present = tuple(child for child in children if child in images and child != index)
            graph.children[index] = present
            for child in present:
                graph.parents.setdefault(child, set()).add(index)
        for digest, image in images.items():
            if digest in graph.parents:
                continue
            subject = image.subject_digest or cosign_subject(image)
            if subject is not None and subject != digest:
                graph.subject[digest] = subject
                graph.referrers.setdefault(subject, set()).add(digest)
        return graph

    def follows_another(self, image: Image) -> bool:
        """Referrers and untagged children follow their image and never count toward keep-N.

        A child with a tag of its own is also an image in its own right: the policy judges it,
        and a kept index still keeps it.
        """
        return image.digest in self.subject or (image.digest in self.parents and not image.tags)

    def needs(self, digest: str) -> list[str]:
        """What must stay while this image stays: its children, subject and referrers."""
        needed = list(self.children.get(digest, ()))
        if self.subject.get(digest) in self.present:
            needed.append(self.subject[digest])
        needed.extend(sorted(self.referrers.get(digest, ())))
        return needed


def plan_repository(
    repository: str,
    images: Sequence[Image],
    rules: RepositoryRules,
    *,
    now: datetime,
    facts: RepositoryFacts | None = None,
    confirmed: frozenset[str] | None = None,
) -> RepositoryPlan:
    """Decide every image of one repository. `now` is when the run started.

    Images pushed after `now` are kept and left out of the policy's evaluation, so a push during
    the run can't push an older image out of the newest N. `images` may include archived and
    activating images (list with an explicit imageStatus filter): archived ones are seen only
    by archive rules, and activating ones are never touched. `confirmed`, when a person
    confirmed a plan, holds the digests they saw expire (or archive): any other is kept.
    """
    facts = facts or RepositoryFacts()
    by_digest = {image.digest: image for image in images}
    ordered = sorted(by_digest.values(), key=lambda i: (i.pushed_at, i.digest), reverse=True)
    if facts.uncertain is not None:
        reason = f"nothing is deleted in this repository this run: {facts.uncertain}"
        decisions = tuple(Decision.kept(i, Protection.UNCERTAIN, reason) for i in ordered)
        return RepositoryPlan(repository, decisions, rules.notes)

    graph = _Graph.of(by_digest, facts.children)
    top_level = [i for i in ordered if not graph.follows_another(i) and i.pushed_at <= now]
    verdicts = lifecycle.evaluate(rules.policy, top_level, now)
    decided: dict[str, Decision] = {}
    for image in ordered:
        if image.status is ImageStatus.ACTIVATING:
            decided[image.digest] = Decision(image, Action.KEEP, ACTIVATING_REASON)
            continue
        protected = _protection(image, graph, rules, facts, now)
        verdict = verdicts.get(image.digest)
        rule = verdict.acted_by if verdict is not None else None
        if verdict is not None and rule is None:
            decided[image.digest] = Decision(image, Action.KEEP, verdict.reason)
        elif protected is not None:
            if verdict is not None and rule is not None:
                would = f"{protected.reason}; {rule.label} would {verdict.action.value} it"
                protected = replace(protected, reason=would)
            decided[image.digest] = protected
        elif verdict is not None and rule is not None:
            decided[image.digest] = Decision(
                image,
                verdict.action,
                verdict.reason,
                rule_priority=rule.priority,
                rule_description=rule.description,
            )
    _follow(graph, by_digest, decided, rules, now)
    if facts.unreadable_indexes:
        kept = _keep_possible_children(decided, facts.unreadable_indexes)
        _keep_what_they_need(kept, graph, by_digest, decided, {Action.KEEP})
    decisions = tuple(_with_order(decided[i.digest], graph) for i in ordered)
    if confirmed is not None:
        decisions = _only_confirmed(decisions, confirmed)
    return RepositoryPlan(repository, decisions, rules.notes)


ACTIVATING_REASON = "kept: being restored from archive (ACTIVATING); never touched"


def _with_order(decision: Decision, graph: _Graph) -> Decision:
    """An expired or archived child goes after its indexes, and a referrer after its subject."""
    if decision.action is Action.KEEP:
        return decision
    digest = decision.image.digest
    follows = tuple(sorted(graph.parents.get(digest, ())))
    if not follows and graph.subject.get(digest) in graph.present:
        follows = (graph.subject[digest],)
    return replace(decision, follows=follows) if follows else decision


def _protection(
    image: Image, graph: _Graph, rules: RepositoryRules, facts: RepositoryFacts, now: datetime
) -> Decision | None:
    """The protection that keeps this image whatever the policy says, if one applies."""
    holder = facts.in_use_by_digest.get(image.digest) or next(
        (facts.in_use_by_tag[tag] for tag in image.tags if tag in facts.in_use_by_tag), None
    )
    if holder is not None:
        return Decision.kept(image, Protection.IN_USE, f"in use by {holder}")
    if image.pushed_at > now:
        return Decision.kept(image, Protection.CHANGED_DURING_RUN, "pushed after the run started")
    if image.digest not in graph.subject:
        tag = next(
            (t for t in image.tags for pattern in rules.protected_tags if fnmatchcase(t, pattern)),
            None,
        )
        if tag is not None:
            return Decision.kept(image, Protection.PROTECTED_TAG, f"tag {tag!r} is protected")
    age = now - image.pushed_at
    if age < rules.minimum_age:
        return Decision.kept(
            image,
            Protection.TOO_YOUNG,
            f"pushed {age.total_seconds() / 86400:.1f} days ago, younger than the minimum age "
            f"of {lifecycle.days(rules.minimum_age.days)}",
        )
    return None


def _follow(
    graph: _Graph,
    images: Mapping[str, Image],
    decided: dict[str, Decision],
    rules: RepositoryRules,
    now: datetime,
) -> None:
    """Keep everything a kept image needs; what nothing kept needs goes with its image.

    Orphaned OCI referrers (their subject is gone) are kept through the grace period first, so
    that what they in turn need is kept with them. A cosign-tagged artifact whose subject is not
    in this repository is always kept: its subject may live in another repository.
    """
    for digest in sorted(graph.subject):
        subject = graph.subject[digest]
        if digest in decided or subject in images:
            continue
        if images[digest].subject_digest is None:
            decided[digest] = Decision.kept(
                images[digest],
                Protection.REFERRER,
                f"cosign artifact for {subject[:19]}, which is not in this repository: cosign "
                "can keep signatures in a separate repository, so its subject may be alive",
            )
            continue
        age = now - images[digest].pushed_at
        if age <= rules.orphan_grace:
            decided[digest] = Decision(
                images[digest],
                Action.KEEP,
                f"kept: orphaned referrer (subject {subject[:19]} is gone) within the grace "
                f"period of {lifecycle.days(rules.orphan_grace.days)}",
            )
    kept = sorted(d for d, decision in decided.items() if decision.action is Action.KEEP)
    _keep_what_they_need(kept, graph, images, decided, {Action.KEEP})
    pending = sorted(d for d, decision in decided.items() if decision.action is Action.TRANSITION)
    while pending:
        holder = pending.pop()
        for needed in graph.needs(holder):
            current = decided.get(needed)
            if current is not None and current.action is not Action.EXPIRE:
                continue
            decided[needed] = _archived_with(
                images[needed], images[holder], graph, current, decided[holder]
            )
            if decided[needed].action is Action.TRANSITION:
                pending.append(needed)
    archived = sorted(
        digest
        for digest in images
        if digest not in decided and not _archived_owner_expires(images[digest], graph, decided)
    )
    for digest in archived:
        decided[digest] = Decision(
            images[digest],
            Action.KEEP,
            "kept: archived; the sweeper deletes an archived image only by an archive rule, or "
            "with an archived index or subject that one expires",
        )
    _keep_what_they_need(archived, graph, images, decided, {Action.KEEP, Action.TRANSITION})
    for digest in sorted(images):
        if digest not in decided:
            decided[digest] = _dependent_expiry(images[digest], graph, images, decided, rules)


def _keep_possible_children(decided: dict[str, Decision], unreadable: tuple[str, ...]) -> list[str]:
    """Any untagged or archived image may be a child of an index whose manifest is unknown.

    Such images are neither deleted nor archived this run; tagged active images go on as planned
    (unless a newly kept image needs them). Returns the digests newly kept.
    """
    names = ", ".join(digest[:19] for digest in sorted(unreadable))
    reason = (
        f"may be a child of archived index {names}, whose manifest can't be read (archived images "
        "can't be pulled)"
    )
    kept: list[str] = []
    for digest, decision in sorted(decided.items()):
        image = decision.image
        if decision.action is Action.KEEP or digest in unreadable:
            continue
        if not image.tags or image.status is not ImageStatus.ACTIVE:
            decided[digest] = Decision.kept(image, Protection.UNCERTAIN, reason)
            kept.append(digest)
    return kept


def _keep_what_they_need(
    holders: list[str],
    graph: _Graph,
    images: Mapping[str, Image],
    decided: dict[str, Decision],
    settled: set[Action],
) -> None:
    """Keep, transitively, what each holder needs, unless its decision is already `settled`."""
    pending = list(holders)
    while pending:
        holder = pending.pop()
        for needed in graph.needs(holder):
            current = decided.get(needed)
            if current is not None and current.action in settled:
                continue
            decided[needed] = Decision.kept(
                images[needed], *_why_needed(graph, holder, needed, images)
            )
            pending.append(needed)


def _archived_owner_expires(image: Image, graph: _Graph, decided: Mapping[str, Decision]) -> bool:
    """Whether a dependent image may go with what it belongs to.

    An active one always may. An archived child or referrer goes only when every index listing
    it (or its subject) is archived too and expired by an archive rule: an expiring active image
    never takes archived ones with it, and an archived orphan is kept, so that default settings
    leave archived images alone.
    """
    if image.status is ImageStatus.ACTIVE:
        return True
    owners = sorted(graph.parents.get(image.digest, ()))
    if not owners and image.digest in graph.subject:
        owners = [graph.subject[image.digest]]
    return bool(owners) and all(
        owner in decided
        and decided[owner].action is Action.EXPIRE
        and decided[owner].image.status is ImageStatus.ARCHIVED
        for owner in owners
    )


def _why_needed(
    graph: _Graph, holder: str, needed: str, images: Mapping[str, Image]
) -> tuple[Protection, str]:
    name = images[holder].label()
    if needed in graph.children.get(holder, ()):
        return Protection.INDEX_CHILD, f"child of kept index {name}"
    if graph.subject.get(holder) == needed:
        return Protection.REFERRER, f"subject of kept referrer {name}"
    return Protection.REFERRER, f"refers to kept image {name}"


def _archived_with(
    image: Image, holder: Image, graph: _Graph, current: Decision | None, owner: Decision
) -> Decision:
    """What an archived image needs is archived with it, never deleted before it.

    An image that is already archived stays as it is. `current` is the expiry a rule gave the
    image, if any: archiving it instead is then a protection at work.
    """
    is_child = image.digest in graph.children.get(holder.digest, ())
    relation = f"index {holder.label()}" if is_child else f"image {holder.label()}"
    if image.status is not ImageStatus.ACTIVE:
        return Decision(image, Action.KEEP, f"kept: already archived, as its {relation} will be")
    reason = f"archived with its {relation}"
    if current is None:
        return Decision(
            image,
            Action.TRANSITION,
            reason,
            rule_priority=owner.rule_priority,
            rule_description=owner.rule_description,
        )
    protection = Protection.INDEX_CHILD if is_child else Protection.REFERRER
    return Decision(
        image,
        Action.TRANSITION,
        f"{reason}, not deleted before it ({current.reason})",
        rule_priority=owner.rule_priority,
        rule_description=owner.rule_description,
        protection=protection,
    )


def _dependent_expiry(
    image: Image,
    graph: _Graph,
    images: Mapping[str, Image],
    decided: Mapping[str, Decision],
    rules: RepositoryRules,
) -> Decision:
    """A child or referrer that no kept image needs: it goes with its image, or as an orphan."""
    parents = sorted(graph.parents.get(image.digest, ()))
    if parents:
        names = ", ".join(images[p].label() for p in parents)
        return Decision(image, Action.EXPIRE, f"child of expired index {names}")
    subject = graph.subject[image.digest]
    if subject in images:
        owner = decided.get(subject)
        return Decision(
            image,
            Action.EXPIRE,
            f"referrer of expired image {images[subject].label()}",
            rule_priority=owner.rule_priority if owner else None,
            rule_description=owner.rule_description if owner else None,
        )
    return Decision(
        image,
        Action.EXPIRE,
        f"orphaned referrer: its subject {subject[:19]} no longer exists, and it is older "
        f"than the grace period of {lifecycle.days(rules.orphan_grace.days)}",
    )


def _only_confirmed(
    decisions: tuple[Decision, ...], confirmed: frozenset[str]
) -> tuple[Decision, ...]:
    """Keep what a person did not see expire (or archive) in the plan they confirmed."""
    return tuple(
        Decision.kept(d.image, Protection.NOT_CONFIRMED, "not in the plan that was confirmed")
        if d.action in (Action.EXPIRE, Action.TRANSITION) and d.image.digest not in confirmed
        else d
        for d in decisions
    )
