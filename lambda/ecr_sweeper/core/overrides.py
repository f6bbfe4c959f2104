"""A repository's own settings: its `ecr-sweeper:*` resource tags over the run's settings.

Pure: resource tags and settings in, the rules in force for that repository out (or why its
tags can't be used). The planner plans with these rules; it never reads tags itself.

Tags are untrusted: `ecr:TagResource` is often granted to CI roles that may not widen what the
sweeper deletes. So a tag may only make the policy stricter (keep more, wait longer, skip)
unless the settings say `repositoryTagsMayLoosen`; a looser value is ignored and reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from ecr_sweeper.core import lifecycle
from ecr_sweeper.core.settings import Settings

TAG_PREFIX = "ecr-sweeper:"
SKIP_TAG = TAG_PREFIX + "skip"
KEEP_TAGGED_TAG = TAG_PREFIX + "keep-tagged-images"
UNTAGGED_GRACE_TAG = TAG_PREFIX + "untagged-grace-days"
MINIMUM_AGE_TAG = TAG_PREFIX + "minimum-age-days"
OVERRIDE_TAGS = (SKIP_TAG, KEEP_TAGGED_TAG, UNTAGGED_GRACE_TAG, MINIMUM_AGE_TAG)
"""Repository resource tags that override the settings for that repository."""


class OverrideError(ValueError):
    """A repository's override tags can't be used; the repository is then left alone."""


@dataclass(frozen=True)
class RepositoryRules:
    """The policy and protections in force for one repository."""

    policy: lifecycle.LifecyclePolicy
    protected_tags: tuple[str, ...]
    minimum_age: timedelta
    orphan_grace: timedelta
    skip: bool = False
    notes: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    """Why each override tag that would have loosened the settings was ignored (the run logs
    each as a warning)."""


def repository_rules(settings: Settings, resource_tags: Mapping[str, str]) -> RepositoryRules:
    """Apply a repository's `ecr-sweeper:*` resource tags on top of the settings."""
    unknown = sorted(
        k for k in resource_tags if k.startswith(TAG_PREFIX) and k not in OVERRIDE_TAGS
    )
    if unknown:
        raise OverrideError(
            f"unknown override tag {unknown[0]!r}; accepted tags are {', '.join(OVERRIDE_TAGS)}"
        )
    skip_value = resource_tags.get(SKIP_TAG)
    if skip_value is not None and skip_value.strip().lower() not in ("true", "false"):
        raise OverrideError(f"{SKIP_TAG}={skip_value!r}: expected true or false")
    notes: list[str] = []
    keep = _tag_number(resource_tags, KEEP_TAGGED_TAG, 1, 10000)
    grace = _tag_number(resource_tags, UNTAGGED_GRACE_TAG, 1, 3650)
    minimum_age = _tag_number(resource_tags, MINIMUM_AGE_TAG, 0, 3650)
    ignored: dict[str, str] = {}
    if not settings.repository_tags_may_loosen:
        if settings.lifecycle_policy is None:  # else the keep tag is ignored anyway (below)
            keep = _at_least(keep, settings.keep_tagged_images, KEEP_TAGGED_TAG, ignored)
        grace = _at_least(grace, settings.untagged_grace_days, UNTAGGED_GRACE_TAG, ignored)
        minimum_age = _at_least(minimum_age, settings.minimum_age_days, MINIMUM_AGE_TAG, ignored)
    if settings.lifecycle_policy is not None and (keep is not None or grace is not None):
        notes.append(
            f"a lifecyclePolicy is set: {KEEP_TAGGED_TAG} is ignored, and {UNTAGGED_GRACE_TAG} "
            "only sets the grace period of orphaned referrers"
        )
        keep = None
    if not notes:
        notes.extend(
            f"override {key}={resource_tags[key]}"
            for key in (KEEP_TAGGED_TAG, UNTAGGED_GRACE_TAG, MINIMUM_AGE_TAG)
            if key in resource_tags and key not in ignored
        )
    notes.extend(ignored.values())
    return RepositoryRules(
        policy=settings.policy(keep, grace),
        protected_tags=settings.protected_tags,
        minimum_age=timedelta(
            days=settings.minimum_age_days if minimum_age is None else minimum_age
        ),
        orphan_grace=timedelta(days=settings.untagged_grace_days if grace is None else grace),
        skip=(skip_value or "").strip().lower() == "true",
        notes=tuple(notes),
        ignored=tuple(ignored.values()),
    )


SETTING_OF_TAG = {
    KEEP_TAGGED_TAG: "keepTaggedImages",
    UNTAGGED_GRACE_TAG: "untaggedGraceDays",
    MINIMUM_AGE_TAG: "minimumAgeDays",
}
"""The setting each numeric override tag replaces; a larger value is always the stricter."""


def _at_least(value: int | None, setting: int, tag: str, ignored: dict[str, str]) -> int | None:
    """`value` if it keeps at least as much as the setting; else None (the setting stays), with
    why in `ignored`."""
    if value is None or value >= setting:
        return value
    ignored[tag] = (
        f"ignored {tag}={value}: it would loosen {SETTING_OF_TAG[tag]} ({setting}); a tag may "
        "only make the policy stricter unless repositoryTagsMayLoosen is true"
    )
    return None


def _tag_number(tags: Mapping[str, str], key: str, low: int, high: int) -> int | None:
    value = tags.get(key)
    if value is None:
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise OverrideError(f"{key}={value!r}: expected a whole number from {low} to {high}")
    return int(text)
