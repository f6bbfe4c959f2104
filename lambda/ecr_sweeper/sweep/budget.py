"""How long a run may go on: the Lambda's remaining time less a reserve, or the CLI's budget.

The engine asks before it starts a repository and before each delete batch; when the budget is
spent it stops starting work, finishes what is in flight, and reports what is unfinished. The
CLI also spends it at once on Ctrl-C (`stop`), so an interrupted run ends the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable

RESERVE_FRACTION = 0.15
RESERVE_MIN_SECONDS = 5.0
RESERVE_MAX_SECONDS = 60.0
"""Kept back from the Lambda's remaining time for calls in flight (retries included), the
confirmation listings, the summary, the metrics and the cursor."""


class TimeBudget:
    """A deadline on a monotonic clock; `None` seconds means no limit."""

    def __init__(
        self,
        seconds: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        within: TimeBudget | None = None,
    ) -> None:
        self._clock = clock
        self.seconds = seconds
        self._deadline = None if seconds is None else clock() + seconds
        self._stopped: str | None = None
        self._within = within
        """The budget this is a portion of: stopping that one stops this one too."""

    def exhausted(self) -> bool:
        return (
            self._stopped is not None
            or (self._within is not None and self._within.exhausted())
            or (self._deadline is not None and self._clock() >= self._deadline)
        )

    def stop(self, why: str) -> None:
        """Spend the budget now (safe from a signal handler): nothing new starts after this."""
        self._stopped = why

    @property
    def why(self) -> str:
        """Why work stopped, to start a result's reason: "... before it started"."""
        stopped = self._stopped or (self._within._stopped if self._within else None)
        return stopped or "the time budget ran out"

    def portion(self, share: float) -> TimeBudget:
        """A budget that runs out after `share` of the time this one has left."""
        if self._deadline is None:
            return TimeBudget(None, clock=self._clock, within=self)
        left = max(0.0, self._deadline - self._clock())
        return TimeBudget(left * share, clock=self._clock, within=self)


def for_lambda(remaining_millis: int) -> TimeBudget:
    """The budget of an invocation with this much time left before Lambda stops it."""
    remaining = remaining_millis / 1000
    reserve = min(RESERVE_MAX_SECONDS, max(RESERVE_MIN_SECONDS, remaining * RESERVE_FRACTION))
    return TimeBudget(max(0.0, remaining - reserve))
