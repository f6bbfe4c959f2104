"""Fault injection (throttling, 5xx, dropped connections), latency and per-operation call counts."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["throttle", "error", "drop", "lost"]
DEFAULT_CODES = {
    "throttle": "ThrottlingException",
    "error": "ServerException",
    "drop": "",
    "lost": "ServiceUnavailableException",
}


@dataclass
class FaultRule:
    """Fails matching calls: all of them, a `rate` share, the `on_calls` ordinals, or `times` at
    most. `operation`/`service` None match any; ordinals count calls of the matched operation."""

    kind: FaultKind
    operation: str | None = None
    service: str | None = None
    rate: float = 1.0
    times: int | None = None
    on_calls: frozenset[int] | None = None
    status: int = 400
    code: str = ""
    message: str = ""
    fired: int = 0

    def matches(self, service: str, operation: str) -> bool:
        return (self.operation is None or self.operation == operation) and (
            self.service is None or self.service == service
        )


@dataclass(frozen=True)
class Latency:
    seconds: float = 0.0
    jitter: float = 0.0
    operation: str | None = None
    service: str | None = None


@dataclass(frozen=True)
class Decision:
    """What to do with one call: sleep this long, then fail with `rule` (or serve it)."""

    delay: float
    rule: FaultRule | None


def _check_rate(rate: float) -> float:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be between 0 and 1, got {rate!r}")
    return rate


@dataclass
class Faults:
    """Thread-safe fault plan; rate decisions come from a seeded generator, so runs repeat."""

    seed: int = 0
    rules: list[FaultRule] = field(default_factory=list)
    latencies: list[Latency] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)

    def _add(self, rule: FaultRule) -> FaultRule:
        _check_rate(rule.rate)
        if rule.times is not None and rule.times < 0:
            raise ValueError(f"times must be 0 or more, got {rule.times!r}")
        with self._lock:
            self.rules.append(rule)
        return rule

    def throttle(
        self,
        operation: str | None = None,
        *,
        service: str | None = None,
        rate: float = 1.0,
        times: int | None = None,
        on_calls: Iterable[int] | None = None,
        code: str = "ThrottlingException",
    ) -> FaultRule:
        """HTTP 400 ThrottlingException ("Rate exceeded"), as ECR throttles."""
        return self._add(
            FaultRule(
                "throttle",
                operation,
                service,
                rate,
                times,
                _ordinals(on_calls),
                400,
                code,
                "Rate exceeded",
            )
        )

    def error(
        self,
        status: int = 500,
        operation: str | None = None,
        *,
        service: str | None = None,
        rate: float = 1.0,
        times: int | None = None,
        on_calls: Iterable[int] | None = None,
        code: str | None = None,
    ) -> FaultRule:
        """An HTTP 5xx; the code defaults to ServerException (500) or ServiceUnavailable."""
        if not 500 <= status <= 599:
            raise ValueError(f"status must be a 5xx HTTP status, got {status!r}")
        default = "ServerException" if status == 500 else "ServiceUnavailableException"
        return self._add(
            FaultRule(
                "error",
                operation,
                service,
                rate,
                times,
                _ordinals(on_calls),
                status,
                code or default,
                "Injected server error",
            )
        )

    def drop_connection(
        self,
        operation: str | None = None,
        *,
        service: str | None = None,
        rate: float = 1.0,
        times: int | None = None,
        on_calls: Iterable[int] | None = None,
    ) -> FaultRule:
        """Close the connection without any response."""
        return self._add(
            FaultRule("drop", operation, service, rate, times, _ordinals(on_calls), 0, "", "")
        )

    def lose_response(
        self,
        operation: str | None = None,
        *,
        service: str | None = None,
        rate: float = 1.0,
        times: int | None = None,
        on_calls: Iterable[int] | None = None,
    ) -> FaultRule:
        """Carry the call out, then answer HTTP 503 as if its response were lost on the way:
        the client retries a call that already took effect."""
        return self._add(
            FaultRule(
                "lost",
                operation,
                service,
                rate,
                times,
                _ordinals(on_calls),
                503,
                DEFAULT_CODES["lost"],
                "Injected lost response: the call was carried out",
            )
        )

    def latency(
        self,
        seconds: float = 0.0,
        *,
        jitter: float = 0.0,
        operation: str | None = None,
        service: str | None = None,
    ) -> Latency:
        """Delay matching calls by `seconds` plus a uniform random 0..`jitter` seconds."""
        if seconds < 0 or jitter < 0:
            raise ValueError(f"latency must not be negative, got {seconds!r}/{jitter!r}")
        entry = Latency(seconds, jitter, operation, service)
        with self._lock:
            self.latencies.append(entry)
        return entry

    def clear(self) -> None:
        """No faults, no latency; the random generator restarts from the seed."""
        with self._lock:
            self.rules.clear()
            self.latencies.clear()
            self._rng = random.Random(self.seed)

    def decide(self, service: str, operation: str, ordinal: int) -> Decision:
        """The fate of the `ordinal`-th call (1-based) of this operation."""
        with self._lock:
            delay = 0.0
            for entry in self.latencies:
                if (entry.operation is None or entry.operation == operation) and (
                    entry.service is None or entry.service == service
                ):
                    delay += entry.seconds + (
                        self._rng.uniform(0, entry.jitter) if entry.jitter else 0.0
                    )
            for rule in self.rules:
                if not rule.matches(service, operation):
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                if rule.on_calls is not None and ordinal not in rule.on_calls:
                    continue
                if rule.rate < 1.0 and self._rng.random() >= rule.rate:
                    continue
                rule.fired += 1
                return Decision(delay, rule)
            return Decision(delay, None)


def _ordinals(on_calls: Iterable[int] | None) -> frozenset[int] | None:
    if on_calls is None:
        return None
    ordinals = frozenset(on_calls)
    if any(each < 1 for each in ordinals):
        raise ValueError(f"on_calls are 1-based call numbers, got {sorted(ordinals)}")
    return ordinals


class CallCounter:
    """Counts calls per (service, operation); every received call counts, failed or not."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def record(self, service: str, operation: str) -> int:
        """Count one call; returns its 1-based ordinal for that operation."""
        with self._lock:
            self._counts[service, operation] += 1
            return self._counts[service, operation]

    def by_operation(self, service: str | None = None) -> Counter[str]:
        with self._lock:
            result: Counter[str] = Counter()
            for (each_service, operation), count in self._counts.items():
                if service is None or service == each_service:
                    result[operation] += count
            return result

    def by_service(self) -> dict[str, dict[str, int]]:
        with self._lock:
            result: dict[str, dict[str, int]] = {}
            for (service, operation), count in sorted(self._counts.items()):
                result.setdefault(service, {})[operation] = count
            return result

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
