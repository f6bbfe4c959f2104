"""The deletion guard's decision and the approval it reads: pure, so every rule is checked here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ecr_sweeper.core.guard import (
    APPROVAL_LIMIT,
    COUNT_SETTING,
    FRACTION_SETTING,
    Approval,
    GuardDecision,
    approval_for,
    decide,
)

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
COUNTS = [("web", 40), ("api", 30), ("batch", 10), ("ci", 0), ("docs", 5), ("edge", 5), ("ml", 1)]
"""91 deletions over seven repositories."""


def test_a_plan_over_the_share_holds_and_names_the_five_largest() -> None:
    decision = decide(COUNTS, 100, max_fraction=0.5, max_deletions=None)
    assert decision.held and decision.limit == FRACTION_SETTING and decision.allowed == 0.5
    assert (decision.would_delete, decision.scanned, decision.fraction) == (91, 100, 0.91)
    assert decision.top == (("web", 40), ("api", 30), ("batch", 10), ("docs", 5), ("edge", 5))
    assert "91 of 100" in decision.reason and "guardMaxDeletionFraction 0.5" in decision.reason


@pytest.mark.parametrize(
    ("fraction", "count", "held", "limit"),
    [
        (0.91, None, False, None),  # exactly the share is not more than it
        (0.9, None, True, FRACTION_SETTING),
        (1, None, False, None),  # 1 turns the share check off, even at 100%
        (1, 91, False, None),
        (1, 90, True, COUNT_SETTING),
        (0.95, 0, True, COUNT_SETTING),
    ],
)
def test_each_limit_trips_only_above_its_value(
    fraction: float, count: int | None, held: bool, limit: str | None
) -> None:
    decision = decide(COUNTS, 100, max_fraction=fraction, max_deletions=count)
    assert (decision.held, decision.limit) == (held, limit)


def test_the_share_check_off_passes_a_run_that_deletes_everything() -> None:
    assert not decide([("web", 7)], 7, max_fraction=1, max_deletions=None).held


def test_nothing_to_delete_always_proceeds() -> None:
    decision = decide([("web", 0)], 0, max_fraction=0, max_deletions=0)
    assert not decision.held and decision.reason == "nothing to delete"


def test_an_approval_replaces_the_limits_and_caps_the_run() -> None:
    approved = decide(COUNTS, 100, max_fraction=0.1, max_deletions=1, approved_up_to=91)
    assert not approved.held and approved.approval is None
    named = decide(
        COUNTS, 100, max_fraction=0.1, max_deletions=1, approved_up_to=91, approved_by="r1"
    )
    assert named.approval == "r1"
    short = decide(COUNTS, 100, max_fraction=1, max_deletions=None, approved_up_to=90)
    assert short.held and short.limit == APPROVAL_LIMIT and short.allowed == 90
    assert "more than the 90 approved" in short.reason


def test_the_decision_travels_as_json_and_comes_back_the_same() -> None:
    decision = decide(COUNTS, 100, max_fraction=0.5, max_deletions=None)
    assert GuardDecision.from_dict(decision.to_dict()) == decision
    with pytest.raises(ValueError, match="true or false"):
        GuardDecision.from_dict({**decision.to_dict(), "held": "no"})


def test_an_approval_covers_the_held_run_plus_a_tenth_for_new_pushes_rounded_up() -> None:
    approval = approval_for("run-1", 91, now=NOW, valid_for=timedelta(days=7))
    assert approval.max_deletions == 91 + 10
    assert approval_for("run-1", 100, now=NOW, valid_for=timedelta(days=7)).max_deletions == 110
    assert approval_for("run-1", 0, now=NOW, valid_for=timedelta(days=7)).max_deletions == 0
    assert approval.expires_at == NOW + timedelta(days=7)


def test_an_approval_is_usable_once_and_until_it_expires() -> None:
    approval = approval_for("run-1", 10, now=NOW, valid_for=timedelta(days=7))
    assert approval.usable(NOW + timedelta(days=6))
    assert not approval.usable(NOW + timedelta(days=7))
    used = approval.used("run-2", NOW + timedelta(days=1))
    assert not used.usable(NOW + timedelta(days=1)) and used.used_by == "run-2"
    assert Approval.from_dict(used.to_dict()) == used


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "expected a JSON object"),
        ({"maxDeletions": 1}, "approval.runId: missing"),
        ({"runId": "", "maxDeletions": 1}, "approval.runId: expected the held run's id"),
        ({"runId": "r", "maxDeletions": True}, "maxDeletions: expected a whole number"),
        ({"runId": "r", "maxDeletions": -1}, "maxDeletions: expected a whole number"),
        (
            {"runId": "r", "maxDeletions": 1, "approvedAt": "soon", "expiresAt": "x"},
            "approvedAt: expected an ISO 8601 time",
        ),
        (
            {"runId": "r", "maxDeletions": 1, "approvedAt": "2026-12-06T00:00:00",
             "expiresAt": "2026-12-07T00:00:00+00:00"},
            "approvedAt: expected a time with its UTC offset",
        ),
    ],
)  # fmt: skip
def test_a_damaged_approval_is_refused_naming_the_field(document: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Approval.from_dict(document)
