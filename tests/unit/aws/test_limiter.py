"""The shared AIMD limiter: one cut per congestion, slow growth back, never below one."""

from __future__ import annotations

import threading
import time

import pytest

from ecr_sweeper.aws.limiter import AdaptiveLimiter
from ecr_sweeper.sweep.budget import TimeBudget, for_lambda


def test_a_throttle_halves_the_cap_at_most_once_per_cooldown() -> None:
    clock = [0.0]
    limiter = AdaptiveLimiter(16, clock=lambda: clock[0])
    limiter.throttled()
    clock[0] = 0.5
    limiter.throttled()  # the same congestion: a burst of throttles is answered by one cut
    assert limiter.limit == 8 and limiter.throttles == 2
    clock[0] = 1.1  # still throttled a second later: cut again
    limiter.throttled()
    assert limiter.limit == 4 and limiter.lowest_limit == 4


def test_successes_grow_the_cap_back_by_one_per_full_cap() -> None:
    limiter = AdaptiveLimiter(4)
    limiter.throttled()
    assert limiter.limit == 2
    for _ in range(2):
        limiter.succeeded()
    assert limiter.limit == 3
    for _ in range(3):
        limiter.succeeded()
    assert limiter.limit == 4
    for _ in range(10):
        limiter.succeeded()
    assert limiter.limit == 4, "never above the configured maximum"


def test_the_cap_never_drops_below_one() -> None:
    limiter = AdaptiveLimiter(2, cooldown=0)
    for _ in range(5):
        limiter.throttled()
    assert limiter.limit == 1


def test_no_more_calls_are_in_flight_than_the_cap() -> None:
    limiter = AdaptiveLimiter(3)
    in_flight, peak, lock = [0], [0], threading.Lock()

    def call() -> None:
        with limiter.slot():
            with lock:
                in_flight[0] += 1
                peak[0] = max(peak[0], in_flight[0])
            time.sleep(0.01)
            with lock:
                in_flight[0] -= 1

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 3


def test_a_maximum_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AdaptiveLimiter(0)


def test_the_lambda_budget_keeps_a_reserve_for_the_summary() -> None:
    clock = [100.0]
    budget = TimeBudget(10, clock=lambda: clock[0])
    assert not budget.exhausted()
    clock[0] = 110.0
    assert budget.exhausted()
    assert for_lambda(900_000).seconds == 840  # 60 s reserve at most
    assert for_lambda(60_000).seconds == pytest.approx(51)  # 15 %
    assert for_lambda(2_000).seconds == 0  # never negative
    assert not TimeBudget(None).exhausted()
