"""Human output of a run: a per-repository summary that fits a screen, totals with the monthly
saving, a bar chart of the biggest wins; and, with `--details`, every decision with its reason.

The summary is drawn from the run summary's JSON form (`RunSummary.to_dict()`), so a run the
Lambda logged (`ecr-sweeper runs show`) looks exactly like one the CLI just planned.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from rich.bar import Bar
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core.model import Action, Protection
from ecr_sweeper.core.results import FAILED, HELD, SKIPPED, SWEPT, UNFINISHED, RunSummary
from ecr_sweeper_cli.layout import Column, first_fitting, fitted_table
from ecr_sweeper_cli.progress import stderr_console

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


def _failure_notes(repository: Mapping[str, Any]) -> list[str]:
    """The short form of what failed, for the table; the whole reasons go below it
    (`failure_reasons`)."""
    notes: list[str] = []
    if repository.get("status") == FAILED:
        notes.append(f"failed: {repository.get('errorCode') or 'see below'}")
    failures = repository.get("deleteFailures") or []
    if failures:
        notes.append(counted(len(failures), "delete failure", "delete failures"))
    if repository.get("uncertain"):
        notes.append("nothing deleted (see below)")
    return notes


def _notes(repository: Mapping[str, Any], dry_run: bool) -> list[str]:
    """Why a repository needs a look: its status, failures, uncertainty and planner notes."""
    notes = _failure_notes(repository)
    status = repository.get("status", SWEPT)
    if status not in (SWEPT, FAILED):
        notes.insert(0, f"{status}: {repository.get('reason', '')}".rstrip(": "))
    if not dry_run:
        missed = int(repository.get("imagesExpired", 0)) - int(repository.get("imagesDeleted", 0))
        if missed > 0:
            notes.append(f"{missed} expired but not deleted")
    notes.extend(str(note) for note in repository.get("notes") or [])
    return notes


def failure_reasons(data: Mapping[str, Any]) -> list[str]:
    """Every failure of a run with its whole reason, one line each: failed repositories,
    failed deletes and repositories where nothing could be decided."""
    lines: list[str] = []
    for repository in data.get("perRepository") or []:
        name = _name(repository)
        if repository.get("status") == FAILED:
            what = f"{name}: failed"
            if repository["repository"] == EVERY_REPOSITORY:  # the whole registry or target
                where = repository.get("target")
                what = f"{where}: failed" if where else "could not list repositories"
            lines.append(f"{what}: {repository.get('reason', '')}")
        for failure in repository.get("deleteFailures") or []:
            lines.append(
                f"{name}: delete failed {failure.get('imageId')}: "
                f"{failure.get('failureCode')} {failure.get('failureReason')}"
            )
        if repository.get("uncertain"):
            lines.append(f"{name}: nothing deleted: {repository['uncertain']}")
    return lines


SUMMARIZED_EVENTS = frozenset(
    {
        ev.REPOSITORY_FAILED,
        ev.REPOSITORY_SKIPPED,
        ev.REPOSITORY_UNFINISHED,
        ev.REPOSITORY_HELD,
        ev.IMAGE_DELETE_FAILED,
        ev.IMAGE_DELETE_SKIPPED,
        ev.TARGET_FAILED,
    }
)
"""Log records whose news the summary reports (`failure_reasons`, the notes, the unfinished
line)."""


class LeftToTheSummary(logging.Filter):
    """Drops the records the summary reports, so each failure's reason is printed once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, ev.EVENT, None) not in SUMMARIZED_EVENTS


def _never_started(repository: Mapping[str, Any]) -> bool:
    """Left unfinished before it started: the unfinished line names it, no row needed."""
    return repository.get("status") == UNFINISHED and not repository.get("imagesScanned")


def _has_nothing_to_do(repository: Mapping[str, Any], dry_run: bool) -> bool:
    return (
        _to_delete(repository, dry_run) == 0
        and int(repository.get("imagesExpired", 0)) == 0
        and not _notes(repository, dry_run)
    )


EVERY_REPOSITORY = "*"
"""The result of a registry that could not be listed (engine.RegistrySweep)."""
NOTES_NARROWEST = 24
"""Below this the notes go under the table, one line per repository."""
NAME_NARROWEST = 12


