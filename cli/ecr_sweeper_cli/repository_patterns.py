"""`--repository PATTERN` that selects nothing: say so, and why, instead of "0 repositories".

A pattern no swept (or skipped) repository matches is explained on stderr: no repository has
such a name (with a did-you-mean), or each one it matches is left out by includeRepositories or
an excludeRepositories pattern. When no pattern matched anything, the run exits 2.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from fnmatch import fnmatchcase

from ecr_sweeper.aws.clients import AwsTarget
from ecr_sweeper.aws.ecr import EcrRegistry
from ecr_sweeper.core.results import FAILED, RunSummary
from ecr_sweeper.core.settings import Settings
from ecr_sweeper.ports import RegistryError
from ecr_sweeper.sweep import targets
from ecr_sweeper_cli.config import load_settings

EXIT_BAD_INPUT = 2


def why_unmatched(pattern: str, settings: Settings, names: Sequence[str] | None) -> str:
    """Why `--repository PATTERN` selected no repository: none has such a name, or each one it
    matches is left out by includeRepositories or by an excludeRepositories pattern.

    `settings` are the settings before --repository narrowed them; `names` every repository of
    the registry (None: not known, e.g. across several targets or when listing failed).
    """
    if names is None:
        return "no repository the settings select matches it"
    matching = sorted(name for name in names if fnmatchcase(name, pattern))
    if not matching:
        close = difflib.get_close_matches(pattern, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"no repository matches it (the registry has {len(names)}){hint}"
    reasons = []
    for name in matching:
        exclude = next((p for p in settings.exclude_repositories if fnmatchcase(name, p)), None)
        if not any(fnmatchcase(name, include) for include in settings.include_repositories):
            included = ", ".join(map(repr, settings.include_repositories))
            reasons.append(f"{name} (not in includeRepositories {included})")
        elif exclude is not None:
            reasons.append(f"{name} (excludeRepositories pattern {exclude!r})")
    return "it matches only repositories the settings leave out: " + (
        ", ".join(reasons) or ", ".join(matching)
    )


def refuse_unmatched(args: argparse.Namespace, summary: RunSummary) -> int | None:
    """Explain each --repository pattern that matched no repository of the run; exit code 2
    when none matched any (None: go on). A registry that couldn't be listed is reported as such
    already."""
    patterns: list[str] = getattr(args, "repository", [])
    if any(r.repository == "*" and r.status == FAILED for r in summary.results):
        return None
    unmatched = [
        p for p in patterns if not any(fnmatchcase(r.repository, p) for r in summary.results)
    ]
    if not unmatched:
        return None
    settings = load_settings(args.config, args.context)
    names = None if targets.is_multi_target(settings) else _names(args, settings)
    nothing = len(unmatched) == len(patterns)
    for pattern in unmatched:
        label = "" if nothing else "warning: "
        reason = why_unmatched(pattern, settings, names)
        print(f"ecr-sweeper: {label}--repository {pattern!r}: {reason}", file=sys.stderr)
    return EXIT_BAD_INPUT if nothing else None


def _names(args: argparse.Namespace, settings: Settings) -> list[str] | None:
    target = AwsTarget(region=args.region, profile=args.profile, endpoint_url=args.endpoint_url)
    registry = EcrRegistry(target.in_region(next(iter(settings.regions), None)).registry_client())
    try:
        return sorted(repository.name for repository in registry.repositories())
    except RegistryError:
        return None
