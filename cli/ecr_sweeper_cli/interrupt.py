"""Ctrl-C during a run: the first stops it cleanly, the second at once.

The first SIGINT spends the run's time budget (`TimeBudget.stop`): the engine starts no new
repository and no new delete batch, lets the calls in flight finish, and returns the summary so
far, which the command prints with one line saying what was done. The per-repository warnings
the stop causes ("unfinished", "not deleted") are left out of stderr: the summary lists the
unfinished repositories once. A second SIGINT exits with 130 straight away.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core.results import RunSummary
from ecr_sweeper.core.settings import Settings
from ecr_sweeper.sweep.budget import TimeBudget
from ecr_sweeper_cli.progress import stream_handlers
from ecr_sweeper_cli.render import counted

EXIT_INTERRUPTED = 130
"""128 + SIGINT: the shell's code for a command stopped by Ctrl-C."""
INTERRUPTED = "interrupted (Ctrl-C)"
"""Starts the reason of every repository the interruption left unfinished."""
_QUIETED_EVENTS = frozenset({ev.REPOSITORY_UNFINISHED, ev.IMAGE_DELETE_SKIPPED})
_SHOW_CURSOR = "\x1b[?25h"


@dataclass
class Interruption:
    """Whether the run was interrupted; filled in by the signal handler."""

    interrupted: bool = False


class RunInterrupted(Exception):
    """A run Ctrl-C stopped, with its summary so far (the command prints it and exits 130)."""

    def __init__(self, summary: RunSummary, settings: Settings) -> None:
        super().__init__(interrupted_line(summary))
        self.summary = summary
        self.settings = settings


class _QuietAfterInterrupt(logging.Filter):
    """Drops the warnings the stop itself causes, once interrupted."""

    def __init__(self, state: Interruption) -> None:
        super().__init__()
        self._state = state

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self._state.interrupted and getattr(record, ev.EVENT, None) in _QUIETED_EVENTS)


def _say(text: str) -> None:
    """Write to stderr without Python's buffers or locks (safe in a signal handler)."""
    with contextlib.suppress(OSError):
        os.write(sys.__stderr__.fileno() if sys.__stderr__ else 2, text.encode())


@contextlib.contextmanager
def stop_on_interrupt(budget: TimeBudget, logger_name: str) -> Iterator[Interruption]:
    """While the block runs, Ctrl-C stops the run through `budget`, and a second one exits."""
    state = Interruption()
    if threading.current_thread() is not threading.main_thread():
        yield state  # signal handlers can only be set from the main thread
        return

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if state.interrupted:
            cursor = _SHOW_CURSOR if sys.stderr.isatty() else ""  # the progress display hid it
            _say(f"{cursor}\necr-sweeper: interrupted again: exiting now\n")
            os._exit(EXIT_INTERRUPTED)
        state.interrupted = True
        budget.stop(INTERRUPTED)
        _say(
            "\necr-sweeper: stopping: no new repositories or batches; waiting for the calls in "
            "flight (Ctrl-C again to exit now)\n"
        )

    quiet = _QuietAfterInterrupt(state)
    handlers = stream_handlers(logging.getLogger(logger_name))
    for handler in handlers:
        handler.addFilter(quiet)
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)
        for handler in handlers:
            handler.removeFilter(quiet)


def interrupted_line(summary: RunSummary) -> str:
    """One line: what the interrupted run did, and that running again finishes it."""
    done = [r for r in summary.results if r.images_deleted]
    if summary.dry_run:
        planned = [r for r in summary.results if r.plan is not None]
        total = len(summary.results)
        what = f"{len(planned)} of {counted(total, 'repository', 'repositories')} planned"
    else:
        deleted = sum(r.images_deleted for r in done)
        what = (
            f"{counted(deleted, 'image', 'images')} deleted in "
            f"{counted(len(done), 'repository', 'repositories')}"
        )
    return f"interrupted: {what}; run again to finish"
