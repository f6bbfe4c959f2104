"""Human output of a run: a per-repository summary that fits a screen, totals with the monthly
saving, a bar chart of the biggest wins; and, with `--details`, every decision with its reason.

The summary is drawn from the run summary's JSON form (`RunSummary.to_dict()`), so a run the
Lambda logged (`ecr-sweeper runs show`) looks exactly like one the CLI just planned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.bar import Bar
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ecr_sweeper.core.model import Action, Protection
from ecr_sweeper.core.results import RunSummary

BYTES_PER_GB = 1_000_000_000
"""Decimal GB, as the dashboard's savings estimate uses."""

KEPT_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("in use", (Protection.IN_USE.value,)),
    ("index child", (Protection.INDEX_CHILD.value,)),
    ("referrer", (Protection.REFERRER.value,)),
    ("protected tag", (Protection.PROTECTED_TAG.value,)),
    ("too young", (Protection.TOO_YOUNG.value,)),
)
"""Kept-by-protection counts with a column of their own; every other protection is 'other'."""

FOLDED_NAMES = 6
"""How many names of the repositories with nothing to do the folded line spells out."""

CHART_ROWS = 8

_SHOWN: dict[Action, tuple[str, str]] = {
    Action.KEEP: ("green", "keep"),
    Action.EXPIRE: ("red", "delete"),
    Action.TRANSITION: ("blue", "archive"),
}
"""How each action is shown: its colour and verb."""


def size_text(size: float) -> str:
    """1000-based units, as ECR's console shows sizes."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover - the loop returns at GB


def _age(pushed_at: datetime, now: datetime) -> str:
    days = (now - pushed_at).total_seconds() / 86400
    return f"{days:.1f} d" if days < 10 else f"{days:.0f} d"


class OutputConsole(Console):
    """A console whose closed output (`| head -1`) raises BrokenPipeError, which `main` turns
    into the one quiet exit every command shares; rich's own default exits 1."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def console_for_output() -> Console:
    """A terminal's own width; piped output gets room for the reasons instead of 80 columns."""
    console = OutputConsole()
    return console if console.is_terminal else OutputConsole(width=160)


def monthly_saving(size: int, price_per_gb_month: float) -> float:
    """USD per month that `size` bytes of ECR storage cost at the given price."""
    return size / BYTES_PER_GB * price_per_gb_month


def kept_by_reason(repository: Mapping[str, Any]) -> dict[str, int]:
    """A repository's kept images split by why: the policy, or each protection."""
    protections: dict[str, int] = dict(repository.get("keptByProtection") or {})
    kept = int(repository.get("imagesKept", 0))
    split = {"policy": kept - sum(protections.values())}
    for column, names in KEPT_COLUMNS:
        split[column] = sum(protections.pop(name, 0) for name in names)
    split["other"] = sum(protections.values())
    return split


def _reclaimable(repository: Mapping[str, Any], dry_run: bool) -> int:
    return int(repository.get("bytesExpired" if dry_run else "bytesReclaimed", 0))


def _to_delete(repository: Mapping[str, Any], dry_run: bool) -> int:
    return int(repository.get("imagesExpired" if dry_run else "imagesDeleted", 0))


def _notes(repository: Mapping[str, Any], dry_run: bool) -> list[str]:
    """Why a repository needs a look: its status, failures, uncertainty and planner notes."""
    notes: list[str] = []
    status = repository.get("status", "swept")
    if status != "swept":
        notes.append(f"{status}: {repository.get('reason', '')}".rstrip(": "))
    failures = repository.get("deleteFailures") or []
    if failures:
        notes.append(f"{len(failures)} delete failures")
    if not dry_run:
        missed = int(repository.get("imagesExpired", 0)) - int(repository.get("imagesDeleted", 0))
        if missed > 0:
            notes.append(f"{missed} expired but not deleted")
    if repository.get("uncertain"):
        notes.append(f"nothing deleted: {repository['uncertain']}")
    notes.extend(str(note) for note in repository.get("notes") or [])
    return notes


def _has_nothing_to_do(repository: Mapping[str, Any], dry_run: bool) -> bool:
    return (
        _to_delete(repository, dry_run) == 0
        and int(repository.get("imagesExpired", 0)) == 0
        and not _notes(repository, dry_run)
    )


