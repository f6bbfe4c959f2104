"""How long a run may go on: the Lambda's remaining time less a reserve, or the CLI's budget.

The engine asks before it starts a repository and before each delete batch; when the budget is
spent it stops starting work, finishes what is in flight, and reports what is unfinished.
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
        self, seconds: float | None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self.seconds = seconds
        self._deadline = None if seconds is None else clock() + seconds

    def exhausted(self) -> bool:
        return self._deadline is not None and self._clock() >= self._deadline

    def portion(self, share: float) -> TimeBudget:
        """A budget that runs out after `share` of the time this one has left."""
        if self._deadline is None:
            return TimeBudget(None, clock=self._clock)
        left = max(0.0, self._deadline - self._clock())
        return TimeBudget(left * share, clock=self._clock)


def for_lambda(remaining_millis: int) -> TimeBudget:
    """The budget of an invocation with this much time left before Lambda stops it."""
    remaining = remaining_millis / 1000
    reserve = min(RESERVE_MAX_SECONDS, max(RESERVE_MIN_SECONDS, remaining * RESERVE_FRACTION))
    return TimeBudget(max(0.0, remaining - reserve))
