"""A settable clock, so tests can push images "months ago" and pull them "tomorrow"."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class Clock:
    """Real UTC time until `set` freezes it; `advance` moves a frozen clock forward.

    The emulator stamps `imagePushedAt` of pushed images and `lastRecordedPullTime` of pulled
    images with this clock. AWS's own timestamps kept by moto (repository `createdAt`, ...) stay
    on real time.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frozen_at: datetime | None = None

    def now(self) -> datetime:
        with self._lock:
            return self._frozen_at or datetime.now(UTC)

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def set(self, when: datetime) -> None:
        """Freeze the clock at `when` (naive datetimes are taken as UTC)."""
        with self._lock:
            self._frozen_at = as_utc(when)

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by `delta`, freezing it at real time first if needed."""
        with self._lock:
            self._frozen_at = (self._frozen_at or datetime.now(UTC)) + delta
            return self._frozen_at

    def resume(self) -> None:
        """Back to real time."""
        with self._lock:
            self._frozen_at = None


def as_utc(when: datetime) -> datetime:
    """Aware UTC datetime; a naive one is read as UTC, never as local time."""
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def parse_timestamp(value: object) -> datetime:
    """A timestamp from the control API: epoch seconds or an ISO 8601 string."""
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str):
        try:
            return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise ValueError(f"not a timestamp (epoch seconds or ISO 8601 expected): {value!r}")