def render_run(
    console: Console,
    data: Mapping[str, Any],
    *,
    price_per_gb_month: float,
    title: str | None = None,
) -> None:
    """The per-repository summary, the totals and the top repositories, from a run's JSON."""
    dry_run = deleted_nothing(data)
    repositories: Sequence[Mapping[str, Any]] = data.get("perRepository") or []
    busy = sorted(
        (r for r in repositories if not _has_nothing_to_do(r, dry_run)),
        key=lambda r: (-_reclaimable(r, dry_run), -_to_delete(r, dry_run), r["repository"]),
    )
    idle = sorted(
        (r for r in repositories if _has_nothing_to_do(r, dry_run)), key=lambda r: r["repository"]
    )
    verb = "to delete" if dry_run else "deleted"
    if busy:
        table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
        table.add_column("repository", no_wrap=True, overflow="ellipsis", max_width=40)
        table.add_column("images", justify="right")
        table.add_column(verb, justify="right", style="red")
        table.add_column("kept: policy", justify="right")
        for column, _names in (*KEPT_COLUMNS, ("other", ())):
            table.add_column(column, justify="right")
        table.add_column("reclaimable" if dry_run else "reclaimed", justify="right")
        table.add_column("notes", no_wrap=True, overflow="ellipsis", max_width=48)
        for repository in busy:
            kept = kept_by_reason(repository)
            table.add_row(
                _name(repository),
                str(repository.get("imagesScanned", 0)),
                str(_to_delete(repository, dry_run)),
                *(str(count) if count else "-" for count in kept.values()),
                size_text(_reclaimable(repository, dry_run)),
                Text("; ".join(_notes(repository, dry_run))),
            )
        console.print(table)
    elif title:
        console.print(title)
    if idle:
        names = ", ".join(_name(r) for r in idle[:FOLDED_NAMES])
        more = f" and {len(idle) - FOLDED_NAMES} more" if len(idle) > FOLDED_NAMES else ""
        images = sum(int(r.get("imagesScanned", 0)) for r in idle)
        console.print(
            f"{_count(len(idle), 'repository', 'repositories')} with nothing to do "
            f"({_count(images, 'image', 'images')}, all kept): "
            f"{names}{more}",
            markup=False,
        )
    for repository in busy:
        for failure in repository.get("deleteFailures") or []:
            console.print(
                f"  [red]delete failed[/red] {repository['repository']} "
                f"{escape(str(failure.get('imageId')))}: "
                f"{escape(str(failure.get('failureCode')))} "
                f"{escape(str(failure.get('failureReason')))}"
            )
    _totals(console, data, price_per_gb_month=price_per_gb_month)
    _chart(console, busy, dry_run)


def _name(repository: Mapping[str, Any]) -> str:
    """The repository, after its target (account/region) when the run swept several."""
    target = repository.get("target")
    return f"{target} {repository['repository']}" if target else str(repository["repository"])


def deleted_nothing(data: Mapping[str, Any]) -> bool:
    """A dry run, or a live run the deletion guard held (it finished as a dry run)."""
    guard = data.get("guard")
    return bool(data.get("dryRun")) or (isinstance(guard, Mapping) and guard.get("held") is True)


def held_text(data: Mapping[str, Any]) -> str | None:
    """What the deletion guard held in a run's JSON, in words (None: it held nothing)."""
    guard = data.get("guard")
    if isinstance(guard, Mapping) and guard.get("held") is True:
        top = ", ".join(
            f"{entry.get('repository')} ({entry.get('wouldDelete')})"
            for entry in guard.get("topRepositories") or []
            if isinstance(entry, Mapping)
        )
        return f"{guard.get('reason')}; nothing was deleted" + (f". Most: {top}" if top else "")
    held = [
        str(r.get("repository"))
        for r in data.get("perRepository") or []
        if isinstance(r, Mapping) and r.get("status") == "held"
    ]
    if held:
        return f"{len(held)} repositories whose plan grew were left alone: {', '.join(held)}"
    return None


