"""Which repositories a run sweeps, and in what order: the settings' include/exclude patterns
over the registry's listing, in name order, started where the last run's budget ran out.

The orchestrators own this (one registry's run in `engine.RegistrySweep`, the fan-out's List
step, the native policy's apply); the engine sweeps exactly the repositories it is handed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ecr_sweeper.core import planner
from ecr_sweeper.core.results import UNFINISHED, RepositoryResult
from ecr_sweeper.core.settings import Settings
from ecr_sweeper.ports import Registry, Repository


def selected(repositories: Iterable[Repository], settings: Settings) -> list[Repository]:
    """Those of `repositories` the settings' include/exclude patterns select, in name order."""
    return sorted(
        (r for r in repositories if planner.select_repository(r.name, settings)),
        key=lambda r: r.name,
    )


def selected_repositories(registry: Registry, settings: Settings) -> list[Repository]:
    """Every repository (all pages) the settings select, in name order; raises RegistryError."""
    return selected(registry.repositories(), settings)


def resume_order(
    repositories: Sequence[Repository], resume_from: str | None
) -> tuple[list[Repository], str | None]:
    """Start at the first repository from `resume_from` on (where the last run's budget ran
    out), then wrap around; also returns the name started at (None: from the first)."""
    if not resume_from:
        return list(repositories), None
    start = next((n for n, r in enumerate(repositories) if r.name >= resume_from), 0)
    started_at = repositories[start].name if repositories else None
    return [*repositories[start:], *repositories[:start]], started_at


def first_unfinished(
    ordered: Sequence[Repository], results: Sequence[RepositoryResult]
) -> str | None:
    """The first repository, in the run's order, that the budget left unfinished: where the
    next run starts."""
    status = {result.repository: result.status for result in results}
    return next((r.name for r in ordered if status.get(r.name) == UNFINISHED), None)
