"""Human output of a run: one rich table per repository, then the totals."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.table import Table

from ecr_sweeper.engine import RunSummary
from ecr_sweeper.model import Action


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def _age(pushed_at: datetime, now: datetime) -> str:
    days = (now - pushed_at).total_seconds() / 86400
    return f"{days:.1f} d" if days < 10 else f"{days:.0f} d"


def console_for_output() -> Console:
    """A terminal's own width; piped output gets room for the reasons instead of 80 columns."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


def render_summary(console: Console, summary: RunSummary, *, show_kept: bool = True) -> None:
    """Every decision with its reason, per repository, then the run's totals."""
    verb = "would delete" if summary.dry_run else "deleted"
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
            if decision.action is Action.KEEP and not show_kept:
                continue
            image = decision.image
            style = "red" if decision.action is Action.EXPIRE else "green"
            action = "delete" if decision.action is Action.EXPIRE else "keep"
            table.add_row(
                *((result.target,) if result.target else ()),
                f"[{style}]{action}[/{style}]",
                ", ".join(image.tags) or "<untagged>",
                image.digest.removeprefix("sha256:")[:12],
                _age(image.pushed_at, summary.started_at),
                _size(image.size_bytes),
                decision.reason.removeprefix("kept: ").removeprefix("expire: "),
            )
        console.print(table)
        if result.kept_by_protection:
            counts = ", ".join(f"{n} {p}" for p, n in sorted(result.kept_by_protection.items()))
            console.print(f"  kept by a protection: {counts}")
        for note in result.plan.notes:
            console.print(f"  note: {note}")
        for failure in result.delete_failures:
            console.print(
                f"  [red]delete failed[/red] {failure.image_id}: {failure.code} {failure.reason}"
            )
    data = summary.to_dict()
    mode = "[yellow]DRY RUN[/yellow] " if summary.dry_run else ""
    console.print(
        f"{mode}{data['repositories']} repositories, {data['imagesScanned']} images scanned; "
        f"{verb} {data['imagesExpired'] if summary.dry_run else data['imagesDeleted']} images "
        f"({_size(data['bytesExpired'] if summary.dry_run else data['bytesReclaimed'])}), "
        f"kept {data['imagesKept']}; failures: {data['failures']}"
    )
    if summary.unfinished_repositories:
        console.print(
            "[yellow]unfinished (time budget ran out):[/yellow] "
            + ", ".join(summary.unfinished_repositories)
        )
    if summary.throttled_calls:
        console.print(
            f"ECR throttled {summary.throttled_calls} calls (all retried); calls in flight went "
            f"down to {summary.lowest_concurrency}"
        )