def _totals(console: Console, data: Mapping[str, Any], *, price_per_gb_month: float) -> None:
    dry_run = deleted_nothing(data)
    size = int(data.get("bytesExpired" if dry_run else "bytesReclaimed", 0))
    count = int(data.get("imagesExpired" if dry_run else "imagesDeleted", 0))
    mode = "[yellow]DRY RUN[/yellow] " if data.get("dryRun") else ""
    mode = "[red]HELD[/red] " if dry_run and not data.get("dryRun") else mode
    verb = "would delete" if dry_run else "deleted"
    saving = monthly_saving(size, price_per_gb_month)
    console.print(
        f"{mode}{data.get('repositories', 0)} repositories, {data.get('imagesScanned', 0)} "
        f"images scanned; {verb} {count} images ({size_text(size)}), kept "
        f"{data.get('imagesKept', 0)}; failures: {data.get('failures', 0)}"
    )
    console.print(
        f"Estimated saving: [bold]${saving:,.2f} per month[/bold] "
        f"(at ${_price(price_per_gb_month)} per GB-month)"
    )
    archived = int(data.get("imagesToArchive" if dry_run else "imagesArchived", 0))
    if archived:
        verb = "would archive" if dry_run else "archived"
        console.print(f"{verb} {_count(archived, 'image', 'images')} (archive storage class)")
    unfinished = data.get("repositoriesUnfinished") or []
    if unfinished:
        console.print(
            "[yellow]unfinished (time budget ran out):[/yellow] "
            + escape(", ".join(unfinished))
            + "; the next run starts with them"
        )
    held = held_text(data)
    if held:
        console.print("[red]held by the deletion guard:[/red] " + escape(held))
    if data.get("throttledCalls"):
        console.print(
            f"ECR throttled {data['throttledCalls']} calls (all retried); calls in flight went "
            f"down to {data.get('lowestConcurrency')}"
        )


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def _price(price: float) -> str:
    return f"{price:.2f}" if round(price, 2) == price else f"{price:g}"


def _chart(console: Console, busy: Sequence[Mapping[str, Any]], dry_run: bool) -> None:
    """The few repositories where most space goes, as bars."""
    top = [r for r in busy if _reclaimable(r, dry_run) > 0][:CHART_ROWS]
    if len(top) < 2:
        return
    largest = _reclaimable(top[0], dry_run)
    chart = Table.grid(padding=(0, 1))
    chart.add_column(no_wrap=True, overflow="ellipsis", max_width=40)
    chart.add_column(width=30)
    chart.add_column(justify="right")
    for repository in top:
        size = _reclaimable(repository, dry_run)
        chart.add_row(
            repository["repository"],
            Bar(largest, 0, size, width=30, color="red"),
            size_text(size),
        )
    console.print("Top repositories by " + ("reclaimable" if dry_run else "reclaimed") + " size:")
    console.print(chart)


def render_details(console: Console, summary: RunSummary) -> None:
    """Every decision with its reason, one table per repository."""
    for result in summary.results:
        where = f"{result.target} " if result.target else ""
        title = f"{where}[bold]{result.repository}[/bold] ({result.status})"
        if result.reason:
            title += f": {result.reason}"
        if result.plan is None or not result.plan.decisions:
            console.print(title)
            continue
        table = Table(title=title, title_justify="left", expand=False)
        columns = ("action", "tags", "digest", "age", "size", "reason")
        for column in ("target", *columns) if result.target else columns:
            table.add_column(column, overflow="fold")
        for decision in result.plan.decisions:
            image = decision.image
            style, action = _SHOWN[decision.action]
            table.add_row(
                *((result.target,) if result.target else ()),
                f"[{style}]{action}[/{style}]",
                ", ".join(image.tags) or "<untagged>",
                image.digest.removeprefix("sha256:")[:12],
                _age(image.pushed_at, summary.started_at),
                size_text(image.size_bytes),
                decision.reason.removeprefix("kept: ")
                .removeprefix("expire: ")
                .removeprefix("transition to archive: "),
            )
        console.print(table)
        for note in result.plan.notes:
            console.print(f"  note: {note}")


def render_summary(
    console: Console,
    summary: RunSummary,
    *,
    price_per_gb_month: float,
    details: bool = False,
) -> None:
    """The summary a person reads first; `details` puts every decision above it."""
    if details:
        render_details(console, summary)
    render_run(console, summary.to_dict(), price_per_gb_month=price_per_gb_month)
