"""A live progress display on a terminal's stderr, driven by the engine's own log records.

The engine logs `run.started` (how many repositories were selected), one `repository.summary` per
repository and one `image.deleted` per deletion. A logging handler turns those into a rich
progress bar, so the engine needs no callback of its own. Nothing is drawn unless stderr is a
terminal: piped or redirected output stays exactly as it was.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core.results import UNFINISHED

RUN_STARTED = "run.started"
"""Logged by the engine before the first repository, with `repositoriesSelected`."""
REPOSITORIES_SELECTED = "repositoriesSelected"


class ProgressHandler(logging.Handler):
    """Counts repositories, images and deletions from log records; safe from any thread."""

    def __init__(self, progress: Progress, *, dry_run: bool) -> None:
        super().__init__(level=logging.INFO)
        self._progress = progress
        self._dry_run = dry_run
        self._lock = threading.Lock()
        self.repositories_done = 0
        self.repositories_total: int | None = None
        self.images_seen = 0
        self.deleted = 0
        self._task = progress.add_task("repositories", total=None, stats=self._stats())

    def _stats(self) -> str:
        verb = "to delete" if self._dry_run else "deleted"
        return f"{self.images_seen} images seen, {self.deleted} {verb}"

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, ev.EVENT, None)
        with self._lock:
            if event == RUN_STARTED:
                selected = getattr(record, REPOSITORIES_SELECTED, None)
                if isinstance(selected, int) and not isinstance(selected, bool):
                    self.repositories_total = selected
            elif event == ev.REPOSITORY_SUMMARY:
                # A repository left unfinished (time budget, Ctrl-C) is not done.
                self.repositories_done += getattr(record, "status", None) != UNFINISHED
                self.images_seen += _count(record, "imagesScanned")
                if self._dry_run:
                    self.deleted += _count(record, "imagesExpired")
            elif event == ev.IMAGE_DELETED and not self._dry_run:
                self.deleted += 1
            else:
                return
            self._progress.update(
                self._task,
                total=self.repositories_total,
                completed=self.repositories_done,
                stats=self._stats(),
            )


def _count(record: logging.LogRecord, name: str) -> int:
    value: Any = getattr(record, name, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def stderr_console() -> Console:
    return Console(file=sys.stderr, stderr=True)


@contextlib.contextmanager
def progress_display(
    logger_name: str, *, dry_run: bool, console: Console | None = None
) -> Iterator[ProgressHandler | None]:
    """Show progress while the block runs, if stderr is an interactive terminal.

    The logger is opened to INFO records for the handler, while the stderr log handlers keep the
    level the user asked for (-v or not) and print above the live display instead of through it.
    """
    console = console or stderr_console()
    if not console.is_interactive:
        yield None
        return
    logger = logging.getLogger(logger_name)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    handler = ProgressHandler(progress, dry_run=dry_run)
    streams = {
        h: h.stream for h in stream_handlers(logger) if h.stream in (sys.stderr, sys.__stderr__)
    }
    previous_level = logger.level
    with progress:
        for stream_handler in streams:
            stream_handler.setStream(sys.stderr)  # rich's proxy: lines go above the display
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        try:
            yield handler
        finally:
            logger.removeHandler(handler)
            logger.setLevel(previous_level)
            for stream_handler, stream in streams.items():
                stream_handler.setStream(stream)


def stream_handlers(logger: logging.Logger) -> list[logging.StreamHandler[Any]]:
    """The stream handlers that records of this logger reach."""
    found: list[logging.StreamHandler[Any]] = []
    current: logging.Logger | None = logger
    while current is not None:
        found.extend(h for h in current.handlers if isinstance(h, logging.StreamHandler))
        current = current.parent if current.propagate else None
    return found
