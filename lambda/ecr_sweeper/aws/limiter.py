"""A shared cap on the calls in flight that backs off when the service throttles (AIMD).

Every worker takes a slot before a call. A throttle halves the cap, at most once per cooldown
(one second): the throttles that follow a cut within it are the same congestion, already
answered, so a burst of them can't collapse the cap to one. Successes grow it back by one per
full cap of calls, as TCP does, up to the configured maximum. Under sustained throttling the cap
keeps halving every second until the calls that get through outnumber the cuts.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

COOLDOWN_SECONDS = 1.0
"""At most one cut of the cap per this long."""


class AdaptiveLimiter:
    """Thread-safe AIMD limit on concurrent calls; counts throttles for the run summary."""

    def __init__(
        self,
        maximum: int,
        *,
        cooldown: float = COOLDOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if maximum < 1:
            raise ValueError(f"maximum must be at least 1, got {maximum}")
        self.maximum = maximum
        self._limit = maximum
        self._in_flight = 0
        self._successes = 0
        self._throttles = 0
        self._lowest = maximum
        self._cooldown = cooldown
        self._clock = clock
        self._last_cut: float | None = None
        self._condition = threading.Condition()

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def lowest_limit(self) -> int:
        """The smallest cap this run came down to."""
        return self._lowest

    @property
    def throttles(self) -> int:
        return self._throttles

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the cap's slots for the duration of one call (retries included)."""
        with self._condition:
            while self._in_flight >= self._limit:
                self._condition.wait()
            self._in_flight += 1
        try:
            yield
        finally:
            with self._condition:
                self._in_flight -= 1
                self._condition.notify()

    def throttled(self) -> None:
        """A call was throttled: halve the cap, unless a cut within the cooldown answered it."""
        with self._condition:
            self._throttles += 1
            now = self._clock()
            if self._last_cut is not None and now - self._last_cut < self._cooldown:
                return
            self._last_cut = now
            self._limit = max(1, self._limit // 2)
            self._lowest = min(self._lowest, self._limit)
            self._successes = 0

    def succeeded(self) -> None:
        """A call went through: one more slot after a full cap of successes."""
        with self._condition:
            if self._limit >= self.maximum:
                return
            self._successes += 1
            if self._successes >= self._limit:
                self._limit += 1
                self._successes = 0
                self._condition.notify()
