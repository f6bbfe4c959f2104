"""The effective policy in words: what the rules delete and what the protections keep.

Describes the policy in force (`Settings.policy()`), so a `lifecyclePolicy` is described as
itself rather than as the simple settings it replaces.
"""

from __future__ import annotations

from ecr_sweeper.core.lifecycle import Rule, Selection, days
from ecr_sweeper.core.settings import Settings


def _quoted(items: tuple[str, ...]) -> str:
    return ", ".join(f"'{item}'" for item in items)


def _selected(selection: Selection) -> str:
    """Which images a rule looks at, as a noun phrase."""
    if selection.tag_status == "untagged":
        return "untagged images"
    if selection.tag_status == "any":
        return "images (tagged or not)"
    if selection.tag_prefix_list:
        return f"images with tags starting with {_quoted(selection.tag_prefix_list)}"
    if set(selection.tag_pattern_list) <= {"*"}:
        return "tagged images"
    return f"images with tags matching {_quoted(selection.tag_pattern_list)}"


def rule_in_words(rule: Rule) -> str:
    """'keep the newest 10 tagged images, delete older ones', and so on."""
    selection = rule.selection
    what = _selected(selection)
    if selection.count_type == "imageCountMoreThan":
        sentence = f"keep the newest {selection.count_number} {what}, delete older ones"
    elif selection.count_type == "sinceImagePulled":
        sentence = (
            f"delete {what} not pulled for more than {days(selection.count_number)} "
            "(never pulled: pushed more than that ago)"
        )
    else:
        sentence = f"delete {what} pushed more than {days(selection.count_number)} ago"
    return f"rule {rule.priority}: {sentence}"


def policy_in_words(settings: Settings) -> list[str]:
    """One line for where the policy comes from, one per rule, one for the protections."""
    if settings.lifecycle_policy is not None:
        source = "the lifecyclePolicy setting (keepTaggedImages and untaggedGraceDays don't apply)"
    else:
        source = (
            f"keepTaggedImages={settings.keep_tagged_images} and "
            f"untaggedGraceDays={settings.untagged_grace_days}"
        )
    lines = [f"Policy from {source}:"]
    lines.extend(f"  {rule_in_words(rule)}" for rule in settings.policy().rules)
    kept = []
    if settings.protected_tags:
        kept.append(f"images tagged {_quoted(settings.protected_tags)}")
    users = [
        name
        for name, on in (
            ("ECS", settings.protect_ecs_images),
            ("Batch", settings.protect_batch_images),
            ("Lambda", settings.protect_lambda_images),
            ("SageMaker", settings.protect_sage_maker_images),
            ("CodeBuild", settings.protect_code_build_images),
            (f"EKS clusters {_quoted(settings.eks_clusters)}", bool(settings.eks_clusters)),
        )
        if on
    ]
    if users:
        listed = ", ".join(users[:-1]) + " and " if len(users) > 1 else ""
        kept.append(f"images in use by {listed}{users[-1]}")
    if settings.extra_image_references:
        kept.append(f"images listed in {settings.extra_image_references}")
    if settings.minimum_age_days:
        kept.append(f"images younger than {days(settings.minimum_age_days)}")
    kept.append("children of kept indexes and referrers of kept images")
    lines.append("  never deleted: " + "; ".join(kept))
    if settings.include_repositories != ("*",) or settings.exclude_repositories:
        scope = f"  repositories: {_quoted(settings.include_repositories) or 'none'}"
        if settings.exclude_repositories:
            scope += f", except {_quoted(settings.exclude_repositories)}"
        lines.append(scope)
    return lines