def _summary_layouts(
    rows: Sequence[Mapping[str, Any]], dry_run: bool
) -> list[tuple[list[Column], bool, bool]]:
    """The summary's layouts, widest first: (columns, kept split into columns, notes inside)."""
    kept = [kept_by_reason(r) for r in rows]
    notes = [Text("; ".join(_notes(r, dry_run))) for r in rows]
    head = [
        Column("repository", [Text(_name(r)) for r in rows], fold=NAME_NARROWEST),
        Column("images", [str(r.get("imagesScanned", 0)) for r in rows], "right"),
        Column(
            "to delete" if dry_run else "deleted",
            [str(_to_delete(r, dry_run)) for r in rows],
            "right",
            style="red",
        ),
    ]
    split = [
        Column(
            "kept: policy" if column == "policy" else column,
            [str(k[column]) if k[column] else "-" for k in kept],
            "right",
        )
        for column in kept[0]
        if column == "policy" or any(k[column] for k in kept)
    ]
    total = Column("kept", [str(int(r.get("imagesKept", 0))) for r in rows], "right")
    size = Column(
        "to reclaim" if dry_run else "reclaimed",
        [size_text(_reclaimable(r, dry_run)) for r in rows],
        "right",
    )
    notes_column = Column("notes", notes, fold=NOTES_NARROWEST)
    has_notes = any(note.plain for note in notes)
    tail = [notes_column] if has_notes else []
    return [
        ([*head, *split, size, *tail], True, True),
        ([*head, total, size, *tail], False, True),
        ([*head, total, size], False, not has_notes),
    ]


def render_run(
    console: Console,
    data: Mapping[str, Any],
    *,
    price_per_gb_month: float,
    title: str | None = None,
    errors: Console | None = None,
) -> None:
    """The per-repository summary, the totals and the top repositories, from a run's JSON; every
    failure's whole reason goes to `errors` (stderr) below it."""
    dry_run = deleted_nothing(data)
    repositories: Sequence[Mapping[str, Any]] = data.get("perRepository") or []
    shown = [r for r in repositories if not _never_started(r)]
    busy = sorted(
        (r for r in shown if not _has_nothing_to_do(r, dry_run)),
        key=lambda r: (-_reclaimable(r, dry_run), -_to_delete(r, dry_run), r["repository"]),
    )
    idle = sorted(
        (r for r in shown if _has_nothing_to_do(r, dry_run)), key=lambda r: r["repository"]
    )
    if busy:
        layouts = _summary_layouts(busy, dry_run)
        chosen = first_fitting([columns for columns, _, _ in layouts], console.width)
        columns, split, notes_inside = next(layout for layout in layouts if layout[0] is chosen)
        console.print(
            fitted_table(columns, console.width, title=title, title_justify="left"),
            overflow="fold",
        )
        if not split:
            _kept_line(console, busy)
        if not notes_inside:
            for repository in busy:
                notes = _notes(repository, dry_run)
                if notes:
                    console.print(Text(f"  {_name(repository)}: {'; '.join(notes)}"))
    elif title:
        console.print(title)
    if idle:
        names = ", ".join(_name(r) for r in idle[:FOLDED_NAMES])
        more = f" and {len(idle) - FOLDED_NAMES} more" if len(idle) > FOLDED_NAMES else ""
        images = sum(int(r.get("imagesScanned", 0)) for r in idle)
        console.print(
            f"{counted(len(idle), 'repository', 'repositories')} with nothing to do "
            f"({counted(images, 'image', 'images')}, all kept): "
            f"{names}{more}",
            markup=False,
        )
    _totals(console, data, price_per_gb_month=price_per_gb_month)
    _chart(console, busy, dry_run)
    reasons = failure_reasons(data)
    if reasons:
        errors = errors or stderr_console()
        for line in reasons:
            errors.print(Text(f"ecr-sweeper: {line}"), soft_wrap=not errors.is_terminal)


