"""Tables that fit: the summary at 80, 100 and 160 columns, folded notes, numbers never cut,
and a progress bar that doesn't count what an interruption left undone."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console
from rich.progress import Progress
from test_cli_output import _record

from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core.results import UNFINISHED
from ecr_sweeper.sweep.budget import TimeBudget
from ecr_sweeper_cli.layout import Column, first_fitting, fitted_table, minimum_width
from ecr_sweeper_cli.progress import ProgressHandler
from ecr_sweeper_cli.render import render_run, size_text

LONG_NOTE = (
    "would expire 3 images that the sweep keeps: sha256:0123456789ab is a child of kept index "
    "v2.1.0, and its referrer"
)


def _repository(name: str, scanned: int, expired: int, size: int, **fields: Any) -> dict[str, Any]:
    return {
        "repository": name, "status": "swept", "imagesScanned": scanned,
        "imagesExpired": expired, "imagesDeleted": 0, "imagesKept": scanned - expired,
        "bytesExpired": size, "bytesReclaimed": 0, "deleteFailures": [],
        "keptByProtection": {"in-use": 1, "protected-tag": 2, "index-child": 3}, "notes": [],
        **fields,
    }  # fmt: skip


RUN = {
    "dryRun": True, "repositories": 3, "imagesScanned": 3100, "imagesExpired": 1500,
    "imagesKept": 1600, "bytesExpired": 123_456_789_012, "failures": 1,
    "perRepository": [
        _repository("team-platform/build-cache-images", 2000, 1000, 123_000_000_000,
                    notes=[LONG_NOTE]),
        _repository("web", 1000, 500, 456_789_012),
        _repository("api", 100, 0, 0, status="failed", reason="AccessDeniedException: " + "x" * 300,
                    errorCode="AccessDeniedException"),
    ],
}  # fmt: skip


def _printed(width: int) -> tuple[list[str], str]:
    out = Console(file=io.StringIO(), width=width, color_system=None)
    err = Console(file=io.StringIO(), width=width, color_system=None)
    render_run(out, RUN, price_per_gb_month=0.10, errors=err)
    return out.file.getvalue().splitlines(), err.file.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("width", [80, 100, 160])
def test_the_summary_fits_and_keeps_every_number_whole(width: int) -> None:
    lines, errors = _printed(width)
    assert max(len(line) for line in lines) <= width, "\n".join(lines)
    text = "\n".join(lines)
    assert "…" not in text
    rows = [line for line in lines if "│" in line]
    for size in (123_000_000_000, 456_789_012):
        assert any(size_text(size) in row for row in rows), size_text(size)
    for number in ("2000", "1000", "500"):
        assert any(f" {number} " in row for row in rows)
    assert " ".join(text.split()).count(" ".join(LONG_NOTE.split())) <= 1
    assert "AccessDeniedException" in text and "x" * 300 not in text
    assert errors.replace("\n", "").count("x" * 300) == 1, "the whole reason, on stderr, once"


def test_the_summary_layouts_by_width() -> None:
    wide, _ = _printed(160)
    header = next(line for line in wide if line.startswith("repository"))
    assert all(word in header for word in ("in use", "index child", "protected tag", "notes"))
    medium, _ = _printed(100)
    header = next(line for line in medium if line.startswith("repository"))
    assert "in use" not in header and "notes" in header, "no room for a column per protection"
    assert "kept: 1582 policy, 3 in use, 9 index child, 6 protected tag" in "\n".join(medium)
    narrow, _ = _printed(60)
    assert any(
        line.startswith("  team-platform/build-cache-images: would expire") for line in narrow
    )


def test_layouts_fold_text_and_never_numbers() -> None:
    number = Column("size", ["123.4 GB"], "right")
    text = Column("reason", ["a reason of some length that can wrap"], fold=10)
    assert minimum_width([number, text]) == 8 + 3 + 10
    assert first_fitting([[number, text], [number]], 20) == [number]
    table = fitted_table([number, text], 25)
    console = Console(file=io.StringIO(), width=25, color_system=None)
    console.print(table)
    printed = console.file.getvalue()  # type: ignore[attr-defined]
    assert "123.4 GB" in printed and max(len(line) for line in printed.splitlines()) <= 25


def test_progress_does_not_count_repositories_left_unfinished() -> None:
    progress = Progress(console=Console(file=io.StringIO()), auto_refresh=False)
    handler = ProgressHandler(progress, dry_run=False)
    handler.handle(_record("run.started", repositoriesSelected=40))
    handler.handle(_record(ev.REPOSITORY_SUMMARY, status="swept", imagesScanned=5))
    for _ in range(39):
        handler.handle(_record(ev.REPOSITORY_SUMMARY, status=UNFINISHED, imagesScanned=0))
    assert (handler.repositories_done, handler.repositories_total) == (1, 40)


def test_a_stopped_budget_is_spent_and_says_why() -> None:
    budget = TimeBudget(None)
    assert not budget.exhausted() and budget.why == "the time budget ran out"
    budget.stop("interrupted (Ctrl-C)")
    assert budget.exhausted() and budget.why == "interrupted (Ctrl-C)"