def _kept_line(console: Console, busy: Sequence[Mapping[str, Any]]) -> None:
    """The kept images by why, over the rows shown, when there is no room for a column each."""
    totals: dict[str, int] = {}
    for repository in busy:
        for column, count in kept_by_reason(repository).items():
            totals[column] = totals.get(column, 0) + count
    parts = [f"{count} {column}" for column, count in totals.items() if count]
    if len(parts) > 1:
        console.print(Text("kept: " + ", ".join(parts)))


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
        return (
            f"{counted(len(held), 'repository', 'repositories')} whose plan grew were left "
            f"alone: {', '.join(held)}"
        )
    return None


def _repositories_line(data: Mapping[str, Any]) -> str:
    """'4 repositories planned, 1 skipped, 2 unfinished': every repository the run selected."""
    repositories: Sequence[Mapping[str, Any]] = data.get("perRepository") or []
    done = int(data.get("repositories", 0))
    parts = [
        f"{counted(done, 'repository', 'repositories')} "
        + ("planned" if deleted_nothing(data) else "swept")
    ]
    for status in (SKIPPED, FAILED, UNFINISHED, HELD):
        number = sum(
            1 for r in repositories if r.get("status") == status and r["repository"] != "*"
        )
        if number:
            parts.append(f"{number} {status}")
    return ", ".join(parts)


def _totals(console: Console, data: Mapping[str, Any], *, price_per_gb_month: float) -> None:
    dry_run = deleted_nothing(data)
    size = int(data.get("bytesExpired" if dry_run else "bytesReclaimed", 0))
    count = int(data.get("imagesExpired" if dry_run else "imagesDeleted", 0))
    mode = "[yellow]DRY RUN[/yellow] " if data.get("dryRun") else ""
    mode = "[red]HELD[/red] " if dry_run and not data.get("dryRun") else mode
    verb = "would delete" if dry_run else "deleted"
    saving = monthly_saving(size, price_per_gb_month)
    console.print(
        f"{mode}{escape(_repositories_line(data))}; "
        f"{counted(int(data.get('imagesScanned', 0)), 'image', 'images')} scanned"
    )
    console.print(
        f"{verb} {counted(count, 'image', 'images')} ({size_text(size)}), kept "
        f"{data.get('imagesKept', 0)}; failures: {data.get('failures', 0)}"
    )
    console.print(
        f"Estimated saving: [bold]${saving:,.2f} per month[/bold] "
        f"(at ${_price(price_per_gb_month)} per GB-month)"
    )
    archived = int(data.get("imagesToArchive" if dry_run else "imagesArchived", 0))
    if archived:
        verb = "would archive" if dry_run else "archived"
        console.print(f"{verb} {counted(archived, 'image', 'images')} (archive storage class)")
    unfinished = data.get("repositoriesUnfinished") or []
    if unfinished:
        reasons = [str(r.get("reason", "")) for r in data.get("perRepository") or []]
        why = (
            "interrupted"
            if any(reason.startswith("interrupted") for reason in reasons)
            else "time budget ran out"
        )
        console.print(
            f"[yellow]unfinished ({why}):[/yellow] "
            + escape(", ".join(unfinished))
            + "; the next run sweeps them"
        )
    held = held_text(data)
    if held:
        console.print("[red]held by the deletion guard:[/red] " + escape(held))
    if data.get("throttledCalls"):
        console.print(
            f"ECR throttled {data['throttledCalls']} calls (all retried); calls in flight went "
            f"down to {data.get('lowestConcurrency')}"
        )


def counted(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def _price(price: float) -> str:
    return f"{price:.2f}" if round(price, 2) == price else f"{price:g}"


CHART_BAR = 30
CHART_BAR_NARROWEST = 10
CHART_NAME_WIDEST = 40


def _chart(console: Console, busy: Sequence[Mapping[str, Any]], dry_run: bool) -> None:
    """The few repositories where most space goes, as bars."""
    top = [r for r in busy if _reclaimable(r, dry_run) > 0][:CHART_ROWS]
    if len(top) < 2:
        return
    largest = _reclaimable(top[0], dry_run)
    names = [str(r["repository"]) for r in top]
    sizes = [size_text(_reclaimable(r, dry_run)) for r in top]
    name_width = min(CHART_NAME_WIDEST, max(len(name) for name in names))
    size_width = max(len(size) for size in sizes)
    room = console.width - size_width - 2
    bar = max(CHART_BAR_NARROWEST, min(CHART_BAR, room - name_width))
    name_width = min(name_width, max(NAME_NARROWEST, room - bar))
    chart = Table.grid(padding=(0, 1))
    chart.add_column(no_wrap=True, overflow="ellipsis", width=name_width)
    chart.add_column(width=bar)
    chart.add_column(justify="right", no_wrap=True, width=size_width)
    for repository, name, size in zip(top, names, sizes, strict=True):
        chart.add_row(
            Text(name),
            Bar(largest, 0, _reclaimable(repository, dry_run), width=bar, color="red"),
            size,
        )
    console.print("Top repositories by " + ("reclaimable" if dry_run else "reclaimed") + " size:")
    console.print(chart)


REASON_NARROWEST_WITH_DIGEST = 32
REASON_NARROWEST = 20
"""The digest column goes before the reasons fold narrower than this."""
WIDE_REASONS = 140
"""From this width on, a decision's reason keeps its rule's description."""


def render_details(console: Console, summary: RunSummary) -> None:
    """Every decision with its reason, one table per repository. On a narrow terminal the
    reasons name their rule by number, and the rules are spelled out once below."""
    wide = console.width >= WIDE_REASONS
    rules: dict[int, str] = {}
    for result in summary.results:
        where = f"{result.target} " if result.target else ""
        status = "planned" if summary.dry_run and result.status == SWEPT else result.status
        title = f"{where}[bold]{escape(result.repository)}[/bold] ({status})"
        if result.reason:
            title += f": {escape(result.reason)}"
        if result.plan is None or not result.plan.decisions:
            console.print(title)
            continue
        decisions = result.plan.decisions
        reasons = []
        for decision in decisions:
            reason = (
                decision.reason.removeprefix("kept: ")
                .removeprefix("expire: ")
                .removeprefix("transition to archive: ")
            )
            if not wide:
                for priority, description in _rules_named(reason):
                    rules[priority] = description
                    reason = reason.replace(
                        f"rule {priority} ({json.dumps(description, ensure_ascii=False)})",
                        f"rule {priority}",
                    )
            reasons.append(Text(reason))
        columns = [
            Column(
                "action", [f"[{_SHOWN[d.action][0]}]{_SHOWN[d.action][1]}[/]" for d in decisions]
            ),
            Column(
                "tags", [Text(", ".join(d.image.tags) or "<untagged>") for d in decisions], fold=10
            ),
            Column("digest", [d.image.digest.removeprefix("sha256:")[:12] for d in decisions]),
            Column(
                "age", [_age(d.image.pushed_at, summary.started_at) for d in decisions], "right"
            ),
            Column("size", [size_text(d.image.size_bytes) for d in decisions], "right"),
            Column("reason", reasons, fold=REASON_NARROWEST_WITH_DIGEST),
        ]
        if result.target:
            columns.insert(0, Column("target", [result.target] * len(decisions), fold=12))
        without_digest = [
            replace(c, fold=REASON_NARROWEST) if c.header == "reason" else c
            for c in columns
            if c.header != "digest"
        ]
        chosen = first_fitting([columns, without_digest], console.width)
        console.print(fitted_table(chosen, console.width, title=title, title_justify="left"))
        for note in result.plan.notes:
            console.print(Text(f"  note: {note}"))
    if rules:
        console.print(
            Text(
                "Rules: "
                + "; ".join(f"{priority}: {rules[priority]}" for priority in sorted(rules))
            )
        )


_RULE_LABEL = re.compile(r'rule (\d+) \(("(?:[^"\\]|\\.)*")\)')


def _rules_named(reason: str) -> list[tuple[int, str]]:
    """The rules a reason names with their description: 'rule 2 ("keep ...")'."""
    found = []
    for match in _RULE_LABEL.finditer(reason):
        try:
            found.append((int(match.group(1)), str(json.loads(match.group(2)))))
        except ValueError:
            continue
    return found


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
